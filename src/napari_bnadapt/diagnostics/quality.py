"""Label-free quality proxies of a prediction, and Dice/IoU when ground truth is given.

None of these proves a mask right: an entropy drop alone proves nothing (a network can be
confidently wrong). They tell what changed between two masks, cheaply and without labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..arrays.metrics import dice, iou
from ..errors import InputDataError
from ..inference import Prediction

CONFIDENT = 0.9


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


def object_count(mask: np.ndarray) -> int:
    """Connected foreground objects (face connectivity, in 2D or 3D)."""
    _, count = ndimage.label(np.asarray(mask) > 0)
    return int(count)


@dataclass(frozen=True)
class MaskQuality:
    """Label-free figures of one prediction; Dice and IoU when ground truth was given.

    ``entropy`` and ``confident_fraction`` need probabilities (None without them).
    """

    entropy: float | None
    confident_fraction: float | None
    foreground_fraction: float
    object_count: int
    dice: float | None = None
    iou: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for report.json (Dice/IoU only when measured)."""
        out = asdict(self)
        return {k: v for k, v in out.items() if v is not None or k not in ("dice", "iou")}


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


def mask_quality(prediction: Prediction, truth: np.ndarray | None = None) -> MaskQuality:
    """All label-free figures of one prediction, and Dice/IoU against ``truth``."""
    axis = 0 if prediction.multiclass else None
    probabilities, mask = prediction.probabilities, prediction.segmentation
    has_probs = probabilities is not None
    overlap: dict[str, float] = {}
    if truth is not None:
        truth = np.asarray(truth)
        if mask.shape != truth.shape:
            raise InputDataError(
                f"ground truth has shape {truth.shape} but the mask {mask.shape}: "
                "choose the labels of the image that was segmented"
            )
        overlap = {"dice": dice(mask, truth), "iou": iou(mask, truth)}
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
    before: Prediction, after: Prediction | None = None, truth: np.ndarray | None = None
) -> MaskComparison:
    """Quality before (and after) adaptation; their agreement; Dice/IoU against ``truth``."""
    if after is None:
        return MaskComparison(mask_quality(before, truth))
    return MaskComparison(
        mask_quality(before, truth),
        mask_quality(after, truth),
        dice(before.segmentation, after.segmentation),
    )


def compare_many(
    predictions: list[Prediction], truth: np.ndarray | None = None
) -> list[tuple[MaskQuality, float]]:
    """Every prediction's figures (Dice/IoU with ``truth``) and its agreement Dice with the
    first (the reference, e.g. the source model's mask): the N-way comparison of cures."""
    if not predictions:
        return []
    reference = predictions[0].segmentation
    return [(mask_quality(p, truth), dice(reference, p.segmentation)) for p in predictions]
