"""Whether reduced precision moves a model's masks: float32 and the faster precision on the
same tiles of the input, compared.

A mask at reduced precision is kept only when it agrees with float32's on at least
:data:`AGREEMENT` of the voxels and the Dice between the two masks is at least
:data:`DICE`; otherwise the prediction runs in float32 (the issue's bar, docs/scale.md).
A Dice over a few hundred foreground voxels says little (on the real EM pair a sample with
450 passed at 0.9955 while the whole volume's was 0.991), so a sample with some but fewer
than :data:`MIN_FOREGROUND` foreground voxels runs in float32 too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..model.unet import run_padded, to_probabilities
from .precision import autocast, memory_format

AGREEMENT = 0.999
DICE = 0.995
MIN_FOREGROUND = 2000


@dataclass(frozen=True)
class Agreement:
    """Masks at two precisions: the fraction of voxels with the same label, and the Dice
    between the foreground masks (1 when both are empty)."""

    agreement: float
    dice: float
    voxels: int
    #: Voxels that are foreground in either mask.
    foreground: int = 0

    @property
    def passed(self) -> bool:
        enough = self.foreground == 0 or self.foreground >= MIN_FOREGROUND
        return self.agreement >= AGREEMENT and self.dice >= DICE and enough

    def describe(self) -> str:
        text = (
            f"masks agree on {self.agreement:.3%} of {self.voxels} sample voxels, "
            f"Dice {self.dice:.4f}"
        )
        if 0 < self.foreground < MIN_FOREGROUND:
            text += f" over only {self.foreground} foreground voxels"
        return text


def compare_masks(a: np.ndarray, b: np.ndarray) -> Agreement:
    """Label maps ``a`` and ``b`` (0 = background) compared."""
    same = float(np.mean(a == b)) if a.size else 1.0
    fa, fb = a > 0, b > 0
    total = int(fa.sum()) + int(fb.sum())
    dice = 2.0 * float(np.logical_and(fa, fb).sum()) / total if total else 1.0
    return Agreement(same, dice, int(a.size), int(np.logical_or(fa, fb).sum()))


def check_precision(
    net: nn.Module,
    tiles: np.ndarray,
    divisor: int,
    device: torch.device,
    precision: str,
    threshold: float,
    channels_last: bool = False,
    min_size: int = 0,
) -> Agreement:
    """Masks of ``tiles`` (normalised network input ``(B, C, *tile)``) from ``net`` in
    float32 and in ``precision``, compared."""
    x = torch.from_numpy(np.ascontiguousarray(tiles)).to(device)
    if channels_last:
        x = x.contiguous(memory_format=memory_format(x.dim() - 2))
    labels = []
    with torch.inference_mode():
        for p in ("fp32", precision):
            with autocast(device, p):
                probs = to_probabilities(run_padded(net, x, divisor, min_size).float())
            labels.append(_labels(probs.cpu().numpy(), threshold))
    return compare_masks(*labels)


def _labels(probs: np.ndarray, threshold: float) -> np.ndarray:
    if probs.shape[1] == 1:
        return (probs[:, 0] >= threshold).astype(np.uint8)
    return np.argmax(probs, axis=1).astype(np.uint16)
