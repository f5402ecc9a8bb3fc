"""Painted strokes: checked, brought to the model's scale, split, and cut into patches.

The user paints a label array on the target's grid: 0 = not labelled; for a one-channel
model 1 = background and 2 = foreground; for a multi-class model the class index + 1. Any
number of slices may hold strokes. Here they are checked against the target (one line says
what is wrong), resampled to the model's voxel size exactly as the target is (nearest
neighbour: a label never blends), viewed in the canonical ``(Z, Y, X)`` layout of the
target's patches, and split into training and held-out pixels (whole strokes where a class
has several, else blocks of its one stroke), so that the stop rule and the guard of the
stroke cure need no labels beyond the strokes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..adabn.sampling import Patch, TargetSet
from ..arrays.axes import canonical_view
from ..arrays.resampling import resample
from ..errors import InputDataError
from ..model.loaded import LoadedModel
from ..model.painted_strokes import PaintedStrokes

#: Stroke labels of a one-channel model.
BACKGROUND, FOREGROUND = 1, 2
#: Edge (model pixels) of the blocks that go wholly to training or to the held-out strokes.
BLOCK = 16
#: Share of each class's blocks held out for the stop rule and the guard.
HELD_OUT = 0.25


def stroke_classes(model: LoadedModel) -> int:
    """How many stroke labels the model takes: 2 for one channel, else one per class."""
    return 2 if model.out_channels == 1 else model.out_channels


def class_names(model: LoadedModel) -> tuple[str, ...]:
    """The name of each stroke label 1, 2, …"""
    if model.out_channels == 1:
        return ("background", model.classes[0] if model.classes else "foreground")
    return tuple(model.classes)


def brush_width(
    model: LoadedModel,
    shape: tuple[int, ...],
    voxel_size: tuple[float, ...] | None,
    slice_axis: int | None = None,
) -> int:
    """The thinnest stroke (target pixels) that stays whole at the model's scale: one model
    pixel. Thin strokes teach more than wide ones (a wide stroke along a membrane labels
    its surroundings too), but a stroke thinner than a model pixel can vanish when the
    target is shrunk to the model's voxel size."""
    factors = model.zoom_for(tuple(shape), voxel_size, slice_axis)
    smallest = min(factors) if factors else 1.0
    return max(1, math.ceil(1.0 / smallest - 1e-6))


def check_strokes(strokes: Any, shape: tuple[int, ...], model: LoadedModel) -> np.ndarray:
    """The strokes as an integer array, or one line that says what is wrong with them.

    ``shape`` is the target's spatial shape (without its channel axis).
    """
    array = np.asarray(strokes)
    if array.shape != tuple(shape):
        raise InputDataError(
            f"the strokes have shape {array.shape} but the target {tuple(shape)}: paint "
            "them on the target (a labels layer or TIFF of the same shape)"
        )
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.equal(np.mod(array, 1), 0).all():
            raise InputDataError(
                "the strokes hold non-integer values: save them as a labels image "
                "(0 = not labelled, 1, 2, …)"
            )
    elif array.dtype.kind not in "biu":
        raise InputDataError(f"the strokes are {array.dtype}: save them as a labels image")
    classes, names = stroke_classes(model), class_names(model)
    legend = ", ".join(f"{i + 1} = {name}" for i, name in enumerate(names))
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0 or high > classes:
        raise InputDataError(
            f"stroke labels must be 0 (not labelled) or {legend}; found {low}…{high}"
        )
    present = {int(v) for v in np.unique(array)} - {0}
    if model.out_channels == 1 and present != {BACKGROUND, FOREGROUND}:
        missing = [names[c - 1] for c in (BACKGROUND, FOREGROUND) if c not in present]
        found = ", ".join(f"{c} ({names[c - 1]})" for c in sorted(present)) or "no label"
        raise InputDataError(
            f"no {' and no '.join(missing)} strokes (found only {found}): paint at least one "
            f"stroke of each ({legend})"
        )
    if len(present) < 2:
        raise InputDataError(
            f"strokes of at least two classes are needed, found {len(present)} ({legend})"
        )
    return array.astype(np.uint8 if classes < 255 else np.uint16)


def describe_strokes(strokes: np.ndarray, model: LoadedModel, slice_axis: int) -> dict[str, Any]:
    """What the user painted, on the target's own grid, for the record."""
    names = class_names(model)
    labelled = strokes > 0
    per_class = {names[c - 1]: int((strokes == c).sum()) for c in range(1, len(names) + 1)}
    counts = {}
    for c in range(1, len(names) + 1):
        counts[names[c - 1]] = int(ndimage.label(strokes == c, np.ones((3,) * strokes.ndim))[1])
    out: dict[str, Any] = {
        "labelled_pixels": int(labelled.sum()),
        "labelled_fraction": float(labelled.mean()),
        "pixels_per_class": per_class,
        "strokes_per_class": counts,
        "strokes": int(sum(counts.values())),
    }
    if strokes.ndim == 3:
        axis = slice_axis % 3
        other = tuple(a for a in range(3) if a != axis)
        out["slices"] = [int(i) for i in np.flatnonzero(labelled.any(axis=other))]
        out["slice_axis"] = axis
    return out


@dataclass
class StrokeSet:
    """Strokes at the model's scale in the target's canonical ``(Z, Y, X)`` layout
    (0 = none, k = stroke label k), with which labelled pixels are held out, and the
    strokes as painted (``painted``: on the target's grid, what the taught model keeps)."""

    labels: np.ndarray
    held_out: np.ndarray
    classes: int
    summary: dict[str, Any]
    painted: PaintedStrokes

    @property
    def training(self) -> np.ndarray:
        return (self.labels > 0) & ~self.held_out


def prepare_strokes(
    model: LoadedModel,
    strokes: Any,
    target: Any,
    voxel_size: tuple[float, ...] | None,
    slice_axis: int | None,
    seed: int = 0,
) -> StrokeSet:
    """Check ``strokes`` against ``target``, resample them as the target is resampled and
    split their pixels into training and held-out blocks (seeded)."""
    if isinstance(target, (list, tuple)):
        raise InputDataError("strokes need a single target image or volume, not a list")
    shape = tuple(target.shape)
    spatial = shape[1:] if model.in_channels > 1 else shape
    if len(spatial) == model.dims + 2 and spatial[0] == 1:
        spatial = spatial[1:]  # a singleton channel/time axis, as the target may carry
    array = check_strokes(strokes, spatial, model)
    axis = model.training_axis if slice_axis is None else slice_axis
    summary = describe_strokes(array, model, axis)
    factors = model.zoom_for(spatial, voxel_size, slice_axis)
    scaled = array if factors is None else resample(array, factors, order=0)
    view, _ = canonical_view(scaled, model.dims, 1, axis)
    labels = np.ascontiguousarray(view[0])
    _require_after_resampling(labels, model, factors)
    summary["labelled_pixels_at_model_scale"] = int((labels > 0).sum())
    held_out = split_strokes(labels, stroke_classes(model), model.dims, seed)
    summary["held_out_pixels"] = int(held_out.sum())
    painted = PaintedStrokes.of(array, "target")
    return StrokeSet(labels, held_out, stroke_classes(model), summary, painted)


def _require_after_resampling(
    labels: np.ndarray, model: LoadedModel, factors: tuple[float, ...] | None
) -> None:
    """Thin strokes can vanish when the target is shrunk to the model's voxel size."""
    present = {int(v) for v in np.unique(labels)} - {0}
    needed = {BACKGROUND, FOREGROUND} if model.out_channels == 1 else None
    if (needed is not None and not needed <= present) or len(present) < 2:
        zoom = "×".join(f"{f:.2f}" for f in factors or ())
        names = class_names(model)
        gone = sorted(set(range(1, len(names) + 1)) - present) if needed else []
        which = f"{', '.join(names[c - 1] for c in gone)} strokes" if gone else "strokes"
        raise InputDataError(
            f"the {which} vanish when the target is resampled to the model's "
            f"voxel size (zoom {zoom}): paint them wider"
        )


def split_blocks(labels: np.ndarray, classes: int, dims: int, seed: int) -> np.ndarray:
    """Held-out labelled pixels: per class, a seeded share (:data:`HELD_OUT`, at least one)
    of the blocks that hold its strokes. Blocks are :data:`BLOCK` pixels wide, halved for a
    class whose strokes fit in one block (down to 4 px), so that a single short stroke
    still lends part of itself; a class with one block of 4 px holds nothing out."""
    rng = np.random.default_rng(seed + 4242)
    held = np.zeros(labels.shape, bool)
    coords = np.argwhere(labels > 0)
    values = labels[tuple(coords.T)]
    for c in range(1, classes + 1):
        mine = coords[values == c]
        for edge in (BLOCK, BLOCK // 2, BLOCK // 4):
            # 2D models: blocks in the plane of each slice; 3D models: cubes.
            scale = np.array([1, edge, edge]) if dims == 2 else np.full(3, edge)
            unique, inverse = np.unique(mine // scale, axis=0, return_inverse=True)
            if len(unique) >= 2:
                break
        if len(unique) < 2:
            continue
        count = max(1, round(HELD_OUT * len(unique)))
        chosen = np.zeros(len(unique), bool)
        chosen[rng.choice(len(unique), count, replace=False)] = True
        picked = mine[chosen[inverse.ravel()]]
        held[tuple(picked.T)] = True
    return held


def split_strokes(labels: np.ndarray, classes: int, dims: int, seed: int) -> np.ndarray:
    """Held-out labelled pixels, whole strokes at a time: per class with at least two
    strokes (connected runs of its label; within a slice for 2D models), a seeded share
    (:data:`HELD_OUT`, at least one) of its strokes; a class with a single stroke, or one
    stroke holding more than 1 − :data:`HELD_OUT` of its pixels, lends blocks of it
    (:func:`split_blocks`). A held-out stroke is one the network never saw, so
    the guard judges what a new stroke would say rather than the rest of a trained one."""
    rng = np.random.default_rng(seed + 4242)
    held = np.zeros(labels.shape, bool)
    # 2D models: no connection across slices; 3D models: any neighbour.
    structure = np.ones((3, 3, 3), bool)
    if dims == 2:
        structure[0] = structure[2] = False
    for c in range(1, classes + 1):
        runs, count = ndimage.label(labels == c, structure=structure)
        sizes = np.bincount(runs.ravel(), minlength=count + 1)[1:]
        if count < 2 or sizes.max() > (1 - HELD_OUT) * sizes.sum():
            # One stroke, or one that holds nearly all the class (a region filled, a whole
            # network of membranes): holding out a small other one would judge the class
            # on a few pixels (22 of 34,363 in a measured case), so blocks are lent.
            one = np.where(labels == c, c, 0)
            held |= split_blocks(one, classes, dims, seed + c)
            continue
        chosen = rng.choice(count, max(1, round(HELD_OUT * count)), replace=False) + 1
        held |= np.isin(runs, chosen)
    return held


def stroke_patches(
    targets: TargetSet, strokes: StrokeSet, patch: tuple[int, ...], limit: int, seed: int
) -> list[Patch]:
    """Patches that together hold every labelled pixel (greedy: a patch centred on a
    random pixel not yet held, until all are, at most ``limit``), in a seeded order."""
    rng = np.random.default_rng(seed)
    spatial = strokes.labels.shape
    plane = len(patch) == 2
    size = [min(p, n) for p, n in zip(patch, spatial[-len(patch) :])]
    left = np.argwhere(strokes.labels > 0)
    patches: list[Patch] = []
    while len(left) and len(patches) < limit:
        centre = left[rng.integers(len(left))]
        axes = centre[1:] if plane else centre
        starts = [
            int(np.clip(c - p // 2, 0, n - p)) for c, p, n in zip(axes, size, spatial[-len(size) :])
        ]
        region = tuple(slice(a, a + p) for a, p in zip(starts, size))
        index = (slice(None), int(centre[0]), *region) if plane else (slice(None), *region)
        patches.append(Patch(0, index))
        inside = np.ones(len(left), bool)
        if plane:
            inside &= left[:, 0] == centre[0]
        for axis, r in zip(range(1 if plane else 0, 3), region):
            inside &= (left[:, axis] >= r.start) & (left[:, axis] < r.stop)
        left = left[~inside]
    return patches
