"""Checking user arrays against a model and viewing them in one canonical layout.

Canonical layout: ``(C, Z, Y, X)``. For a 2D model, Z indexes independent slices (a 2D
image has Z = 1; a volume is cut across its slicing axis); for a 3D model, ``(Z, Y, X)`` is
one volume. Views are lazy for dask input and copy-free for numpy input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputDataError
from .normalization import check_finite


@dataclass(frozen=True)
class Layout:
    """How a user array maps onto the canonical ``(C, Z, Y, X)`` view."""

    shape: tuple[int, ...]
    model_dims: int
    has_channels: bool
    slice_axis: int | None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """The input's shape without its channel axis: the shape of masks."""
        return self.shape[1:] if self.has_channels else self.shape


def canonical_view(
    data: Any,
    model_dims: int,
    in_channels: int,
    slice_axis: int = 0,
) -> tuple[Any, Layout]:
    """Validate ``data`` for a model and return its canonical view and layout.

    Parameters
    ----------
    data
        numpy or dask array: ``(Y, X)`` or ``(Z, Y, X)``, with a leading channel axis
        when the model takes several channels.
    model_dims
        2 or 3.
    in_channels
        Channels the model expects.
    slice_axis
        For a 2D model on a volume: the spatial axis to cut across (0 = z, the usual plane).
    """
    check_dtype(data)
    shape = tuple(int(s) for s in data.shape)
    if 0 in shape or not shape:
        raise InputDataError(f"the input is empty (shape {shape}): choose another image")
    has_channels = in_channels > 1
    if has_channels:
        if len(shape) < 3 or shape[0] != in_channels:
            raise InputDataError(
                f"the model expects {in_channels} channels on the first axis, but the input "
                f"has shape {shape}: stack the channels first (C, [Z,] Y, X)"
            )
        spatial = shape[1:]
    else:
        spatial = shape
        if len(spatial) == model_dims + 2 and spatial[0] == 1:
            # A singleton channel/time axis in front, as napari and many files give.
            data, spatial = data[0], spatial[1:]
    expected = "a 2D image or a 3D stack" if model_dims == 2 else "a 3D volume"
    if model_dims == 3 and len(spatial) != 3:
        raise InputDataError(
            f"this 3D model needs a 3D volume (Z, Y, X), got spatial shape {spatial}: "
            "use a 2D model for single images"
        )
    if model_dims == 2 and len(spatial) not in (2, 3):
        raise InputDataError(
            f"this 2D model needs {expected} (2 or 3 spatial axes), got {len(spatial)} axes "
            f"{spatial}: the extra axis is channels or time, and EM is one channel; keep one "
            "(Fiji: Image ▸ Color ▸ Split Channels, or Image ▸ Duplicate of one frame; in "
            "napari: right-click the layer ▸ Split Stack) and save it as its own TIFF"
            + ("; or the model expects more channels" if len(spatial) == 4 else "")
        )
    view = data if has_channels else data[None]
    axis: int | None = None
    if model_dims == 2 and len(spatial) == 3:
        axis = int(slice_axis) % 3
        view = moveaxis(view, 1 + axis, 1)
    elif model_dims == 2:
        view = view[:, None]
    return view, Layout(shape, model_dims, has_channels, axis)


def restore_layout(canonical: np.ndarray, layout: Layout) -> np.ndarray:
    """Map a ``(K, Z, Y, X)`` result back onto the input's spatial axes, ``(K, *spatial)``."""
    out = canonical
    if layout.model_dims == 2 and layout.slice_axis is None:
        out = out[:, 0]
    elif layout.slice_axis is not None:
        out = np.moveaxis(out, 1, 1 + layout.slice_axis)
    return out


def read_normalized(
    regions: Sequence[tuple[Any, tuple, Callable[[np.ndarray], np.ndarray]]],
) -> np.ndarray:
    """Read ``(array, index, normalizer)`` regions into one float32 batch ``(B, C, ...)``.

    Lazy (dask) regions are computed together in one call; every region is normalised by
    its own input's normaliser and the batch is checked for NaN/inf.
    """
    raw = [array[index] for array, index, _ in regions]
    if any(is_dask(r) for r in raw):
        import dask  # only for dask input: numpy users never pay dask's import

        raw = dask.compute(*raw)
    arrays = [normalize(np.asarray(r)) for (_, _, normalize), r in zip(regions, raw)]
    if len({a.shape for a in arrays}) > 1:
        raise InputDataError(
            "target images differ in size and some are smaller than the patch size: "
            "set a patch size no larger than the smallest image"
        )
    batch = np.stack(arrays)
    check_finite(batch)
    return batch


def moveaxis(data: Any, source: int, destination: int) -> Any:
    """``np.moveaxis`` that stays lazy for dask arrays."""
    if is_dask(data):
        import dask.array as da  # only for dask input, as above

        return da.moveaxis(data, source, destination)
    return np.moveaxis(data, source, destination)


def is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def check_dtype(data: Any) -> None:
    """Raise :class:`InputDataError` unless ``data`` is a real numeric or boolean array."""
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        raise InputDataError(
            f"expected an image array, got {type(data).__name__}: pass a numpy or dask array"
        )
    kind = np.dtype(data.dtype).kind
    if kind not in "biuf":
        raise InputDataError(
            f"images of dtype {data.dtype} cannot be segmented: convert to an integer or "
            "float type (e.g. a grayscale image)"
        )
