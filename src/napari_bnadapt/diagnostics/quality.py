"""Label-free quality proxies of a prediction, and Dice/IoU and the field's scores when
ground truth is given.

None of the label-free figures proves a mask right: an entropy drop alone proves nothing (a
network can be confidently wrong). They tell what changed between two masks, cheaply and
without labels. With ground truth, Dice is joined by the scores the field reports
(:mod:`napari_bnadapt.arrays.scores`): for boundary models the ISBI 2012 Rand F-score, VI
split/merge and boundary F1, which a thickness convention does not punish; for object
models object F1 at IoU ≥ 0.5. Which family applies is :func:`structure_of` the model, or
read from the ground truth when the model does not say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..arrays.metrics import dice, iou
from ..arrays.scores import STRUCTURES, field_scores
from ..errors import InputDataError
from ..inference import Prediction
from ..model.loaded import LoadedModel

CONFIDENT = 0.9
#: Words in a model's name, classes or description that say what it segments.
STRUCTURE_WORDS = {
    "boundaries": ("membrane", "boundar", "contour"),
    "objects": ("mitochond", "nucle", "vesicle", "synap", "organelle", "granule", "object"),
}


def structure_of(model: LoadedModel) -> str | None:
    """What ``model`` segments: ``boundaries`` or ``objects``, for choosing its scores.

    Its metadata's ``structure`` when set; else the words of its name, class names and
    description (membranes, boundaries → boundaries; mitochondria, nuclei, vesicles, … →
    objects); None when they do not say (the ground truth then decides).
    """
    declared = model.metadata.get("structure")
    if declared in STRUCTURES:
        return declared
    words = " ".join(
        [model.name, *model.classes, str(model.metadata.get("description") or "")]
    ).lower()
    found = [kind for kind, stems in STRUCTURE_WORDS.items() if any(s in words for s in stems)]
    return found[0] if len(found) == 1 else None


def mean_entropy(probabilities: np.ndarray, classes_axis: int | None = None) -> float:
    """Mean per-voxel entropy, normalised to [0, 1] (1 = maximally unsure).

    ``probabilities`` is a foreground probability map (binary models), or has the classes
    along ``classes_axis``.
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    if classes_axis is None:
        entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p)) / np.log(2)
        return float(entropy.mean())
    classes = p.shape[classes_axis]
    entropy = -(p * np.log(p)).sum(axis=classes_axis) / np.log(classes)
    return float(entropy.mean())


def confident_fraction(
    probabilities: np.ndarray, level: float = CONFIDENT, classes_axis: int | None = None
) -> float:
    """Fraction of voxels whose most likely class has probability ≥ ``level``."""
    p = np.asarray(probabilities)
    top = np.maximum(p, 1 - p) if classes_axis is None else p.max(axis=classes_axis)
    return float(np.mean(top >= level))


def foreground_fraction(mask: np.ndarray) -> float:
    return float(np.mean(np.asarray(mask) > 0))


#: A mask with fewer than this share of another's cells has merged them. Measured on
#: the painted slices of the real pair's stroke grid (docs/strokes.md): of 91 kept runs,
#: the 4 below it lost 0.32-0.42 Rand F each, no other more than 0.21; a walkthrough
#: whose strokes opened the membranes kept 0.24.
MERGED = 2 / 3
#: Least area (pixels) of a background region counted as a cell (not a speck).
LEAST_CELL = 16
#: Fewest cells per slice for a mask to read as boundaries enclosing cells.
LEAST_CELLS = 4


def cells_per_slice(mask: Any, slices: int = 8) -> float:
    """Mean number of cells (connected background regions of at least
    :data:`LEAST_CELL` pixels) of a 2D mask, or of up to ``slices`` evenly spaced slices
    of a 3D one (a bounded cost, whatever the volume)."""
    if np.ndim(mask) == 2:
        picked = [np.asarray(mask)]
    else:
        spread = np.linspace(0, len(mask) - 1, min(slices, len(mask))).astype(int)
        picked = [np.asarray(mask[int(i)]) for i in np.unique(spread)]
    counts = []
    for plane in picked:
        labels, _ = ndimage.label(plane == 0)
        counts.append(int((np.bincount(labels.ravel())[1:] >= LEAST_CELL).sum()))
    return float(np.mean(counts))


def merged_cells(before: Any, after: Any) -> tuple[float, float] | None:
    """Cells per slice of ``before`` and ``after`` when ``after`` keeps fewer than
    :data:`MERGED` of them: its boundaries have opened and neighbouring cells merged (a
    Rand F collapse that Dice and the foreground share do not show). None otherwise, and
    for masks that are not boundaries around cells (objects on one background)."""
    if np.shape(before) != np.shape(after):
        return None
    first = cells_per_slice(before)
    if first < LEAST_CELLS:
        return None
    second = cells_per_slice(after)
    return (first, second) if cells_merged(first, second) else None


def cells_merged(first: float, second: float) -> bool:
    """Whether ``second`` cells per slice, against ``first`` before, is a merge: fewer
    than :data:`MERGED` of them, from a mask of boundaries around cells."""
    return first >= LEAST_CELLS and second < MERGED * first


def object_count(mask: np.ndarray) -> int:
    """Connected foreground objects (face connectivity, in 2D or 3D)."""
    _, count = ndimage.label(np.asarray(mask) > 0)
    return int(count)


@dataclass(frozen=True)
class MaskQuality:
    """Label-free figures of one prediction; Dice, IoU and the field's scores when ground
    truth was given.

    ``entropy`` and ``confident_fraction`` need probabilities (None without them).
    ``scores`` holds the field's scores (:func:`napari_bnadapt.arrays.scores.field_scores`:
    ``structure`` and, for boundaries, ``rand_f``, ``rand_split``, ``rand_merge``,
    ``vi_split``, ``vi_merge``, ``boundary_f1``; for objects ``object_f1``,
    ``object_precision``, ``object_recall``).
    """

    entropy: float | None
    confident_fraction: float | None
    foreground_fraction: float
    object_count: int
    dice: float | None = None
    iou: float | None = None
    scores: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for report.json (Dice, IoU and the field's scores only when
        measured, the scores beside Dice)."""
        out = asdict(self)
        scores = out.pop("scores") or {}
        out = {k: v for k, v in out.items() if v is not None or k not in ("dice", "iou")}
        return {**out, **scores}


@dataclass(frozen=True)
class MaskComparison:
    """Quality before (and after) adaptation, and how much the two masks agree."""

    before: MaskQuality
    after: MaskQuality | None = None
    agreement_dice: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"before": self.before.to_dict()}
        if self.after is not None:
            out["after"] = self.after.to_dict()
            out["agreement_dice"] = self.agreement_dice
        return out


def mask_quality(
    prediction: Prediction, truth: np.ndarray | None = None, structure: str | None = None
) -> MaskQuality:
    """All label-free figures of one prediction, and Dice/IoU and the field's scores for
    ``structure`` (:func:`structure_of` the model; None: read from ``truth``) against
    ``truth``."""
    axis = 0 if prediction.multiclass else None
    probabilities, mask = prediction.probabilities, prediction.segmentation
    has_probs = probabilities is not None
    overlap: dict[str, Any] = {}
    if truth is not None:
        truth = np.asarray(truth)
        if mask.shape != truth.shape:
            raise InputDataError(
                f"ground truth has shape {truth.shape} but the mask {mask.shape}: "
                "choose the labels of the image that was segmented"
            )
        overlap = {
            "dice": dice(mask, truth),
            "iou": iou(mask, truth),
            "scores": field_scores(mask, truth, structure),
        }
    return MaskQuality(
        entropy=mean_entropy(probabilities, axis) if has_probs else None,
        confident_fraction=confident_fraction(probabilities, classes_axis=axis)
        if has_probs
        else None,
        foreground_fraction=foreground_fraction(mask),
        object_count=object_count(mask),
        **overlap,
    )


def compare_masks(
    before: Prediction,
    after: Prediction | None = None,
    truth: np.ndarray | None = None,
    structure: str | None = None,
) -> MaskComparison:
    """Quality before (and after) adaptation; their agreement; Dice/IoU and the field's
    scores (for ``structure``, see :func:`mask_quality`) against ``truth``."""
    if after is None:
        return MaskComparison(mask_quality(before, truth, structure))
    return MaskComparison(
        mask_quality(before, truth, structure),
        mask_quality(after, truth, structure),
        dice(before.segmentation, after.segmentation),
    )


def compare_many(
    predictions: list[Prediction], truth: np.ndarray | None = None, structure: str | None = None
) -> list[tuple[MaskQuality, float]]:
    """Every prediction's figures (Dice/IoU and the field's scores with ``truth``) and its
    agreement Dice with the first (the reference, e.g. the source model's mask): the N-way
    comparison of cures."""
    if not predictions:
        return []
    reference = predictions[0].segmentation
    return [
        (mask_quality(p, truth, structure), dice(reference, p.segmentation)) for p in predictions
    ]
