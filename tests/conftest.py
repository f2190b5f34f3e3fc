"""Fixtures shared by the test files."""
from __future__ import annotations

import pytest


@pytest.fixture
def main(monkeypatch, capsys):
    """``gcnretrieval ARGS`` through the console entry point: ``(exit code, stdout, stderr)``."""
    from gcnretrieval.cli import main as entry

    def call(args: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.argv", ["gcnretrieval", *args])
        code = 0
        try:
            entry()
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
