"""Reading the files the package takes in: a damaged file is bad input.

A truncated ``.npz``, an archive member with a bad CRC, a text file named ``.mat``, a
half-copied image or checkpoint, a binary file given as a recipe: the libraries that decode
them raise whatever their parser meets (``BadZipFile``, ``EOFError``, ``IndexError``,
``OSError`` without an error number, ``UnicodeDecodeError``, ...). :func:`unreadable` is the
one place that turns those into one line naming the file, the problem and the fix; the
readers below wrap each library call in it, and read everything they return (every member
of an ``.npz``, the whole header of a memory-mapped ``.npy``) so that the error appears
while the file is opened, not later in the middle of a training.

An ``OSError`` with an error number (the file is missing, a folder, or not readable by the
user) is the operating system refusing the file, not damaged content: it passes through
unchanged.
"""
from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gcnretrieval.errors import DataError, GcnRetrievalError, RunFailed

__all__ = ["load_npy", "load_npz", "load_torch", "read_json", "read_text", "read_toml", "unreadable"]

_NPY_MAGIC = b"\x93NUMPY"
# longest part of a library's message quoted in the error line
_REASON_CHARS = 160


def _reason(err: BaseException) -> str:
    """``"<exception class>: <first line of its message>"``; a long line is cut after its first
    sentence, or else at ``_REASON_CHARS`` characters."""
    lines = str(err).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) > _REASON_CHARS:
        end = text.find(". ")
        text = text[: end + 1] if 0 < end < _REASON_CHARS else text[: _REASON_CHARS - 3].rstrip() + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextmanager
def unreadable(
    path: str | Path,
    kind: str,
    fix: str,
    error: type[Exception] = DataError,
    keep: tuple[type[BaseException], ...] = (),
    catch: tuple[type[Exception], ...] = (Exception,),
) -> Iterator[None]:
    """Turn an exception raised while the block decodes ``path`` into one ``error`` line.

    The line reads ``"<path> is not a readable <kind> (<exception>: <its first line>); <fix>"``.
    Errors of the package (:class:`~gcnretrieval.errors.GcnRetrievalError`,
    :class:`~gcnretrieval.errors.RunFailed`), ``MemoryError``, an ``OSError`` with an error
    number and the exceptions in ``keep`` pass through unchanged.

    Args:
        path: the file the block reads.
        kind: what the file should be (``".npz archive"``).
        fix: what the user can do (``"write it again with ..."``).
        error: the exception class raised (default :class:`~gcnretrieval.errors.DataError`;
            a recipe gives :class:`~gcnretrieval.errors.ConfigError`, a run's checkpoint
            :class:`~gcnretrieval.errors.RunFailed`).
        keep: further exception classes that are not about the file's content (default
            none), e.g. the accelerator running out of memory.
        catch: the exception classes that mean damaged content (default ``(Exception,)``:
            whatever a library's parser raises; a block that runs code of the package as
            well names the decoding errors only, e.g. ``(UnicodeDecodeError,)``).
    """
    try:
        yield
    except (GcnRetrievalError, RunFailed, MemoryError, *keep):
        raise
    except catch as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise error(f"{path} is not a readable {kind} ({_reason(err)}); {fix}") from None


def read_text(path: str | Path, kind: str, fix: str, error: type[Exception] = DataError) -> str:
    """The UTF-8 text of ``path``; a binary or otherwise non-UTF-8 file raises ``error``.

    Args:
        path: the file.
        kind: what the file should be (see :func:`unreadable`).
        fix: what the user can do.
        error: the exception class raised (default :class:`~gcnretrieval.errors.DataError`).
    """
    path = Path(path)
    data = path.read_bytes()
    with unreadable(path, kind, fix, error):
        return data.decode("utf-8")


def read_json(path: str | Path, kind: str, fix: str, error: type[Exception] = DataError) -> Any:
    """The JSON value in ``path`` (UTF-8); a truncated or non-JSON file raises ``error``."""
    text = read_text(path, kind, fix, error)
    with unreadable(path, kind, fix, error):
        return json.loads(text)


def read_toml(path: str | Path, kind: str, fix: str, error: type[Exception] = DataError) -> dict[str, Any]:
    """The TOML table in ``path`` (UTF-8); a binary or malformed file raises ``error``."""
    text = read_text(path, kind, fix, error)
    with unreadable(path, kind, fix, error):
        return tomllib.loads(text)


def load_npz(path: str | Path, kind: str = ".npz archive", fix: str = "write it again with numpy.savez",
             error: type[Exception] = DataError) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path``, read into memory (``allow_pickle=False``).

    Each member is read (and its CRC checked) here, so a damaged member raises ``error``
    now, naming the file.

    Args:
        path: the archive.
        kind: what the file should be (default ``".npz archive"``).
        fix: what the user can do (default ``"write it again with numpy.savez"``).
        error: the exception class raised (default :class:`~gcnretrieval.errors.DataError`).

    Returns:
        member name (without ``.npy``) -> array, in the archive's order.
    """
    path = Path(path)
    with unreadable(path, kind, fix, error):
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise error(f"{path} is a single .npy array, not a {kind}; {fix}")
        with archive:
            return {key: archive[key] for key in archive.files}


def load_npy(path: str | Path, mmap_mode: str | None = None, kind: str = ".npy array",
             fix: str = "write it again with numpy.save", error: type[Exception] = DataError) -> np.ndarray:
    """The array in the ``.npy`` file ``path`` (``allow_pickle=False``).

    With ``mmap_mode`` the data stays on disk, but a file shorter than its header promises
    (a truncated copy) raises ``error`` here, not when a row is first read.

    Args:
        path: the file.
        mmap_mode: ``None`` (default: read into memory) or a mode of :func:`numpy.load`
            (``"r"``).
        kind: what the file should be (default ``".npy array"``).
        fix: what the user can do (default ``"write it again with numpy.save"``).
        error: the exception class raised (default :class:`~gcnretrieval.errors.DataError`).
    """
    path = Path(path)
    with path.open("rb") as handle:
        magic = handle.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:  # numpy would try to unpickle it and blame the pickle
        raise error(f"{path} is not a readable {kind} (it does not start with the .npy signature); {fix}")
    with unreadable(path, kind, fix, error):
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)


def load_torch(path: str | Path, kind: str, fix: str, error: type[Exception] = DataError,
               map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a truncated or foreign file raises ``error``.

    Args:
        path: the file.
        kind: what the file should be (``"checkpoint"``).
        fix: what the user can do.
        error: the exception class raised (default :class:`~gcnretrieval.errors.DataError`).
        map_location: passed to :func:`torch.load` (default ``"cpu"``).
    """
    import torch

    with unreadable(path, kind, fix, error, keep=(torch.cuda.OutOfMemoryError,)):
        return torch.load(path, map_location=map_location, weights_only=True)
