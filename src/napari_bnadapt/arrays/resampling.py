"""Resampling an input to the voxel size a model was trained at, and results back.

A network learns structures at the pixel size of its training data: a membrane 10 px wide
at 4.6 nm is 4.6 px wide at 10 nm. When the input's voxel size is known and differs from
the model's, the input is resampled to the model's scale (linear interpolation, pixel
edges aligned), the model runs there, and its probabilities are resampled back onto the
input's own grid, so masks register with the input voxel for voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputDataError
from ..memory import array_bytes, check_memory
from ..units import is_sane_voxel_size, voxel_range_text

#: Relative voxel-size differences below this are left alone (no resampling).
TOLERANCE = 0.05


def parse_voxel_size(
    text: str | None, ndim: int, what: str = "voxel size"
) -> tuple[float, ...] | None:
    """``"50,4.6,4.6"`` (or ``50x4.6x4.6``) → (50.0, 4.6, 4.6) nm; one value stands for every
    spatial axis of an ``ndim``-dimensional image; None for an empty text. ``what`` names
    the field in the error message (``--voxel-size`` on the command line)."""
    if not text or not text.strip():
        return None
    parts = text.replace("×", ",").replace("x", ",").split(",")
    try:
        values = tuple(float(v) for v in parts if v.strip())
    except ValueError:
        raise InputDataError(
            f"{what} {text!r}: give numbers in nm separated by commas, e.g. 50,4.6,4.6"
        ) from None
    if not values or not is_sane_voxel_size(values):
        raise InputDataError(
            f"{what} {text!r}: sizes must be numbers of nm {voxel_range_text()}, e.g. 50,4.6,4.6"
        )
    return values * min(ndim, 3) if len(values) == 1 else values


def format_sizes(values: Sequence[float] | None) -> str:
    """``(50.0, 4.6, 4.6)`` → ``'50×4.6×4.6'``."""
    return "×".join(f"{v:g}" for v in values) if values else "unknown"


def zoom_factors(
    input_voxel: Sequence[float] | None,
    model_voxel: Sequence[float] | None,
    shape: Sequence[int],
    model_dims: int,
    slice_axis: int = 0,
) -> tuple[float, ...] | None:
    """Zoom per axis of an array of ``shape`` that brings it to the model's voxel size.

    ``input_voxel`` gives the size (nm) of the array's last ``len(input_voxel)`` axes (its
    physical axes; leading channel axes keep factor 1). A 2D model is resampled in the
    plane only: the axis it slices across (``slice_axis`` of the physical axes) is kept.
    None when either size is unknown or every factor is within :data:`TOLERANCE` of 1.
    """
    if not input_voxel or not model_voxel:
        return None
    physical = len(input_voxel)
    if physical > len(shape) or physical < 2:
        raise InputDataError(
            f"a voxel size of {physical} values does not fit an image of shape {tuple(shape)}: "
            "give one size per spatial axis, e.g. --voxel-size 10,5,5"
        )
    if min(input_voxel) <= 0 or min(model_voxel) <= 0:
        raise InputDataError(f"voxel sizes must be positive, got {tuple(input_voxel)}")
    factors = [1.0] * len(shape)
    offset = len(shape) - physical
    if model_dims == 2 or physical == 2:
        plane = [a for a in range(physical) if physical == 2 or a != slice_axis % physical]
        pairs = zip(plane, model_voxel[-2:])
    else:
        if len(model_voxel) < 3:
            return None  # a 3D model whose training z size is unknown: leave the input alone
        pairs = zip(range(3), model_voxel[-3:])
    for axis, size in pairs:
        factors[offset + axis] = float(input_voxel[axis]) / float(size)
    if all(abs(f - 1.0) < TOLERANCE for f in factors):
        return None
    return tuple(factors)


def resample(data: Any, factors: Sequence[float], order: int = 1) -> np.ndarray:
    """``data`` zoomed by ``factors`` per axis (pixel edges aligned), as float32 for
    ``order`` ≥ 1 and in its own dtype for ``order`` 0 (masks, ROIs). Refused in one line
    when the input and the result would not fit in memory (a voxel size off by orders of
    magnitude asks for terabytes)."""
    shape = tuple(int(n) for n in np.shape(data))
    zoomed = tuple(float(n) * float(f) for n, f in zip(shape, factors))
    itemsize = 4 if order > 0 else np.dtype(getattr(data, "dtype", np.float32)).itemsize
    if min(zoomed, default=1) < 0.5:  # rounds to no pixel at all
        raise InputDataError(
            f"resampling an image of {_pixels(shape)} px to the model's voxel size would "
            f"leave {_pixels(zoomed)} px: check both voxel sizes (the input's: --voxel-size "
            "or its metadata; the model's: bnadapt info), or pass --no-rescale"
        )
    check_memory(
        array_bytes(shape, itemsize) + array_bytes(zoomed, itemsize),
        f"resampling an image of {_pixels(shape)} px to the model's voxel size "
        f"({_pixels(zoomed)} px)",
        "check both voxel sizes (the input's: --voxel-size or its metadata; the model's: "
        "bnadapt info), or pass --no-rescale",
    )
    array = np.asarray(data)
    if order > 0:
        array = array.astype(np.float32, copy=False)
    return ndimage.zoom(array, tuple(factors), order=order, mode="nearest", grid_mode=True)


def _pixels(shape: Sequence[float]) -> str:
    return "×".join(f"{round(n):,}" for n in shape)


def resample_to(data: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """``data`` resampled onto exactly ``shape`` (the input's grid)."""
    factors = [n / m for n, m in zip(shape, data.shape)]
    out = resample(data, factors, order)
    if out.shape != tuple(shape):  # rounding of the zoomed size: crop or pad by an edge
        pads = [(0, max(0, n - m)) for n, m in zip(shape, out.shape)]
        out = np.pad(out, pads, mode="edge")[tuple(slice(0, n) for n in shape)]
    return out
