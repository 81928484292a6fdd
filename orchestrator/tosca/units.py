"""TOSCA scalar units: sizes (512 MB, 1 GiB) and times (30 s, 500 ms), as the specification lists them."""

from __future__ import annotations

import re
from typing import Any

SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
TIME_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SCALAR = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")


def _scalar(value: Any, units: dict[str, float] | dict[str, int]) -> float | None:
    if not isinstance(value, str):
        return None
    match = _SCALAR.match(value)
    if not match or match.group(2).lower() not in units:
        return None
    return float(match.group(1)) * units[match.group(2).lower()]


def size_in_bytes(value: Any) -> float | None:
    """Bytes of a scalar-unit.size such as "256 MB"; None when it is not one."""
    return _scalar(value, SIZE_UNITS)


def time_in_seconds(value: Any) -> float | None:
    """Seconds of a scalar-unit.time such as "30 s"; None when it is not one."""
    return _scalar(value, TIME_UNITS)
