"""Byte counts written the way `du -h` and `docker images` readers know them."""

from __future__ import annotations

KIB = 1024


def human_size(n_bytes: float) -> str:
    """1536 -> '1.5 KiB'."""
    if n_bytes < KIB:
        return f"{n_bytes:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n_bytes /= KIB
        if n_bytes < KIB or unit == "GiB":
            break
    return f"{n_bytes:.1f}".removesuffix(".0") + f" {unit}"
