"""Overlapping tiles and the smooth window that blends them without seams."""

from __future__ import annotations

import itertools
import math
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


#: How much longer than asked a tile may grow so that one tile fewer covers an axis.
STRETCH = 0.15


def fitted_tile(size: int, tile: int, overlap: int, align: int = 1) -> tuple[int, int]:
    """Tile length and stride that cover ``[0, size)`` with about ``tile``-long tiles
    overlapping by at least ``overlap``, wasting as little as possible.

    A fixed tile and stride leave a last tile that mostly repeats its neighbour (1024 px in
    512-px tiles overlapping by 24: three tiles, 50 % more work than two). Here the count
    of tiles comes first (the fewest of at most ``tile`` px, or one fewer when its tiles
    are at most 15 % longer), then the shortest stride, a multiple of ``align`` (the
    network's down-sampling, so that every tile but the last sees the pooling grid of the
    whole image) unless any stride saves a tenth of the work, with tiles of that stride
    plus the overlap. ``overlap`` should be a multiple of ``align`` too, so that tiles are.
    """
    if size <= tile:
        return size, size
    fewest = max(1, math.ceil((size - overlap) / max(1, tile - overlap)))
    best: tuple[float, int, int] | None = None
    for count in (fewest - 1, fewest):
        for grid in {align, 1}:  # an unaligned stride only when it saves a tenth
            if count < 1:
                continue
            if count == 1:
                length, stride = size, size
            else:
                stride = grid * math.ceil((size - overlap) / count / grid)
                length = stride + overlap
            if length > tile * (1 + STRETCH) and count < fewest:
                continue
            cost = length * len(tile_starts(size, length, length - stride))
            cost *= 1.0 if grid == align else 1.1
            if best is None or cost < best[0]:
                best = (cost, min(length, size), stride)
    assert best is not None
    return best[1], best[2]


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
