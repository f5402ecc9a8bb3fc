"""Resampling an input to the voxel size a model was trained at, and results back.

A network learns structures at the pixel size of its training data: a membrane 10 px wide
at 4.6 nm is 4.6 px wide at 10 nm. When the input's voxel size is known and differs from
the model's, the input is resampled to the model's scale (linear interpolation, pixel
edges aligned), the model runs there, and its probabilities are resampled back onto the
input's own grid, so masks register with the input voxel for voxel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    magnitude asks for terabytes).

    Linear resampling (order 1) is :func:`resample_region` over the whole array, so that a
    region resampled on its own (a block of a huge volume) equals the same region of this,
    bit for bit.
    """
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
    if order == 1:
        out_shape = zoomed_shape(shape, factors)
        return resample_region(region_reader(data), shape, out_shape, _whole(out_shape))
    array = np.asarray(data)
    if order > 0:
        array = array.astype(np.float32, copy=False)
    return ndimage.zoom(array, tuple(factors), order=order, mode="nearest", grid_mode=True)


def _pixels(shape: Sequence[float]) -> str:
    return "×".join(f"{round(n):,}" for n in shape)


def resample_to(data: np.ndarray, shape: Sequence[int], order: int = 1) -> np.ndarray:
    """``data`` resampled onto exactly ``shape`` (the input's grid)."""
    if order == 1:
        shape = tuple(int(n) for n in shape)
        return resample_region(region_reader(data), np.shape(data), shape, _whole(shape))
    factors = [n / m for n, m in zip(shape, data.shape)]
    out = resample(data, factors, order)
    if out.shape != tuple(shape):  # rounding of the zoomed size: crop or pad by an edge
        pads = [(0, max(0, n - m)) for n, m in zip(shape, out.shape)]
        out = np.pad(out, pads, mode="edge")[tuple(slice(0, n) for n in shape)]
    return out


def zoomed_shape(shape: Sequence[int], factors: Sequence[float]) -> tuple[int, ...]:
    """The shape of an array of ``shape`` zoomed by ``factors`` (as ``scipy.ndimage.zoom``)."""
    return tuple(max(1, round(n * f)) for n, f in zip(shape, factors))


def axis_weights(n_in: int, n_out: int, start: int, stop: int) -> AxisWeights:
    """Linear interpolation of output samples ``[start, stop)`` when ``n_in`` samples are
    resampled onto ``n_out`` with pixel edges aligned and edge values extended: the lower
    and upper input sample of each output sample and the upper one's weight.

    Output sample ``j`` sits at input coordinate ``(j + 0.5) · n_in / n_out - 0.5`` (as
    ``scipy.ndimage.zoom(..., grid_mode=True, mode="nearest")`` places it).
    """
    x = (np.arange(start, stop, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0.0, n_in - 1.0)
    lower = np.floor(x).astype(np.int64)
    upper = np.minimum(lower + 1, n_in - 1)
    return AxisWeights(lower, upper, (x - lower).astype(np.float32))


@dataclass(frozen=True)
class AxisWeights:
    """See :func:`axis_weights`."""

    lower: np.ndarray
    upper: np.ndarray
    weight: np.ndarray

    @property
    def span(self) -> slice:
        """The input samples read."""
        if not len(self.lower):
            return slice(0, 0)
        return slice(int(self.lower.min()), int(self.upper.max()) + 1)


def input_region(
    in_shape: Sequence[int], out_shape: Sequence[int], region: Sequence[slice]
) -> tuple[slice, ...]:
    """The input box that output ``region`` of :func:`resample_region` reads."""
    return tuple(
        r if n == m else axis_weights(n, m, r.start, r.stop).span
        for n, m, r in zip(in_shape, out_shape, region)
    )


def resample_region(
    read: Callable[[tuple[slice, ...]], Any],
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    region: Sequence[slice],
) -> np.ndarray:
    """Output ``region`` (slices over ``out_shape``) of the linear resampling of an array of
    ``in_shape`` onto ``out_shape``, as float32, reading only the input box it needs
    through ``read(box)``.

    Axes are interpolated one after the other, in order, each output sample from the same
    two input samples with the same weight wherever the region lies: any tiling of the
    output into regions gives the whole array's result, bit for bit.
    """
    region = tuple(slice(int(r.start), int(r.stop)) for r in region)
    weights = [
        None if n == m else axis_weights(int(n), int(m), r.start, r.stop)
        for n, m, r in zip(in_shape, out_shape, region)
    ]
    box = tuple(r if w is None else w.span for r, w in zip(region, weights))
    data = np.asarray(read(box)).astype(np.float32, copy=False)
    for axis, (w, r) in enumerate(zip(weights, box)):
        if w is None:
            continue
        view = [1] * data.ndim
        view[axis] = -1
        low = np.take(data, w.lower - r.start, axis=axis)
        high = np.take(data, w.upper - r.start, axis=axis)
        high -= low
        high *= w.weight.reshape(view)
        low += high
        data = low
    return data


def resample_lazily(data: Any, factors: Sequence[float], chunk: int = 256) -> Any:
    """``data`` (numpy, dask or a container array) zoomed by ``factors`` as a lazy dask
    array: reading a region resamples only what it needs (:func:`resample_region`), so
    patches of a huge volume are taken at another voxel size without reading the volume.
    """
    import dask.array as da  # only for lazy input: numpy users never pay dask's import

    in_shape = tuple(int(n) for n in data.shape)
    shape = zoomed_shape(in_shape, factors)
    resampled = [n != m for n, m in zip(in_shape, shape)]
    # Slices of a 2D model's volume (axes kept) one by one; resampled axes in squares.
    chunks = tuple(
        min(m, chunk) if moved or sum(resampled) < 2 else 1 for m, moved in zip(shape, resampled)
    )
    read = region_reader(data)

    def block(_: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        location = block_info[None]["array-location"]  # type: ignore[index]
        region = tuple(slice(a, b) for a, b in location)
        return resample_region(read, in_shape, shape, region)

    grid = da.empty(shape, chunks=chunks, dtype=np.uint8)
    return grid.map_blocks(block, dtype=np.float32)


def region_reader(data: Any) -> Callable[[tuple[slice, ...]], np.ndarray]:
    """Reading a box of ``data`` (numpy, dask, a container array) as numpy; dask regions
    are computed here, synchronously (inside a dask.distributed task this must not start
    a new graph)."""

    def read(box: tuple[slice, ...]) -> np.ndarray:
        region = data[box]
        if type(region).__module__.startswith("dask"):
            return np.asarray(region.compute(scheduler="synchronous"))
        return np.asarray(region)

    return read


def _whole(shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(0, int(n)) for n in shape)
