"""Command-line interface: a thin click layer over the library API.

Each command parses its options, calls one library function and prints the result.
User errors (:class:`gcnretrieval.errors.GcnRetrievalError`) become one line on
stderr and exit status 2; nothing else is caught.
"""
from __future__ import annotations

import sys

import click

from gcnretrieval import __version__
from gcnretrieval.errors import GcnRetrievalError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # noqa: D102
        try:
            return super().invoke(ctx)
        except GcnRetrievalError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gcnretrieval")
def cli() -> None:
    """gcnretrieval: label-graph cross-modal retrieval (image <-> text)."""


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)


# --- commands -------------------------------------------------------------------------
# One function per command, each a few lines: parse, call the library, print.
# Library imports happen inside the command so that `gcnretrieval --help` stays fast.
