"""The processor this process runs on, as ``/proc/cpuinfo`` describes its first core (Linux)."""
from __future__ import annotations

import functools
import platform
import re

__all__ = ["cpu_model", "cpuinfo_text", "parse_cpuinfo"]


@functools.cache
def cpuinfo_text() -> str:
    """The text of ``/proc/cpuinfo``, read once; empty where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def parse_cpuinfo(text: str) -> dict[str, str]:
    """``{field: value}`` of the first processor in ``/proc/cpuinfo`` text (up to its first blank line)."""
    fields: dict[str, str] = {}
    for line in re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0].splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        fields.setdefault(key, value)
    return fields


def cpu_model() -> str:
    """The processor's name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    return parse_cpuinfo(cpuinfo_text()).get("model name") or platform.processor() or "unknown"
