"""Quantities as text for the tables: durations ("24 h 20 min", "24:20") and byte counts."""

from __future__ import annotations


def format_duration(seconds: float, clock: bool = False) -> str:
    """A duration: "24 h 20 min", "5.8 min" or "12.0 s"; with `clock`, "24:20" (h:mm).

    Minutes are truncated, as in the article's "9 h 06 min".
    """
    minutes = int(seconds // 60)
    if clock:
        return f"{minutes // 60}:{minutes % 60:02d}"
    if seconds >= 3600:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def format_bytes(n: float) -> str:
    """Bytes as "1.23 GiB", "512.0 MiB"."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"
