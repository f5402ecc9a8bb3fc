"""A memory budget, checked before any allocation whose size a file or an option decides.

A model file of a few KB can claim a network of a billion channels; a container can
declare a shape of terabytes and store nothing; a voxel size of 0.05 nm asks to resample
a volume to tens of gigabytes. Each of those is estimated first and refused in one line
that names the cause and the fix, instead of growing until the system kills the process.

The budget is the memory the machine has free (``psutil``), lowered by the user's
``--max-memory`` for the duration of a command (:func:`memory_limit`: a context-local
value, so threads and tests each see their own).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np

from .errors import InputDataError

_LIMIT: ContextVar[int | None] = ContextVar("napari_bnadapt_memory_limit", default=None)
#: Of the free memory, what one job may plan to take: the rest stays for the system,
#: napari and the allocations no estimate sees.
SHARE = 0.8
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def available_bytes() -> int:
    """Memory the machine can give this process now (free plus reclaimable caches)."""
    import psutil

    return int(psutil.virtual_memory().available)


def budget_bytes() -> int:
    """What one allocation may take: :data:`SHARE` of the free memory, or ``--max-memory``
    if lower."""
    free = int(SHARE * available_bytes())
    limit = _LIMIT.get()
    return free if limit is None else min(free, limit)


@contextlib.contextmanager
def memory_limit(limit: int | None) -> Iterator[None]:
    """Within the block, :func:`budget_bytes` is at most ``limit`` bytes (None: no limit)."""
    token = _LIMIT.set(limit)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def check_memory(needed: float, what: str, fix: str) -> None:
    """Refuse, before allocating, ``what`` when it needs more than the budget.

    Parameters
    ----------
    needed
        Estimated bytes (a float: products of declared sizes may exceed any integer type).
    what
        What would be allocated and why, e.g. ``"resampling vol.tif to the model's 10 nm"``.
    fix
        What the user can do instead.
    """
    budget = budget_bytes()
    if not np.isfinite(needed) or needed > budget:
        limit = _LIMIT.get()
        capped = limit is not None and limit <= SHARE * available_bytes()
        source = "allowed by --max-memory" if capped else "free to use"
        also = "; or raise --max-memory" if capped else ""
        raise InputDataError(
            f"{what} would need about {format_bytes(needed)} of memory, more than the "
            f"{format_bytes(budget)} {source}: {fix}{also}"
        )


def array_bytes(shape: tuple[float, ...] | list[float], itemsize: int = 4) -> float:
    """Bytes of an array of ``shape`` (as a float: never overflows)."""
    return float(np.prod([float(s) for s in shape], dtype=np.float64)) * itemsize


def format_bytes(count: float) -> str:
    if not np.isfinite(count):
        return "an unbounded amount"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count / 1e3:.3g} kB"


def parse_size(text: str) -> int:
    """``"8G"``, ``"512M"``, ``"2.5g"`` or a number of bytes → bytes (powers of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise InputDataError(
            f"--max-memory {text!r}: give a size such as 8G, 512M or 2.5G (bytes if no unit)"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])
