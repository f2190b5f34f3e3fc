"""Damaging files the way copies and crashes do: cut them short, or corrupt a byte of a zip member."""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Keep the first ``keep`` fraction of ``path``'s bytes; returns ``path``."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def flip_member_byte(path: Path, member: str, offset: int = 100) -> Path:
    """Invert one byte of ``member``'s stored data inside the zip archive ``path``: the archive
    still opens, reading the member fails its CRC check. Returns ``path``."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length  # the local header's own lengths
    assert offset < info.compress_size
    data[start + offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path
