"""Predicting one output block from the tiles that touch it (see :mod:`.plan`).

:func:`predict_block` is the unit of work everywhere: in the single-process loop, in each
dask.distributed task and in the chunks of a lazy napari layer. It reads only the block's
tiles (one read of their bounding box, resampled to the model's voxel size when the plan
says so), so memory follows the block, not the volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays.axes import canonical_view, restore_layout
from ..arrays.buffers import mapped_zeros
from ..arrays.normalization import check_finite
from ..arrays.resampling import resample_region
from ..device import resolve_device
from ..forward import tile_forward
from ..inference import PredictConfig, Prediction, segment_probabilities
from ..io.containers import StoredArray
from ..model.loaded import LoadedModel
from .plan import BlockPlan, Region


@dataclass
class BlockResult:
    """A block's prediction on the input's spatial axes, and where it goes."""

    index: int
    region: Region  # on the input's spatial axes
    prediction: Prediction


def predict_block(
    model: LoadedModel,
    plan: BlockPlan,
    source: Any,
    index: int,
    config: PredictConfig | None = None,
) -> BlockResult:
    """Predict block ``index`` of ``plan`` from ``source`` (numpy, dask or a
    :class:`~napari_bnadapt.io.containers.StoredArray`), with the plan's tiles, precision
    and layout (``config`` gives the device and the threshold)."""
    cfg = config or PredictConfig()
    block = plan.block_region(index)
    region = plan.model_region(block)
    view = _canonical(model, plan, source)
    jobs = plan.tiles_for(block)
    box = _bounding_box(plan, jobs)
    raw = _off_heap(plan.read_box(view, box))
    window = plan.window
    forward = tile_forward(model, plan.execution, resolve_device(cfg.device))
    accumulator: np.ndarray | None = None
    weights = mapped_zeros(tuple(r.stop - r.start for r in region))  # arrays.buffers: why
    batch_size = plan.execution.batch_size
    for first in range(0, len(jobs), batch_size):
        batch = jobs[first : first + batch_size]
        tiles = np.stack([plan.preprocessor(raw[_local(plan, box, job)]) for job in batch])
        check_finite(tiles)
        probs = forward(tiles)
        if accumulator is None:
            accumulator = mapped_zeros((probs.shape[1], *weights.shape))
        for (item, tile), tile_probs in zip(batch, probs):
            _accumulate(plan, region, item, tile, tile_probs * window, accumulator, weights, window)
    assert accumulator is not None  # every block touches at least one tile
    accumulator /= weights[None]
    if plan.resampled:
        accumulator = _back_onto_block(plan, accumulator, region, block)
    probabilities = restore_layout(accumulator, plan.layout)
    prediction = segment_probabilities(probabilities, model.threshold_for(cfg.threshold))
    prediction.execution = plan.execution
    return BlockResult(index, plan.output_region(block), prediction)


def _off_heap(array: np.ndarray) -> np.ndarray:
    """``array`` moved into a memory map of its own: it lives as long as the block."""
    mapped = mapped_zeros(array.shape, array.dtype)
    mapped[...] = array
    return mapped


def _back_onto_block(
    plan: BlockPlan, probabilities: np.ndarray, region: Region, block: Region
) -> np.ndarray:
    """Probabilities on the model-scale ``region`` resampled onto the input's ``block``
    (as the in-memory prediction resamples the whole volume's)."""
    classes = probabilities.shape[0]

    def read(box: tuple[slice, ...]) -> np.ndarray:
        return probabilities[(box[0], *_shift(box[1:], region))]

    return resample_region(
        read, (classes, *plan.model_shape), (classes, *plan.canonical_shape),
        (slice(0, classes), *block),
    )  # fmt: skip


def _canonical(model: LoadedModel, plan: BlockPlan, source: Any) -> Any:
    array = as_array(source)
    axis = plan.layout.slice_axis if plan.layout.slice_axis is not None else 0
    view, _ = canonical_view(array, model.dims, model.in_channels, axis)
    return view


def as_array(source: Any) -> Any:
    """A numpy or dask array of ``source`` (a container array becomes dask over its chunks)."""
    return source.to_dask() if isinstance(source, StoredArray) else source


def _bounding_box(plan: BlockPlan, jobs: list[tuple[int | None, Region]]) -> Region:
    """The canonical ``(Z, Y, X)`` region holding every tile of ``jobs``."""
    tiles = [tile for _, tile in jobs]
    box = [
        slice(min(t[a].start for t in tiles), max(t[a].stop for t in tiles))
        for a in range(plan.dims)
    ]
    if plan.dims == 2:
        slices = [item for item, _ in jobs]
        box.insert(0, slice(min(slices), max(slices) + 1))
    return tuple(box)


def _local(plan: BlockPlan, box: Region, job: tuple[int | None, Region]) -> tuple:
    """The tile of ``job`` inside the bounding box ``box`` (channel axis first)."""
    item, tile = job
    if plan.dims == 3:
        return (slice(None), *_shift(tile, box))
    return (slice(None), item - box[0].start, *_shift(tile, box[1:]))


def _accumulate(
    plan: BlockPlan,
    region: Region,
    item: int | None,
    tile: Region,
    weighted: np.ndarray,
    accumulator: np.ndarray,
    weights: np.ndarray,
    window: np.ndarray,
) -> None:
    """Add the part of one weighted tile that falls in the model-scale ``region``."""
    plane = region if plan.dims == 3 else region[1:]
    overlap = tuple(slice(max(t.start, b.start), min(t.stop, b.stop)) for t, b in zip(tile, plane))
    in_tile = _shift(overlap, tile)
    in_region = _shift(overlap, plane)
    if plan.dims == 2:
        in_region = (item - region[0].start, *in_region)
    accumulator[(slice(None), *in_region)] += weighted[(slice(None), *in_tile)]
    weights[in_region] += window[in_tile]


def _shift(region: Region, origin: Region) -> Region:
    return tuple(slice(r.start - o.start, r.stop - o.start) for r, o in zip(region, origin))
