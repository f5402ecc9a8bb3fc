"""Tiled, blended inference of a segmentation model over images and volumes."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .arrays.axes import Layout, canonical_view, is_dask, read_normalized, restore_layout
from .arrays.resampling import resample, resample_to
from .arrays.tiling import blend_window, tile_slices
from .device import resolve_device
from .forward import LOGGER, TileTooLarge, tile_forward
from .jobs import Progress, Steps, blocking
from .memory import array_bytes, check_memory
from .model.loaded import LoadedModel, Preprocessor
from .predict_config import AMP as AMP  # re-exported: where users found it
from .predict_config import BATCH_VOXELS, PredictConfig
from .speed.execution import Execution, SpeedRequest, choose_speed, sample_jobs
from .speed.geometry import geometry_for
from .speed.network import foldable


@dataclass
class Prediction:
    """A segmentation in the input's spatial shape: the result of :func:`predict`.

    ``probabilities`` is the foreground probability for binary models and
    ``(classes, *spatial)`` softmax probabilities otherwise (None for a mask from
    elsewhere, e.g. a painted labels layer); ``mask`` is nonzero on foreground; ``labels``
    is the argmax class for multi-class models (else None).
    """

    probabilities: np.ndarray | None
    mask: np.ndarray
    labels: np.ndarray | None = None
    #: How it was computed (tiles, precision); None for a mask from elsewhere.
    execution: Execution | None = None

    @property
    def multiclass(self) -> bool:
        return self.labels is not None

    @property
    def segmentation(self) -> np.ndarray:
        """What to save and show: the class labels of a multi-class model, else the mask."""
        return self.labels if self.labels is not None else self.mask

    @classmethod
    def of_segmentation(
        cls,
        segmentation: np.ndarray,
        probabilities: np.ndarray | None = None,
        multiclass: bool = False,
    ) -> Prediction:
        """Rebuild a prediction from what was saved or shown (see :attr:`segmentation`)."""
        segmentation = np.asarray(segmentation)
        if multiclass:
            return cls(probabilities, (segmentation > 0).astype(np.uint8), segmentation)
        return cls(probabilities, segmentation, None)


def predict_steps(
    model: LoadedModel,
    image: Any,
    config: PredictConfig | None = None,
    *,
    voxel_size: tuple[float, ...] | None = None,
) -> Steps[Prediction]:
    """Segment ``image`` (numpy or dask; 2D image, 3D volume) with ``model``.

    Intensities are normalised once over the whole input, then the model runs in eval mode
    on overlapping tiles, batched, under ``torch.inference_mode``; tiles are blended with a
    smooth window. With ``voxel_size`` (nm per spatial axis) differing from the model's
    training voxel size, the input is resampled to the model's scale and the
    probabilities back onto the input's grid. Yields a :class:`Progress` after every batch
    of tiles.
    """
    cfg = config or PredictConfig()
    factors = model.zoom_for(tuple(image.shape), voxel_size, cfg.slice_axis)
    check_in_memory(model, tuple(image.shape), factors)
    source, normalizer = image, None
    if factors is not None:
        # Normalised as the input is (one fit over its own voxels), then resampled: as each
        # block of a streamed prediction is (blockwise.predict).
        normalizer = model.preprocessor(_canonical(model, image, cfg)[0])
        source = resample(image, factors)
    probabilities, execution = yield from _probabilities_fitting_memory(
        model, source, cfg, normalizer
    )
    if factors is not None:
        grid = tuple(image.shape)
        spatial = grid[len(grid) - (probabilities.ndim - 1) :]
        probabilities = resample_to(probabilities, (probabilities.shape[0], *spatial))
    prediction = segment_probabilities(probabilities, model.threshold_for(cfg.threshold))
    prediction.execution = execution
    return prediction


def _probabilities_fitting_memory(
    model: LoadedModel, image: Any, cfg: PredictConfig, normalizer: Preprocessor | None
) -> Steps[tuple[np.ndarray, Execution]]:
    """:func:`_probabilities`, started again with tiles half as large each time one tile
    alone does not fit in memory (down to twice the network's divisor), saying so."""
    while True:
        try:
            return (yield from _probabilities(model, image, cfg, normalizer))
        except TileTooLarge as exc:
            smaller = tuple(max(2 * model.divisor, t // 2) for t in exc.tile)
            if smaller == exc.tile:
                raise
            cfg = replace(cfg, tile_shape=smaller)
            note = f"out of memory with one tile: tiles of {'×'.join(map(str, smaller))} px now"
            LOGGER.warning(note)
            yield Progress(0, 1, f"segmenting ({note})")


predict = blocking(predict_steps, "predict")


def check_in_memory(
    model: LoadedModel, shape: tuple[int, ...], factors: tuple[float, ...] | None
) -> None:
    """Refuse, before reading anything, a prediction whose probabilities (at the model's
    scale and back on the input's grid) and mask would not fit in memory: a container
    can declare terabytes in a few bytes."""
    classes = model.out_channels
    at_model = [n * f for n, f in zip(shape, factors)] if factors else shape
    needed = array_bytes(at_model, 4 * classes) + array_bytes(shape, 4 * classes + 1)
    check_memory(
        needed,
        f"segmenting an image of {'×'.join(f'{n:,}' for n in shape)} px in memory",
        "write the mask block by block into OME-Zarr (--out mask.zarr), or segment a part",
    )


def _probabilities(
    model: LoadedModel, image: Any, cfg: PredictConfig, normalizer: Preprocessor | None = None
) -> Steps[tuple[np.ndarray, Execution]]:
    """Blended class probabilities ``(K, *spatial)`` on ``image``'s own grid, and how they
    were computed."""
    view, layout = _canonical(model, image, cfg)
    normalizer = normalizer or model.preprocessor(view)
    spatial = view.shape[2:] if model.dims == 2 else view.shape[1:]
    tile, overlap = tile_geometry(model, cfg, spatial)
    tiles = tile_slices(spatial, tile, overlap)
    items = range(view.shape[1]) if model.dims == 2 else [None]
    jobs = [(item, t) for item in items for t in tiles]
    device = resolve_device(cfg.device)
    execution = plan_execution(
        model, cfg, device, tile, overlap, len(jobs),
        lambda: sample_jobs(jobs, tile, model.divisor, lambda p: _read_tiles(view, p, normalizer)),
    )  # fmt: skip
    window = blend_window([s.stop - s.start for s in tiles[0]], overlap)
    weights = _weight_sum(spatial, tiles, window)
    forward = tile_forward(model, execution, device)
    total, batch_size = len(jobs), execution.batch_size
    with _accumulators(view, is_dask(image)) as allocate:
        accumulator = None
        for first in range(0, total, batch_size):
            batch = jobs[first : first + batch_size]
            probs = forward(_read_tiles(view, batch, normalizer))
            if accumulator is None:
                accumulator = allocate((probs.shape[1], *view.shape[1:]))
            for (item, region), tile_probs in zip(batch, probs):
                target = (slice(None), *region) if item is None else (slice(None), item, *region)
                accumulator[target] += tile_probs * window
            yield Progress(min(first + batch_size, total), total, forward.message)
        return _normalise(accumulator, weights, layout, model.dims), execution


def _canonical(model: LoadedModel, image: Any, cfg: PredictConfig) -> tuple[Any, Layout]:
    axis = model.training_axis if cfg.slice_axis is None else cfg.slice_axis
    return canonical_view(image, model.dims, model.in_channels, axis)


def plan_execution(
    model: LoadedModel,
    cfg: PredictConfig,
    device: Any,
    tile: tuple[int, ...],
    overlap: tuple[int, ...],
    count: int,
    sample: Callable[[], np.ndarray],
) -> Execution:
    """The :class:`Execution` of a job of ``count`` tiles: batch, precision and layout
    (:func:`~napari_bnadapt.speed.execution.choose_speed`); ``sample()`` gives normalised
    input (:func:`~napari_bnadapt.speed.execution.sample_jobs`) to check a reduced
    precision on."""
    voxels = int(np.prod(tile))
    batch = cfg.batch_size or max(1, BATCH_VOXELS * (4 if device.type == "cuda" else 1) // voxels)
    precision, channels_last, note = choose_speed(
        model.module, model.dims, model.in_channels, model.divisor, device,
        SpeedRequest(cfg.requested_precision, cfg.channels_last, cfg.fold_batchnorm),
        voxels * count, sample, model.threshold_for(cfg.threshold), model.min_size,
    )  # fmt: skip
    fold = cfg.fold_batchnorm and foldable(model.module)
    execution = Execution(tile, overlap, batch, precision, channels_last, fold, note)
    if note:
        LOGGER.info("segmenting with %s", execution.describe())
    return execution


def tile_geometry(
    model: LoadedModel, cfg: PredictConfig, spatial: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tile and overlap per axis on ``spatial`` (see
    :func:`~napari_bnadapt.speed.geometry.geometry_for`)."""
    return geometry_for(model, cfg.tile_shape, cfg.overlap, spatial)


def _weight_sum(
    spatial: tuple[int, ...], tiles: list[tuple[slice, ...]], window: np.ndarray
) -> np.ndarray:
    """Summed blending weights; identical for every slice, so computed once."""
    weights = np.zeros(spatial, dtype=np.float32)
    for region in tiles:
        weights[region] += window
    return weights


def _read_tiles(view: Any, batch: list, normalizer: Preprocessor) -> np.ndarray:
    """The batch's tiles as one normalised float32 array ``(B, C, *tile)``."""
    return read_normalized(
        [
            (
                view,
                (slice(None), *region) if item is None else (slice(None), item, *region),
                normalizer,
            )
            for item, region in batch
        ]
    )


@contextlib.contextmanager
def _accumulators(
    view: Any, disk_backed: bool
) -> Iterator[Callable[[tuple[int, ...]], np.ndarray]]:
    """Allocate the probability accumulator in RAM, or on disk for lazy (dask) input.

    For dask input the accumulator is a memory map of an anonymous temporary file, so the
    resident memory grows with the tile batch rather than with the volume.
    """
    if not disk_backed:
        yield lambda shape: np.zeros(shape, dtype=np.float32)
        return
    with tempfile.TemporaryFile(prefix="bnadapt-") as handle:
        yield lambda shape: np.memmap(handle, dtype=np.float32, mode="w+", shape=shape)


def _normalise(
    accumulator: np.ndarray, weights: np.ndarray, layout: Layout, dims: int
) -> np.ndarray:
    """Divide by the summed weights slab by slab; back to the input's axes ``(K, ...)``."""
    for z in range(accumulator.shape[1]):
        accumulator[:, z] /= weights if dims == 2 else weights[z]
    return restore_layout(accumulator, layout)


def segment_probabilities(probs: np.ndarray, threshold: float = 0.5) -> Prediction:
    """Masks (and labels) from class probabilities ``(K, *spatial)``."""
    classes = probs.shape[0]
    if classes == 1:
        probabilities = probs[0]
        mask = (probabilities >= threshold).astype(np.uint8)
        return Prediction(probabilities, mask, None)
    labels = np.argmax(probs, axis=0).astype(np.uint8 if classes < 256 else np.uint16)
    return Prediction(probs, (labels > 0).astype(np.uint8), labels)
