"""User-facing errors.

Every mistake a user can make (a malformed recipe, a missing file, an impossible
hyper-parameter) raises a subclass of :class:`GcnRetrievalError` whose message is one
line naming the problem and the fix. The CLI prints that line and exits non-zero;
library users catch the exception. Programming errors stay ordinary exceptions.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class GcnRetrievalError(ValueError):
    """Base class of all user errors raised by gcnretrieval."""


class ConfigError(GcnRetrievalError):
    """A recipe key, value or override is invalid."""


class DataError(GcnRetrievalError):
    """A data file is missing, malformed or inconsistent."""


class GraphError(GcnRetrievalError):
    """A label graph cannot be built from the given labels or node features."""


class UnknownNameError(GcnRetrievalError, KeyError):
    """A name looked up in a registry does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return ``"unknown <kind> 'name' — did you mean 'x'? choices: a, b, c"``."""
    options = sorted(choices)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    hint = f" — did you mean '{close[0]}'?" if close else ";"
    listing = ", ".join(options) if options else "(none registered)"
    return f"unknown {kind} '{name}'{hint} choices: {listing}"
