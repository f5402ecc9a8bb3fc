"""Overlapping tiles and the smooth window that blends them without seams."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)`` with ``overlap``.

    The last tile is shifted back to end exactly at ``size``, so no tile leaves the image
    and nothing needs padding except images smaller than one tile.
    """
    if size <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def tile_slices(
    shape: Sequence[int], tile: Sequence[int], overlap: Sequence[int]
) -> list[tuple[slice, ...]]:
    """Every tile of an N-D grid over ``shape`` as a tuple of slices."""
    per_axis = [
        [slice(s, s + min(t, n)) for s in tile_starts(n, t, o)]
        for n, t, o in zip(shape, tile, overlap)
    ]
    return list(itertools.product(*per_axis))


def blend_window(shape: Sequence[int], overlap: Sequence[int], floor: float = 1e-3) -> np.ndarray:
    """Separable weight window: 1 in the middle, sin² tapers over ``overlap`` at each end.

    Where two neighbouring tiles overlap by exactly ``overlap``, the rising sin² of one and
    the falling cos² of the other sum to 1: the blend is a partition of unity, with no
    seams. A small ``floor`` keeps the weight positive at the image border, where only one
    tile covers a pixel (blending divides by the summed weights, so the value there is
    that tile's prediction).
    """
    window = np.ones(tuple(shape), dtype=np.float32)
    for axis, (length, margin) in enumerate(zip(shape, overlap)):
        margin = min(int(margin), length // 2)
        profile = np.ones(length, dtype=np.float32)
        if margin > 0:
            ramp = np.sin(0.5 * np.pi * (np.arange(margin) + 0.5) / margin) ** 2
            profile[:margin] = ramp
            profile[length - margin :] = ramp[::-1]
        profile = np.maximum(profile, floor)
        view = [1] * len(shape)
        view[axis] = length
        window *= profile.reshape(view)
    return window
