"""Where the network is unsure, without labels: where painting a stroke should help most.

Two maps on the input's own grid, each in [0, 1] (1 = most unsure):

- ``entropy``: the normalised entropy of the predicted probabilities (one pass);
- ``tta``: the disagreement between test-time augmentations, the spread (twice the
  standard deviation) of the probabilities predicted on the input flipped along each of
  its last two axes and both (four passes). Flipping those axes never mixes slices a 2D
  model treats apart, whatever its slicing axis.

:func:`next_uncertain_region` then gives the window of highest mean uncertainty not yet
visited, so that a user (or the napari widget) can go from one to the next. Neither proves
the network wrong where it is sure: a network can be confidently wrong (docs/strokes.md
measures whether strokes placed here help more than strokes placed at random).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputDataError
from ..inference import PredictConfig, predict_steps
from ..jobs import Stages, Steps, blocking
from ..model.loaded import LoadedModel

METHODS = ("entropy", "tta")
#: The flips (of the last two axes) whose predictions the ``tta`` map compares.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def uncertainty_steps(
    model: LoadedModel,
    image: Any,
    method: str = "entropy",
    config: PredictConfig | None = None,
    *,
    voxel_size: tuple[float, ...] | None = None,
) -> Steps[np.ndarray]:
    """A float32 map of how unsure ``model`` is on ``image``, in the input's spatial shape
    (``method``: ``entropy`` or ``tta``, see the module docstring); ``voxel_size`` resamples
    as :func:`~napari_bnadapt.inference.predict` does. Yields progress per batch."""
    if method not in METHODS:
        raise InputDataError(f"uncertainty method must be one of {', '.join(METHODS)}")
    if method == "entropy":
        prediction = yield from predict_steps(model, image, config, voxel_size=voxel_size)
        return entropy_map(prediction.probabilities, prediction.multiclass)
    stages = Stages(len(FLIPS))
    views, multiclass = [], False
    for axes in FLIPS:
        flipped = np.flip(np.asarray(image), axes) if axes else image
        prediction = yield from stages.run(
            predict_steps(model, flipped, config, voxel_size=voxel_size)
        )
        probabilities, multiclass = prediction.probabilities, prediction.multiclass
        views.append(np.flip(probabilities, axes) if axes else probabilities)
    spread = 2.0 * np.std(np.stack(views), axis=0)
    if multiclass:  # classes first: their mean spread
        spread = spread.mean(axis=0)
    return np.clip(spread, 0.0, 1.0).astype(np.float32)


uncertainty_map = blocking(uncertainty_steps, "uncertainty_map")


def entropy_map(probabilities: np.ndarray, multiclass: bool = False) -> np.ndarray:
    """Normalised entropy per voxel (classes first when ``multiclass``)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    if not multiclass:
        out = -(p * np.log(p) + (1 - p) * np.log(1 - p)) / np.log(2)
    else:
        out = -(p * np.log(p)).sum(axis=0) / np.log(p.shape[0])
    return out.astype(np.float32)


def next_uncertain_region(
    uncertainty: np.ndarray,
    size: int | Sequence[int] = 64,
    visited: Sequence[tuple[slice, ...]] = (),
    per_slice: bool | None = None,
    painted: Any | None = None,
) -> tuple[slice, ...] | None:
    """The window of ``size`` (per spatial axis, or in the plane of each slice when
    ``per_slice``: the default for 3D maps) with the highest mean uncertainty that overlaps
    no ``visited`` window by half its size or more, and is centred more than half a window
    from every ``painted`` pixel (strokes on the map's grid, nonzero = painted: a region
    already corrected is not proposed again); None when none is left.

    Returns the window as slices of ``uncertainty`` (clipped to it).
    """
    u = np.asarray(uncertainty, dtype=np.float32)
    flat = u.ndim == 3 if per_slice is None else per_slice
    sizes = _window(size, u.ndim, flat)
    mean = ndimage.uniform_filter(u, sizes, mode="constant")
    free = np.ones(u.shape, bool)
    if painted is not None:
        strokes = np.asarray(painted) != 0
        if strokes.shape != u.shape:
            raise InputDataError(
                f"the strokes have shape {strokes.shape}, the uncertainty map {u.shape}: "
                "paint them on the image the map was made of"
            )
        free &= ~ndimage.maximum_filter(strokes, sizes, mode="constant")
    for region in visited:
        grown = tuple(
            slice(max(0, (r.start or 0) - s // 2), (n if r.stop is None else r.stop) + s // 2)
            for r, s, n in zip(region, sizes, u.shape)
        )
        free[grown] = False
    if not free.any():
        return None
    centre = np.unravel_index(int(np.argmax(np.where(free, mean, -np.inf))), u.shape)
    region = []
    for c, s, n in zip(centre, sizes, u.shape):
        width = min(s, n)
        start = int(np.clip(c - s // 2, 0, n - width))
        region.append(slice(start, start + width))
    return tuple(region)


def _window(size: int | Sequence[int], ndim: int, per_slice: bool) -> tuple[int, ...]:
    if isinstance(size, int):
        plane = 2 if per_slice else ndim
        return (1,) * (ndim - plane) + (size,) * plane
    sizes = tuple(int(s) for s in size)
    if len(sizes) != ndim or min(sizes) < 1:
        raise InputDataError(f"window size needs {ndim} positive sizes, got {tuple(size)}")
    return sizes
