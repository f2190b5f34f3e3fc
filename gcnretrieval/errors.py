"""The project's errors, by kind.

- **User input** (a malformed recipe, a missing file, an impossible hyper-parameter):
  a subclass of :class:`GcnRetrievalError`, whose message is one line naming the problem
  and the fix. The CLI prints that line and exits with status 2.
- **A folder another process is writing** (:class:`FolderBusy`): one line naming that
  process; the CLI exits with status 2.
- **A run that failed** (the loss diverged, a checkpoint is corrupt, the disk is full): :class:`RunFailed`,
  one line; the CLI exits with status 1.
- Anything else is a bug and stays an ordinary exception (the CLI shows its traceback).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class GcnRetrievalError(ValueError):
    """Base class of all user errors raised by gcnretrieval."""


class ConfigError(GcnRetrievalError):
    """A recipe key, value or override is invalid."""


class InvalidArgument(ConfigError):
    """A constructor argument has an impossible value.

    ``str()`` reads ``"<argument> <rule>"``; the recipe layer names the recipe key instead
    (``recipe key 'loss.theta' must be in [0, 1], got 1.5``).

    Args:
        argument: the keyword argument's name.
        rule: what is wrong, e.g. ``"must be in [0, 1], got 1.5"``.
    """

    def __init__(self, argument: str, rule: str) -> None:
        super().__init__(f"{argument} {rule}")
        self.argument = argument
        self.rule = rule


class DataError(GcnRetrievalError):
    """A data file is missing, malformed or inconsistent."""


class GraphError(GcnRetrievalError):
    """A label graph cannot be built from the given labels or node features."""


class UnknownNameError(GcnRetrievalError, KeyError):
    """A name looked up in a registry does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FolderBusy(GcnRetrievalError):
    """Another process is writing the run directory (or comparison, sweep, tuning folder) asked for."""


class RunFailed(RuntimeError):
    """A run could not finish: the loss diverged, a checkpoint cannot be read, or its folder cannot be written."""


class WriteFailed(RunFailed):
    """A run's folder cannot be written (a full disk, a read-only folder): ``problem`` (what failed,
    how much space a run needs, what was left behind) and ``advice`` (how to continue) make its line.

    Args:
        problem: what failed and what it left behind.
        advice: the command or step that continues the work.
    """

    def __init__(self, problem: str, advice: str) -> None:
        super().__init__(f"{problem}; {advice}")
        self.problem, self.advice = problem, advice


def did_you_mean(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return ``"unknown <kind> 'name' — did you mean 'x'? choices: a, b, c"``."""
    options = sorted(choices)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    hint = f" — did you mean '{close[0]}'?" if close else ";"
    listing = ", ".join(options) if options else "(none registered)"
    return f"unknown {kind} '{name}'{hint} choices: {listing}"
