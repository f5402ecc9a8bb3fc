"""The geometry of a tiled prediction cut into output blocks.

The tiles are those of the in-memory prediction (:func:`napari_bnadapt.inference.predict`):
one grid over the whole input, the same blending window. An output block is predicted from
every tile that touches it (its halo is the rest of those tiles: the network's receptive
field and the blending ramp), accumulated in the same order, divided by the same summed
weights. So a block equals the same region of the in-memory result, and blocks can be
computed in any order, in any process.

Everything here is in the canonical frame ``(Z, Y, X)`` of :mod:`..arrays.axes`: for a 2D
model Z indexes slices and tiles cover ``(Y, X)``; for a 3D model tiles cover all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays.axes import Layout, canonical_view
from ..arrays.tiling import blend_window, tile_slices
from ..errors import require
from ..inference import PredictConfig, tile_geometry
from ..model.loaded import LoadedModel, Preprocessor

#: Default output block (canonical Z, Y, X). Tiles that straddle a block border are
#: computed by both blocks, so blocks are several tiles wide: with the default tiles and
#: overlap, 2048² planes recompute 14 % of a 2D model's tiles (1024²: 35 %), 256³ blocks
#: 49 % of a 3D model's 64³ tiles (512³: 15 %, at 8× the block memory). docs/scale.md.
DEFAULT_BLOCK = {2: (4, 2048, 2048), 3: (256, 256, 256)}

Region = tuple[slice, ...]


@dataclass(frozen=True)
class BlockPlan:
    """Tiles, window and blocks of one prediction; small and picklable."""

    dims: int
    layout: Layout
    canonical_shape: tuple[int, ...]  # (Z, Y, X) of the canonical view
    tiles: tuple[Region, ...]  # over (Y, X) for 2D models, (Z, Y, X) for 3D
    overlap: tuple[int, ...]
    block: tuple[int, ...]  # (Z, Y, X)
    preprocessor: Preprocessor
    divisor: int

    @property
    def window(self) -> np.ndarray:
        return blend_window([s.stop - s.start for s in self.tiles[0]], self.overlap)

    @property
    def blocks(self) -> list[Region]:
        """Every output block, in C order, as canonical ``(Z, Y, X)`` slices."""
        return [self.block_region(i) for i in range(self.block_count)]

    @property
    def block_count(self) -> int:
        return int(np.prod(self.grid()))

    def block_region(self, index: int) -> Region:
        """Block ``index`` (C order) without listing the others: a task of a huge volume
        must not pay for every block."""
        position = np.unravel_index(index, self.grid())
        return tuple(
            slice(int(p) * b, min(int(p) * b + b, n))
            for p, b, n in zip(position, self.block, self.canonical_shape)
        )

    def grid(self) -> tuple[int, ...]:
        """Blocks per canonical axis."""
        return tuple(-(-n // b) for n, b in zip(self.canonical_shape, self.block))

    def tiles_for(self, block: Region) -> list[tuple[int | None, Region]]:
        """``(slice index or None, tile)`` of every tile touching ``block``, in the
        in-memory prediction's order (slice by slice, then the tile grid's order)."""
        if self.dims == 3:
            return [(None, t) for t in self.tiles if _touches(t, block)]
        plane = block[1:]
        touching = [t for t in self.tiles if _touches(t, plane)]
        return [(z, t) for z in range(block[0].start, block[0].stop) for t in touching]

    def output_region(self, block: Region) -> Region:
        """``block`` on the input's spatial axes (the mask's axes)."""
        if self.layout.model_dims == 2 and self.layout.slice_axis is None:
            return tuple(block[1:])
        if self.layout.slice_axis is None:
            return tuple(block)
        spatial = list(block[1:])
        spatial.insert(self.layout.slice_axis, block[0])
        return tuple(spatial)

    def output_chunks(self) -> tuple[int, ...]:
        """The block shape on the input's spatial axes (the output store's chunks)."""
        full = tuple(slice(0, b) for b in self.block)
        return tuple(r.stop - r.start for r in self.output_region(full))


def make_plan(
    model: LoadedModel,
    image: Any,
    config: PredictConfig | None = None,
    block: int | tuple[int, ...] | None = None,
) -> BlockPlan:
    """The plan of predicting ``image`` (numpy, dask or a container array) with ``model``.

    ``block`` is the output block on the canonical axes (one int for all); the in-plane
    block of a 2D model, and every axis of a 3D model's, is rounded up to at least one
    tile so that a block costs no more than about its own tiles.
    """
    cfg = config or PredictConfig()
    axis = model.training_axis if cfg.slice_axis is None else cfg.slice_axis
    view, layout = canonical_view(image, model.dims, model.in_channels, axis)
    canonical = tuple(int(s) for s in view.shape[1:])
    spatial = canonical[1:] if model.dims == 2 else canonical
    tile, overlap = tile_geometry(model, cfg, spatial)
    tiles = tuple(tile_slices(spatial, tile, overlap))
    sizes = _block_sizes(block, model.dims)
    require(all(b >= 1 for b in sizes), f"block sizes must be positive, got {block}")
    floor = (1, *tile) if model.dims == 2 else tile
    sizes = tuple(min(n, max(b, f)) for b, f, n in zip(sizes, floor, canonical))
    return BlockPlan(
        model.dims, layout, canonical, tiles, overlap, sizes, model.preprocessor(view),
        model.divisor,
    )  # fmt: skip


def _block_sizes(block: int | tuple[int, ...] | None, dims: int) -> tuple[int, ...]:
    if block is None:
        return DEFAULT_BLOCK[dims]
    if isinstance(block, int):
        return (block,) * 3
    sizes = tuple(int(b) for b in block)
    require(len(sizes) == 3, f"give one block size or three (z, y, x), got {block}")
    return sizes


def _touches(tile: Region, region: Region) -> bool:
    return all(t.start < r.stop and r.start < t.stop for t, r in zip(tile, region))
