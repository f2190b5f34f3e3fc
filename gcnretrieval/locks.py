"""One writer per folder: an advisory lock on ``<folder>/.lock``, held while a process writes it.

The lock is :func:`fcntl.flock` on the file: the operating system releases it when the
process ends, however it ends, so a lock left by a dead process never blocks anyone. The
file records its holder (process id, host, command, start time) for the message a second
process gets; the holder deletes it on release. A process that finds the lock taken raises
:class:`~gcnretrieval.errors.FolderBusy` at once (it never waits).

Advisory locks bind only processes that take them: every gcnretrieval command that writes a
run, comparison, sweep or tuning folder does.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from gcnretrieval.errors import FolderBusy

__all__ = ["FolderLock", "busy_message", "current_command", "holder"]

LOCK_FILE = ".lock"


def current_command() -> str:
    """The command line of this process, as a user would type it again."""
    first = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if first.name == "__main__.py":  # python -m PACKAGE
        program = ["gcnretrieval"] if first.parent.name == "gcnretrieval" else ["python", "-m", first.parent.name]
    elif first.name == "-c":
        program = ["python", "-c", "..."]
    else:
        program = [first.name]
    return shlex.join([*program, *sys.argv[1:]])


def holder(folder: str | Path) -> dict[str, Any] | None:
    """Who holds ``folder``'s lock (``{"pid", "host", "command", "since"}``, empty until written),
    or ``None`` when nobody does."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        return dict(json.loads(os.pread(fd, 4096, 0).decode("utf-8")))
    except (OSError, ValueError, TypeError):
        return {}  # taken an instant ago: the holder has not written itself down yet


def busy_message(folder: Path, what: str, found: dict[str, Any], advice: str) -> str:
    """``<what> <folder> is in use by pid P on HOST since T (`command`); <advice>``, ``{command}`` in
    ``advice`` replaced by the holder's command."""
    if found.get("pid") is None:
        who = "another process"
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(found["since"])) if found.get("since") else "?"
        who = f"pid {found['pid']} on {found.get('host', '?')} since {since} (`{found.get('command', '?')}`)"
    return f"{what} {folder} is in use by {who}; {advice.format(command=found.get('command', 'the same command'))}"


class FolderLock:
    """The lock of one folder; :meth:`acquire` it before writing, :meth:`release` it after.

    Args:
        folder: the folder to lock (its ``.lock`` file is created there).
        what: how messages name the folder (default ``"folder"``): ``"run directory"``, ``"comparison"``.
        advice: what the busy message tells the second process to do (default: wait for the
            holder to finish, or stop it); ``{command}`` stands for the holder's command.

    Example::

        with FolderLock(out, "comparison"):
            ...  # only this process writes ``out``
    """

    def __init__(self, folder: str | Path, what: str = "folder",
                 advice: str = "wait for it to finish, or stop that process") -> None:
        self.folder, self.what, self.advice = Path(folder), what, advice
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, folder: str | Path | None = None) -> FolderLock:
        """Take the lock, creating ``.lock`` in ``folder`` (default: the locked folder itself; a
        staging folder that is then renamed to it keeps the lock). Raises
        :class:`~gcnretrieval.errors.FolderBusy` naming the holder when another process has it,
        and ``OSError`` when the folder cannot be written."""
        if self._fd is not None:
            return self
        path = Path(folder if folder is not None else self.folder) / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                found = _read_holder(fd)
                os.close(fd)
                raise FolderBusy(busy_message(self.folder, self.what, found, self.advice)) from None
            except BaseException:
                os.close(fd)
                raise
            try:  # the holder before us may have deleted the file between our open and our lock
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        try:
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": current_command(),
                                 "since": time.time()}).encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):  # the lock holds without its record
                self.release()
                raise
        return self

    def release(self) -> None:
        """Delete ``.lock`` and drop the lock (nothing happens if it is not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        path = self.folder / LOCK_FILE
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # ours (not another's, after a failed rename)
                path.unlink()
        except OSError:
            pass  # gone with its folder, or a read-only folder: the lock goes with the descriptor anyway
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
