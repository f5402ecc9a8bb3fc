"""Label-free quality proxies of a prediction, and Dice/IoU when ground truth is given.

None of these proves a mask right: an entropy drop alone proves nothing (a network can be
confidently wrong). They tell what changed between two masks, cheaply and without labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays.metrics import dice, iou
from ..errors import InputDataError

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
    from scipy import ndimage

    _, count = ndimage.label(np.asarray(mask) > 0)
    return int(count)


def mask_quality(
    probabilities: np.ndarray | None, mask: np.ndarray, multiclass: bool = False
) -> dict:
    """All label-free figures of one prediction (entropy and confidence need probabilities;
    None without them)."""
    axis = 0 if multiclass else None
    has_probs = probabilities is not None
    return {
        "entropy": mean_entropy(probabilities, axis) if has_probs else None,
        "confident_fraction": confident_fraction(probabilities, classes_axis=axis)
        if has_probs
        else None,
        "foreground_fraction": foreground_fraction(mask),
        "object_count": object_count(mask),
    }


def compare_masks(
    before: dict[str, Any],
    after: dict[str, Any] | None = None,
    truth: np.ndarray | None = None,
) -> dict:
    """Quality before (and after) adaptation; agreement; Dice/IoU against ``truth``.

    ``before`` and ``after`` are ``{"mask": ..., "probabilities": ... (optional),
    "multiclass": bool}``.
    """
    out: dict[str, Any] = {"before": _quality_of(before)}
    if after is not None:
        out["after"] = _quality_of(after)
        out["agreement_dice"] = dice(before["mask"], after["mask"])
    if truth is not None:
        truth = np.asarray(truth)
        for key, entry in (("before", before), ("after", after)):
            if entry is None:
                continue
            if entry["mask"].shape != truth.shape:
                raise InputDataError(
                    f"ground truth has shape {truth.shape} but the mask {entry['mask'].shape}: "
                    "choose the labels of the image that was segmented"
                )
            out[key]["dice"] = dice(entry["mask"], truth)
            out[key]["iou"] = iou(entry["mask"], truth)
    return out


def _quality_of(entry: dict[str, Any]) -> dict:
    return mask_quality(entry.get("probabilities"), entry["mask"], entry.get("multiclass", False))
