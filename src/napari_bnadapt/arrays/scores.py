"""The scores the field reports beside Dice, so that a thickness convention is not an error.

Boundaries (membranes): the ISBI 2012 scores (Arganda-Carreras et al., Front. Neuroanat.
2015). Cells are the connected regions of the non-boundary pixels; the prediction's
boundary pixels are given to their nearest cell (the "thinning" of the challenge's
evaluation), the ground truth's boundary pixels are ignored. Then the foreground-restricted
Rand F-score (``1 −`` :func:`skimage.metrics.adapted_rand_error`) and the variation of
information split into split and merge (:func:`skimage.metrics.variation_of_information`)
compare the two partitions, and the boundary F1 compares the partitions' boundaries within
a tolerance of a few pixels. A membrane drawn one pixel thicker changes none of these much,
while its Dice falls (docs/strokes.md).

Objects (mitochondria, nuclei): object F1 at IoU ≥ 0.5, matching connected components of
the prediction and the ground truth one to one (as Lucchi++ and MitoEM report).

Stacks are scored slice by slice (``per_slice``, the default for 3D arrays: EM volumes are
often anisotropic and membrane annotations are drawn per slice); cells and objects of
different slices never merge, and the counts are pooled over the slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from skimage.metrics import adapted_rand_error, variation_of_information
from skimage.morphology import ball, disk
from skimage.segmentation import expand_labels, find_boundaries

#: What a model segments, for choosing its scores: ``boundaries`` (membranes) or ``objects``.
STRUCTURES = ("boundaries", "objects")
#: Pixels a predicted boundary may lie from the true one and still count (boundary F1).
BOUNDARY_TOLERANCE = 2
#: Least IoU at which a predicted object matches a true one (object F1).
OBJECT_IOU = 0.5


def components(mask: np.ndarray, per_slice: bool = True) -> np.ndarray:
    """Connected regions (face connectivity) of the nonzero pixels, labelled 1, 2, …; a 3D
    array is labelled slice by slice when ``per_slice`` (labels stay unique over the
    stack)."""
    mask = np.asarray(mask) != 0
    if mask.ndim == 3 and per_slice:
        out = np.zeros(mask.shape, np.int64)
        offset = 0
        for z, plane in enumerate(mask):
            labels, count = ndimage.label(plane)
            out[z] = np.where(labels > 0, labels + offset, 0)
            offset += count
        return out
    labels, _ = ndimage.label(mask)
    return labels.astype(np.int64)


def cells_of(boundaries: np.ndarray, per_slice: bool = True) -> np.ndarray:
    """Cells: the connected regions of the non-boundary pixels (boundary pixels are 0)."""
    return components(np.asarray(boundaries) == 0, per_slice)


def filled(cells: np.ndarray, per_slice: bool = True) -> np.ndarray:
    """``cells`` with every boundary pixel given to its nearest cell (a partition)."""
    reach = max(cells.shape)
    if cells.ndim == 3 and per_slice:
        return np.stack([expand_labels(plane, reach) for plane in cells])
    return expand_labels(cells, reach)


def boundary_scores(
    prediction: np.ndarray,
    truth: np.ndarray,
    per_slice: bool | None = None,
    tolerance: float = BOUNDARY_TOLERANCE,
) -> dict[str, float | None]:
    """Rand F-score, its split and merge scores, VI split/merge and boundary F1 of a
    predicted boundary mask against a true one (nonzero = boundary), as the ISBI 2012
    challenge scores them (see the module docstring).

    ``rand_split`` falls with false splits, ``rand_merge`` with false merges (1 = none);
    ``vi_split`` and ``vi_merge`` are the conditional entropies H(prediction | truth) and
    H(truth | prediction) (0 = perfect; nats). All are None when the ground truth has no
    cell (nothing to score).
    """
    prediction, truth = _pair(prediction, truth)
    flat = _per_slice(prediction, per_slice)
    true_cells = cells_of(truth, flat)
    if not true_cells.any():
        return dict.fromkeys(BOUNDARY_KEYS)
    test = filled(cells_of(prediction, flat), flat)
    # skimage's "precision" is ISBI's split score (Σp²/Σt², truth sizes t), its "recall"
    # the merge score (Σp²/Σs², predicted sizes s).
    error, split_score, merge_score = adapted_rand_error(true_cells, test, ignore_labels=(0,))
    split, merge = variation_of_information(true_cells, test, ignore_labels=(0,))
    truth_lines = _partition_boundaries(filled(true_cells, flat), flat)
    test_lines = _partition_boundaries(test, flat)
    return {
        "rand_f": float(1.0 - error),
        "rand_split": float(split_score),
        "rand_merge": float(merge_score),
        "vi_split": float(split),
        "vi_merge": float(merge),
        "boundary_f1": boundary_f1(test_lines, truth_lines, tolerance, flat),
    }


BOUNDARY_KEYS = ("rand_f", "rand_split", "rand_merge", "vi_split", "vi_merge", "boundary_f1")
OBJECT_KEYS = ("object_f1", "object_precision", "object_recall")


def boundary_f1(
    predicted: np.ndarray, true: np.ndarray, tolerance: float, per_slice: bool = True
) -> float:
    """F1 of two boundary maps where a pixel counts when the other map has a boundary pixel
    within ``tolerance`` pixels (1 for two empty maps, 0 when only one is empty)."""
    if not predicted.any() and not true.any():
        return 1.0
    if not predicted.any() or not true.any():
        return 0.0
    near_true = _within(true, tolerance, per_slice)
    near_predicted = _within(predicted, tolerance, per_slice)
    precision = float(near_true[predicted].mean())
    recall = float(near_predicted[true].mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def object_scores(
    prediction: np.ndarray,
    truth: np.ndarray,
    per_slice: bool | None = None,
    threshold: float = OBJECT_IOU,
) -> dict[str, float | None]:
    """Object F1, precision and recall: connected components (face connectivity) matched
    one to one when their IoU is at least ``threshold``. None when neither has an object."""
    prediction, truth = _pair(prediction, truth)
    flat = _per_slice(prediction, per_slice)
    true_objects, predicted_objects = components(truth, flat), components(prediction, flat)
    n_true, n_predicted = int(true_objects.max()), int(predicted_objects.max())
    if n_true == 0 and n_predicted == 0:
        return dict.fromkeys(OBJECT_KEYS)
    matched = _matches(true_objects, predicted_objects, threshold)
    precision = matched / n_predicted if n_predicted else 0.0
    recall = matched / n_true if n_true else 0.0
    f1 = 2 * matched / (n_true + n_predicted)
    return {"object_f1": f1, "object_precision": precision, "object_recall": recall}


def infer_structure(truth: np.ndarray, per_slice: bool | None = None) -> str:
    """``boundaries`` when the ground truth's background falls into more pieces than its
    foreground (a membrane network that encloses cells), else ``objects`` (separate
    objects on one background)."""
    truth = np.asarray(truth) != 0
    flat = _per_slice(truth, per_slice)
    cells = int(cells_of(truth, flat).max())
    objects = int(components(truth, flat).max())
    return "boundaries" if cells > objects else "objects"


def field_scores(
    prediction: np.ndarray,
    truth: np.ndarray,
    structure: str | None = None,
    per_slice: bool | None = None,
) -> dict[str, Any]:
    """The field's scores for ``structure`` (inferred from ``truth`` when None), with the
    structure they were chosen for."""
    chosen = structure or infer_structure(truth, per_slice)
    if chosen not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    scores = (boundary_scores if chosen == "boundaries" else object_scores)(
        prediction, truth, per_slice
    )
    return {"structure": chosen, **scores}


def _pair(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(prediction) != 0, np.asarray(truth) != 0
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return a, b


def _per_slice(mask: np.ndarray, per_slice: bool | None) -> bool:
    return mask.ndim == 3 if per_slice is None else bool(per_slice)


def _partition_boundaries(partition: np.ndarray, per_slice: bool) -> np.ndarray:
    if partition.ndim == 3 and per_slice:
        return np.stack([find_boundaries(p, mode="inner") for p in partition])
    return find_boundaries(partition, mode="inner")


def _within(lines: np.ndarray, tolerance: float, per_slice: bool) -> np.ndarray:
    """Pixels within ``tolerance`` (Euclidean) of a pixel of ``lines``: a dilation by a
    disk (a ball in 3D; a disk in every slice when ``per_slice``)."""
    radius = int(np.floor(tolerance))
    if radius < 1:
        return lines.copy()
    footprint = disk(radius) if lines.ndim == 2 or per_slice else ball(radius)
    if lines.ndim == 3 and per_slice:
        footprint = footprint[None]
    return ndimage.binary_dilation(lines, footprint)


def _matches(true_objects: np.ndarray, predicted_objects: np.ndarray, threshold: float) -> int:
    """One-to-one matches at IoU ≥ ``threshold``, best IoU first (above 0.5 every object
    overlaps at most one other that much, so this is the optimal matching there)."""
    both = (true_objects > 0) & (predicted_objects > 0)
    pairs, overlap = np.unique(
        np.stack([true_objects[both], predicted_objects[both]]), axis=1, return_counts=True
    )
    true_sizes = np.bincount(true_objects.ravel())
    predicted_sizes = np.bincount(predicted_objects.ravel())
    union = true_sizes[pairs[0]] + predicted_sizes[pairs[1]] - overlap
    iou = overlap / union
    taken_true, taken_predicted, matched = set(), set(), 0
    for index in np.argsort(-iou, kind="stable"):
        if iou[index] < threshold:
            break
        t, p = int(pairs[0, index]), int(pairs[1, index])
        if t not in taken_true and p not in taken_predicted:
            taken_true.add(t)
            taken_predicted.add(p)
            matched += 1
    return matched
