"""A simulated user who paints strokes from the ground truth, for benchmarks/strokes.py.

Foreground strokes follow the membrane skeleton, background strokes the medial axis of a
cell's interior; each is a short path (``length`` pixels of the target's grid) painted with
a round brush ``width`` pixels wide and kept inside its class, as a careful user paints.
Placement is ``random`` (any skeleton pixel, away from earlier strokes), ``uncertain``:
the windows :func:`napari_bnadapt.diagnostics.uncertainty.next_uncertain_region` offers
one after the other on the label-free model's uncertainty map, a foreground and a
background stroke in each, started where the map is highest; or ``corrections``: what the
napari section asks a user to do, strokes only where the label-free mask is wrong
(foreground along membrane it misses, background along what it marks too much, a pixel
off the membrane), started at random there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import disk, skeletonize

from napari_bnadapt.adapt.strokes import BACKGROUND, FOREGROUND
from napari_bnadapt.diagnostics.uncertainty import next_uncertain_region

NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


@dataclass
class SlicePaths:
    """Where strokes of each class can run on one slice."""

    truth: np.ndarray  # membrane mask
    skeletons: dict[int, np.ndarray]  # stroke label → skeleton pixels


def paths_of(truth: np.ndarray, width: int) -> SlicePaths:
    membrane = truth > 0
    inside = ndimage.distance_transform_edt(~membrane) > max(2, width)
    return SlicePaths(
        membrane,
        {FOREGROUND: skeletonize(membrane), BACKGROUND: skeletonize(~membrane) & inside},
    )


def corrections_of(truth: np.ndarray, mask: np.ndarray, width: int) -> SlicePaths:
    """Paths only where ``mask`` (the label-free model's) is wrong: the skeleton of the
    membrane it misses, and of what it marks beyond the membrane (kept a pixel off it, as
    a careful user paints next to a thin boundary)."""
    membrane = truth > 0
    off = ndimage.distance_transform_edt(~membrane) > max(1, (width + 1) // 2)
    return SlicePaths(
        membrane,
        {
            FOREGROUND: skeletonize(membrane & ~mask),
            BACKGROUND: skeletonize(mask & ~membrane & off),
        },
    )


def walk(skeleton: np.ndarray, start: tuple[int, int], length: int, rng) -> list[tuple[int, int]]:
    """A path of up to ``length`` pixels along ``skeleton`` through ``start`` (half each way)."""
    path, seen = [start], {start}
    for _ in range(2):
        here = start
        for _ in range(length // 2):
            steps = [(here[0] + dy, here[1] + dx) for dy, dx in NEIGHBOURS]
            steps = [
                p
                for p in steps
                if 0 <= p[0] < skeleton.shape[0]
                and 0 <= p[1] < skeleton.shape[1]
                and skeleton[p]
                and p not in seen
            ]
            if not steps:
                break
            here = steps[int(rng.integers(len(steps)))]
            seen.add(here)
            path.append(here)
    return path


def paint(paths: SlicePaths, label: int, start, length: int, width: int, rng) -> np.ndarray:
    """One stroke's pixels: the path dilated by the brush, kept inside its class."""
    stroke = np.zeros(paths.truth.shape, bool)
    for p in walk(paths.skeletons[label], start, length, rng):
        stroke[p] = True
    if width > 1:
        stroke = ndimage.binary_dilation(stroke, disk((width - 1) // 2))
    return stroke & (paths.truth if label == FOREGROUND else ~paths.truth)


def simulate(
    truth: np.ndarray,
    slices: list[int],
    count: int,
    *,
    width: int,
    length: int,
    placement: str,
    rng: np.random.Generator,
    uncertainty: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    window: int = 64,
) -> np.ndarray:
    """``count`` strokes spread over ``slices`` of a ``(Z, Y, X)`` ground truth, alternately
    foreground and background (a uint8 label array of its shape). The first K of a longer
    draw are the same strokes (the same ``rng`` state gives nested sets). ``corrections``
    needs ``mask``, the label-free model's mask of the same shape."""
    strokes = np.zeros(truth.shape, np.uint8)
    if placement == "corrections":
        per_slice = {z: corrections_of(truth[z], mask[z] > 0, width) for z in slices}
    else:
        per_slice = {z: paths_of(truth[z], width) for z in slices}
    visited: dict[int, list] = {z: [] for z in slices}
    taken = {z: np.zeros(truth.shape[1:], bool) for z in slices}
    for k in range(count):
        z = slices[k % len(slices)]
        label = FOREGROUND if (k // len(slices)) % 2 == 0 else BACKGROUND
        paths = per_slice[z]
        away = ndimage.distance_transform_edt(~taken[z]) > length / 2 if taken[z].any() else True
        candidates = paths.skeletons[label] & away
        if placement == "uncertain" and uncertainty is not None:
            if label == FOREGROUND or not visited[z]:
                seen = [r for r in visited[z] if r is not None]  # None: none was left
                region = next_uncertain_region(uncertainty[z], window, seen)
                visited[z].append(region)
            start = _most_uncertain(candidates, uncertainty[z], visited[z][-1])
        else:
            start = _random_pixel(candidates, rng)
        if start is None:
            continue
        stroke = paint(paths, label, start, length, width, rng)
        strokes[z][stroke] = label
        taken[z] |= stroke
    return strokes


def _random_pixel(candidates: np.ndarray, rng) -> tuple[int, int] | None:
    where = np.argwhere(candidates)
    return tuple(int(v) for v in where[rng.integers(len(where))]) if len(where) else None


def _most_uncertain(candidates: np.ndarray, uncertainty: np.ndarray, region) -> tuple | None:
    """The candidate pixel of highest uncertainty in ``region``; else the nearest to it."""
    inside = np.zeros(candidates.shape, bool)
    if region is not None:
        inside[region] = True
    pool = candidates & inside
    if not pool.any():
        if not candidates.any():
            return None
        if region is None:  # every region visited: the most uncertain candidate anywhere
            where = np.argwhere(candidates)
            return tuple(int(v) for v in where[np.argmax(uncertainty[candidates])])
        centre = np.array([(r.start + r.stop) / 2 for r in region])
        where = np.argwhere(candidates)
        return tuple(int(v) for v in where[np.argmin(((where - centre) ** 2).sum(axis=1))])
    where = np.argwhere(pool)
    return tuple(int(v) for v in where[np.argmax(uncertainty[pool])])
