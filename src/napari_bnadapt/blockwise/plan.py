"""The geometry of a tiled prediction cut into output blocks.

The tiles are those of the in-memory prediction (:func:`napari_bnadapt.inference.predict`):
one grid over the whole input, the same blending window. An output block is predicted from
every tile that touches it (its halo is the rest of those tiles: the network's receptive
field and the blending ramp), accumulated in the same order, divided by the same summed
weights. So a block equals the same region of the in-memory result, and blocks can be
computed in any order, in any process.

Everything here is in the canonical frame ``(Z, Y, X)`` of :mod:`..arrays.axes`: for a 2D
model Z indexes slices and tiles cover ``(Y, X)``; for a 3D model tiles cover all three.

When the input's voxel size differs from the model's, tiles lie on the grid of the input
resampled to the model's voxel size (``model_shape``), as in the in-memory prediction, and
blocks on the input's own grid: a block reads the input under its tiles, resamples it
(:func:`~napari_bnadapt.arrays.resampling.resample_region`), blends the tiles over the
model-scale region its voxels are interpolated from, and resamples that back onto itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays.axes import Layout, canonical_view
from ..arrays.normalization import check_finite
from ..arrays.resampling import input_region, region_reader, resample_region, zoomed_shape
from ..arrays.tiling import blend_window, tile_slices
from ..device import resolve_device
from ..errors import require
from ..inference import PredictConfig, plan_execution, tile_geometry
from ..model.loaded import LoadedModel, Preprocessor
from ..predict_config import DEFAULT_BLOCK
from ..speed.execution import Execution, sample_jobs

Region = tuple[slice, ...]


@dataclass(frozen=True)
class BlockPlan:
    """Tiles, window and blocks of one prediction; small and picklable."""

    dims: int
    layout: Layout
    canonical_shape: tuple[int, ...]  # (Z, Y, X) of the canonical view
    tiles: tuple[Region, ...]  # over (Y, X) for 2D models, (Z, Y, X) for 3D, model scale
    block: tuple[int, ...]  # (Z, Y, X)
    preprocessor: Preprocessor
    divisor: int
    execution: Execution
    #: ``canonical_shape`` resampled to the model's voxel size (the same when it is not).
    model_shape: tuple[int, ...] = ()

    @property
    def overlap(self) -> tuple[int, ...]:
        return self.execution.overlap

    @property
    def resampled(self) -> bool:
        return bool(self.model_shape) and self.model_shape != self.canonical_shape

    @property
    def zoom(self) -> tuple[float, ...]:
        """Model-scale voxels per input voxel along canonical ``(Z, Y, X)``."""
        shape = self.model_shape or self.canonical_shape
        return tuple(m / n for m, n in zip(shape, self.canonical_shape))

    @functools.cached_property
    def window(self) -> np.ndarray:
        """The blending window of every tile (made once per process)."""
        return blend_window([s.stop - s.start for s in self.tiles[0]], self.overlap)

    def model_region(self, block: Region) -> Region:
        """The model-scale region whose probabilities ``block``'s voxels are interpolated
        from (``block`` itself without resampling)."""
        if not self.resampled:
            return tuple(block)
        return input_region(self.model_shape, self.canonical_shape, block)

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
        """``(slice index or None, tile)`` of every tile touching ``block``'s model-scale
        region, in the in-memory prediction's order (slice by slice, then the tile grid's
        order)."""
        region = self.model_region(block)
        if self.dims == 3:
            return [(None, t) for t in self.tiles if _touches(t, region)]
        plane = region[1:]
        touching = [t for t in self.tiles if _touches(t, plane)]
        return [(z, t) for z in range(region[0].start, region[0].stop) for t in touching]

    def job(self, index: int) -> tuple[int | None, Region]:
        """Tile ``index`` of the whole prediction, in the in-memory order."""
        if self.dims == 3:
            return None, self.tiles[index]
        return index // len(self.tiles), self.tiles[index % len(self.tiles)]

    @property
    def job_count(self) -> int:
        return len(self.tiles) * (1 if self.dims == 3 else self.model_shape[0])

    def read_box(self, view: Any, box: Region) -> np.ndarray:
        """The canonical input ``(C, *box)`` under the model-scale region ``box`` of the
        canonical ``view``: one read of the input (of the box the resampling needs, when
        the input is resampled)."""
        read = region_reader(view)
        if not self.resampled:
            return read((slice(None), *box))
        channels = int(view.shape[0])
        out_shape = (channels, *self.model_shape)
        return resample_region(read, tuple(view.shape), out_shape, (slice(0, channels), *box))

    def read_jobs(self, view: Any, jobs: list[tuple[int | None, Region]]) -> np.ndarray:
        """The normalised tiles ``(B, C, *tile)`` of ``jobs`` (``(slice or None, tile)``)."""
        tiles = []
        for item, tile in jobs:
            if item is None:
                tiles.append(self.preprocessor(self.read_box(view, tile)))
            else:
                raw = self.read_box(view, (slice(item, item + 1), *tile))
                tiles.append(self.preprocessor(raw[:, 0]))
        batch = np.stack(tiles)
        check_finite(batch)
        return batch

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
    voxel_size: tuple[float, ...] | None = None,
) -> BlockPlan:
    """The plan of predicting ``image`` (numpy, dask or a container array) with ``model``.

    ``block`` is the output block on the canonical axes (one int for all); the in-plane
    block of a 2D model, and every axis of a 3D model's, is rounded up to at least one
    tile so that a block costs no more than about its own tiles. With ``voxel_size`` (nm
    per spatial axis) differing from the model's, tiles lie on the input resampled to the
    model's voxel size (see the module's docstring). The tiles' precision and layout are
    chosen here, once (:func:`~napari_bnadapt.inference.plan_execution`).
    """
    cfg = config or PredictConfig()
    axis = model.training_axis if cfg.slice_axis is None else cfg.slice_axis
    view, layout = canonical_view(image, model.dims, model.in_channels, axis)
    canonical = tuple(int(s) for s in view.shape[1:])
    factors = model.zoom_for(tuple(image.shape), voxel_size, cfg.slice_axis)
    model_shape = canonical
    if factors is not None:
        model_shape = zoomed_shape(canonical, canonical_factors(factors, layout))
    spatial = model_shape[1:] if model.dims == 2 else model_shape
    tile, overlap = tile_geometry(model, cfg, spatial)
    tiles = tuple(tile_slices(spatial, tile, overlap))
    sizes = _block_sizes(block, model.dims)
    require(all(b >= 1 for b in sizes), f"block sizes must be positive, got {block}")
    floor = (1, *tile) if model.dims == 2 else tile
    floor = tuple(math.ceil(f * n / m) for f, n, m in zip(floor, canonical, model_shape))
    sizes = tuple(min(n, max(b, f)) for b, f, n in zip(sizes, floor, canonical))
    plan = BlockPlan(
        model.dims, layout, canonical, tiles, sizes, model.preprocessor(view), model.divisor,
        Execution(tile, overlap, 1), model_shape,
    )  # fmt: skip
    count = plan.job_count
    execution = plan_execution(
        model, cfg, resolve_device(cfg.device), tile, overlap, count,
        lambda: sample_jobs(
            [plan.job(i) for i in _spread(count)], tile, model.divisor,
            lambda picked: plan.read_jobs(view, picked),
        ),
    )  # fmt: skip
    return BlockPlan(
        model.dims, layout, canonical, tiles, sizes, plan.preprocessor, model.divisor,
        execution, model_shape,
    )  # fmt: skip


def canonical_factors(factors: Sequence[float], layout: Layout) -> tuple[float, ...]:
    """Zoom factors per input axis (:meth:`LoadedModel.zoom_for`) on the canonical
    ``(Z, Y, X)`` axes (a 2D image's Z, and a 2D model's slicing axis, keep 1)."""
    if layout.model_dims == 2 and layout.slice_axis is None:
        return (1.0, *(float(f) for f in factors[-2:]))
    spatial = [float(f) for f in factors[-3:]]
    if layout.slice_axis is not None:
        spatial.insert(0, spatial.pop(layout.slice_axis))
    return tuple(spatial)


def _spread(count: int, most: int = 4) -> list[int]:
    return sorted({round(i) for i in np.linspace(0, count - 1, min(count, most))})


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
