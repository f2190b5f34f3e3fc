"""Encoder registry: register, list and build label encoders by name.

Third-party packages add encoders without touching this project through the
``gcnretrieval.encoders`` entry-point group, e.g. in their ``pyproject.toml``::

    [project.entry-points."gcnretrieval.encoders"]
    sage = "mypkg.encoders:SAGEEncoder"
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gcnretrieval.encoders.base import LabelEncoder
from gcnretrieval.registry import Registry

E = TypeVar("E", bound=type[LabelEncoder])

#: the encoder a recipe or model uses when none is named
DEFAULT_ENCODER = "l2gcn"

#: The registry behind :func:`register_encoder` and :func:`build_encoder`.
ENCODERS: Registry[type[LabelEncoder]] = Registry(
    "encoder", entry_point_group="gcnretrieval.encoders"
)


def register_encoder(name: str) -> Callable[[E], E]:
    """Class decorator registering a :class:`LabelEncoder` subclass under ``name``."""
    register = ENCODERS.register(name)

    def decorator(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, LabelEncoder)):
            raise TypeError(f"@register_encoder({name!r}) expects a LabelEncoder subclass, got {cls!r}")
        cls.encoder_name = name.lower()
        return register(cls)

    return decorator


def build_encoder(name: str, in_channels: int, out_channels: int, **options: Any) -> LabelEncoder:
    """Build the encoder registered as ``name``.

    Unknown names raise :class:`~gcnretrieval.errors.UnknownNameError` (with a
    did-you-mean hint); unknown options raise :class:`~gcnretrieval.errors.ConfigError`
    listing the options the encoder accepts.
    """
    cls = ENCODERS.get(name)
    return cls(in_channels, out_channels, **options)


def available_encoders() -> list[str]:
    """Sorted names of all registered encoders (built-in and plugins)."""
    return ENCODERS.names()
