"""One small name -> class registry, used for encoders, losses and datasets.

A registry maps lower-case names to classes. Third-party packages add entries without
touching this project through a Python entry-point group (``[project.entry-points."
gcnretrieval.encoders"] myconv = "mypkg.layers:MyEncoder"``); those are loaded the first
time the registry is queried.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from gcnretrieval.errors import UnknownNameError, did_you_mean

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """Name -> class mapping with did-you-mean errors and entry-point plugins.

    Args:
        kind: what is registered, used in error messages (``"encoder"``).
        entry_point_group: optional entry-point group scanned once, lazily.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator registering ``cls`` under ``name``."""
        key = name.lower()

        def decorator(obj: T) -> T:
            existing = self._entries.get(key)
            if existing is not None and existing is not obj:
                raise ValueError(f"{self.kind} '{key}' is already registered ({existing!r})")
            self._entries[key] = obj
            return obj

        return decorator

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            obj = ep.load()
            self._entries.setdefault(ep.name.lower(), obj)
            log.debug("loaded %s plugin %s from %s", self.kind, ep.name, ep.value)

    def get(self, name: str) -> T:
        """Return the entry called ``name``; unknown names raise :class:`UnknownNameError`."""
        self._load_plugins()
        key = str(name).lower()
        if key not in self._entries:
            raise UnknownNameError(did_you_mean(self.kind, str(name), self._entries))
        return self._entries[key]

    def names(self) -> list[str]:
        """Sorted list of registered names."""
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return isinstance(name, str) and name.lower() in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
