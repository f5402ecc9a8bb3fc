"""Seeded patch sampling over a whole target (images, stacks, volumes; numpy or dask)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..arrays.axes import canonical_view, read_normalized
from ..arrays.resampling import resample, resample_lazily
from ..arrays.tiling import tile_starts
from ..errors import InputDataError
from ..model.input_steps import InputStep, compose
from ..model.loaded import LoadedModel, Preprocessor

DEFAULT_PATCH = {2: 128, 3: 64}


@dataclass(frozen=True)
class Patch:
    """One patch: which target item, which slice (2D models), which region."""

    item: int
    index: tuple


@dataclass
class TargetSet:
    """Target data in canonical views, with one preprocessor per input (normalisation fitted
    over all of it, then the model's input steps)."""

    views: list[Any]
    normalizers: list[Preprocessor]
    shapes: list[tuple[int, ...]]
    slice_axis: int | None = None

    @property
    def total_voxels(self) -> int:
        return sum(int(np.prod(v.shape[1:])) for v in self.views)

    def with_steps(self, steps: Sequence[InputStep]) -> TargetSet:
        """The same data read through further input steps (a cure's, applied in order)."""
        return replace(self, normalizers=[compose(n, steps) for n in self.normalizers])


def to_model_scale(
    model: LoadedModel,
    target: Any,
    voxel_size: tuple[float, ...] | None,
    slice_axis: int | None = None,
) -> Any:
    """``target`` (an array or a list of them) resampled to the model's voxel size; as it
    is when no resampling is needed. A lazy target (dask, a container array) stays lazy:
    reading a patch resamples only the input under it, so a huge volume is never read
    whole (the values are those of resampling it whole, bit for bit)."""
    if isinstance(target, (list, tuple)):
        return [to_model_scale(model, item, voxel_size, slice_axis) for item in target]
    factors = model.zoom_for(tuple(target.shape), voxel_size, slice_axis)
    if factors is None:
        return target
    return (
        resample(target, factors)
        if isinstance(target, np.ndarray)
        else resample_lazily(target, factors)
    )


def prepare_target(
    model: LoadedModel,
    target: Any,
    slice_axis: int | None = None,
    voxel_size: tuple[float, ...] | None = None,
) -> TargetSet:
    """Validate target data against ``model``: an array, or a list of arrays (images).

    With ``voxel_size`` (nm, the same for every item) differing from the model's, each
    item is resampled to the model's voxel size first.
    """
    items = list(target) if isinstance(target, (list, tuple)) else [target]
    if not items:
        raise InputDataError("no target data was given: pass an image, a stack or a volume")
    axis = model.training_axis if slice_axis is None else slice_axis
    views, normalizers, shapes = [], [], []
    for item in items:
        # Normalised as the input is (fitted on its own voxels), as predictions are.
        own, _ = canonical_view(item, model.dims, model.in_channels, axis)
        item = to_model_scale(model, item, voxel_size, slice_axis)
        view, layout = canonical_view(item, model.dims, model.in_channels, axis)
        _require_patch_room(model, layout.spatial_shape)
        views.append(view)
        normalizers.append(model.preprocessor(own))
        shapes.append(layout.spatial_shape)
    return TargetSet(views, normalizers, shapes, layout.slice_axis)


def smallest_patch(model: LoadedModel) -> int:
    """The smallest patch every forward pass of adaptation and capture can take: twice the
    network's down-sampling, and at least the smallest input a package declares."""
    return max(2 * model.divisor, model.min_size)


def _require_patch_room(model: LoadedModel, spatial: tuple[int, ...]) -> None:
    """A target must hold patches the network can measure statistics on: at its deepest
    BatchNorm a patch must keep more than one value per channel (and a package's network
    must get at least its declared smallest input)."""
    least = smallest_patch(model)
    plane = spatial[-model.dims :]
    if min(plane) < least:
        raise InputDataError(
            f"the target ({'×'.join(map(str, plane))} px) is smaller than {least} px along an "
            f"axis: statistics need patches of at least {least} px (twice the network's "
            "down-sampling); choose a larger target"
        )


def sample_target(
    model: LoadedModel,
    target: Any,
    patches: int,
    patch_size: int | Sequence[int] | None = None,
    seed: int = 0,
    roi: Any | None = None,
    slice_axis: int | None = None,
    voxel_size: tuple[float, ...] | None = None,
) -> tuple[TargetSet, list[Patch], tuple[int, ...]]:
    """Validate ``target`` and choose its patches: what adaptation and latent capture share,
    so that with the same settings both see exactly the same patches. ``voxel_size``: see
    :func:`prepare_target` (an ROI is resampled with the target)."""
    targets = prepare_target(model, target, slice_axis, voxel_size)
    if roi is not None:
        factors = model.zoom_for(tuple(roi.shape), voxel_size, slice_axis)
        if factors is not None:
            roi = resample((np.asarray(roi) != 0).astype(np.uint8), factors, order=0)
    patch = patch_shape(model, patch_size)
    return targets, sample_patches(targets, model.dims, patch, patches, seed, roi), patch


def patch_shape(model: LoadedModel, requested: int | Sequence[int] | None) -> tuple[int, ...]:
    """The patch size: requested, else the model's training patch (at least the default)."""
    if requested is None:
        trained = model.metadata.get("patch_size")
        size = max(DEFAULT_PATCH[model.dims], int(max(trained)) if trained else 0)
        return (size,) * model.dims
    sizes = (requested,) * model.dims if isinstance(requested, int) else tuple(requested)
    if len(sizes) != model.dims or min(sizes) < 1:
        raise InputDataError(f"patch size needs {model.dims} positive sizes, got {requested}")
    if min(sizes) < smallest_patch(model):
        raise InputDataError(
            f"patch size {requested} is too small for this network: use at least "
            f"{smallest_patch(model)} px (twice its down-sampling, or its smallest input), "
            "e.g. the default"
        )
    return tuple(int(s) for s in sizes)


def sample_patches(
    targets: TargetSet,
    model_dims: int,
    patch: tuple[int, ...],
    count: int,
    seed: int = 0,
    roi: Any | None = None,
) -> list[Patch]:
    """Choose ``count`` patches spread over all targets, reproducibly from ``seed``.

    Candidates are a regular grid of patch positions covering every image/slice/volume;
    when there are at most ``count`` candidates all are used (the whole target is seen),
    otherwise ``count`` are drawn without replacement. With ``roi`` (nonzero = usable,
    same spatial shape as a single target), only patches whose centre lies inside are kept.
    """
    candidates = _grid(targets, model_dims, patch)
    if roi is not None:
        candidates = _inside_roi(candidates, targets, roi, model_dims)
    if count >= len(candidates):
        return candidates
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(candidates), size=count, replace=False))
    return [candidates[i] for i in chosen]


def read_patches(targets: TargetSet, patches: Sequence[Patch]) -> np.ndarray:
    """Normalised float32 patches ``(B, C, *patch)``."""
    return read_normalized(
        [(targets.views[p.item], p.index, targets.normalizers[p.item]) for p in patches]
    )


def batches(patches: list[Patch], batch_size: int) -> Iterator[list[Patch]]:
    for start in range(0, len(patches), batch_size):
        yield patches[start : start + batch_size]


def _grid(targets: TargetSet, model_dims: int, patch: tuple[int, ...]) -> list[Patch]:
    candidates = []
    for item, view in enumerate(targets.views):
        spatial = view.shape[2:] if model_dims == 2 else view.shape[1:]
        size = [min(p, n) for p, n in zip(patch, spatial)]
        starts = [tile_starts(n, p, 0) for n, p in zip(spatial, size)]
        regions = [
            tuple(slice(s, s + p) for s, p in zip(origin, size))
            for origin in np.array(np.meshgrid(*starts, indexing="ij")).reshape(len(size), -1).T
        ]
        slices = range(view.shape[1]) if model_dims == 2 else [None]
        for z in slices:
            for region in regions:
                index = (slice(None), *region) if z is None else (slice(None), z, *region)
                candidates.append(Patch(item, index))
    return candidates


def _inside_roi(
    candidates: list[Patch], targets: TargetSet, roi: Any, model_dims: int
) -> list[Patch]:
    if len(targets.views) != 1:
        raise InputDataError("a sampling ROI needs a single target image or volume")
    if tuple(roi.shape) != tuple(targets.shapes[0]):
        raise InputDataError(
            f"the ROI has shape {tuple(roi.shape)} but the target {targets.shapes[0]}: "
            "draw the ROI on the target layer"
        )
    # The ROI in the same canonical (Z, Y, X) order as the patch indices.
    axis = targets.slice_axis
    canonical, _ = canonical_view(np.asarray(roi) != 0, model_dims, 1, 0 if axis is None else axis)
    canonical = canonical[0]
    kept = []
    for patch in candidates:
        centre = tuple(
            (s.start + s.stop - 1) // 2 if isinstance(s, slice) else s for s in patch.index[1:]
        )
        if canonical[centre]:
            kept.append(patch)
    if not kept:
        raise InputDataError(
            "no patch centre falls inside the ROI: enlarge the ROI or use a smaller patch size"
        )
    return kept
