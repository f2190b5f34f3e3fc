"""A tiny progress bar on stderr, shown only when stderr is a terminal."""
from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``[#####.....] 12/40 epoch 3 loss 1.234`` redrawn in place on ``stream``.

    Args:
        total: number of steps.
        label: text before the bar.
        enabled: ``None`` (default) shows the bar only when ``stream`` is a terminal.
        stream: where to draw (default ``sys.stderr``).
        width: characters of the bar (default ``24``).
    """

    def __init__(self, total: int, label: str = "", enabled: bool | None = None,
                 stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.total = max(1, int(total))
        self.label = label
        self.width = width
        self.count = 0
        self._last = 0.0

    def update(self, steps: int = 1, note: str = "") -> None:
        """Advance by ``steps`` and redraw (at most ten times a second, and at the end)."""
        self.count = min(self.total, self.count + steps)
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and self.count < self.total):
            return
        self._last = now
        filled = self.width * self.count // self.total
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.count}/{self.total} {note}".rstrip() + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
