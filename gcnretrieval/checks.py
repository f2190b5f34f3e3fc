"""Argument checks shared by constructors: each raises :class:`InvalidArgument` naming the argument."""
from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Callable, Iterable
from typing import Any

import torch

from gcnretrieval.errors import ConfigError, InvalidArgument

__all__ = ["check_choice", "check_count", "check_interval", "check_non_negative", "check_option", "check_positive",
           "check_positive_int", "values_readable"]


def values_readable(tensor: Any) -> bool:
    """Whether a check may read ``tensor``'s values: on the CPU, outside ``torch.compile``'s tracing.

    Reading a CUDA tensor's values from Python waits for the device (a host synchronisation in
    every training step), so there the values are left to :meth:`CrossModalDataset.validate
    <gcnretrieval.data.CrossModalDataset.validate>`, which checks the data once when loaded,
    and to the training loop's check of the loss.
    """
    return tensor.device.type == "cpu" and not torch.compiler.is_compiling()


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (a ``Literal`` type or an iterable), else an error with a hint."""
    options = typing.get_args(choices) if typing.get_origin(choices) is typing.Literal else tuple(choices)
    if value in options:
        return value
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.5)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    raise InvalidArgument(name, f"must be one of {', '.join(map(str, options))}, got {value!r}{hint}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(name, f"must be a finite number, got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    if not _number(name, value) > 0.0:
        raise InvalidArgument(name, f"must be a number > 0, got {value!r}")
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    if not _number(name, value) >= 0.0:
        raise InvalidArgument(name, f"must be a finite number >= 0, got {value!r}")
    return float(value)


def check_interval(name: str, value: Any, bounds: str = "[0, 1]") -> float:
    """A number in the interval ``bounds``, written as in mathematics: ``"[0, 1]"``, ``"(0, 1]"``, ``"[0, 1)"``."""
    number = _number(name, value)
    low, high = (float(end) for end in bounds[1:-1].split(","))
    above = low <= number if bounds[0] == "[" else low < number
    if not (above and (number <= high if bounds[-1] == "]" else number < high)):
        raise InvalidArgument(name, f"must be in {bounds}, got {value!r}")
    return number


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgument(name, f"must be at least {minimum}, got {value!r}")
    return value


def check_option(check: Callable[[str, Any], Any], option: str, value: Any) -> Any:
    """``check(option, value)`` for a command-line option: its error names ``--<option>``
    (``ConfigError("--timeout must be a number > 0, got 0")``)."""
    try:
        return check(option, value)
    except InvalidArgument as err:
        raise ConfigError(f"--{err}") from None


def check_count(option: str, value: Any) -> int:
    """A command-line count such as ``--trials``: an integer >= 1, else ``ConfigError("--trials must be
    at least 1, got 0")``."""
    return check_option(check_positive_int, option, value)
