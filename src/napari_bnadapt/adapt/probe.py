"""A fixed handful of target patches, and what a network predicts on them.

The label-free criteria of the cures (prediction entropy, foreground fraction, agreement
with the AdaBN masks) are measured here, always on the same patches, so that two states
of a network compare on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..adabn.sampling import Patch, TargetSet, read_patches
from ..model.unet import run_padded, to_probabilities

#: Patches in a probe: enough for stable fractions, few enough to cost one small pass.
PROBE_PATCHES = 16


class Probe:
    """Seeded patches of a target, read once (with the cure's input steps)."""

    def __init__(
        self,
        targets: TargetSet,
        patches: list[Patch],
        device: torch.device,
        divisor: int,
        seed: int = 0,
        count: int = PROBE_PATCHES,
        batch_size: int = 8,
    ) -> None:
        rng = np.random.default_rng(seed + 7919)  # not the first patches of adaptation
        chosen = sorted(rng.choice(len(patches), min(count, len(patches)), replace=False))
        self.inputs = torch.from_numpy(read_patches(targets, [patches[i] for i in chosen]))
        self.device, self.divisor, self.batch_size = device, divisor, batch_size

    def probabilities(self, module: nn.Module) -> torch.Tensor:
        """Foreground (sigmoid) or class (softmax) probabilities, eval mode, on the CPU."""
        module.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(self.inputs), self.batch_size):
                x = self.inputs[start : start + self.batch_size].to(self.device)
                logits = run_padded(module, x, self.divisor).float()
                out.append(to_probabilities(logits).cpu())
        return torch.cat(out)

    def measure(self, module: nn.Module) -> Measurement:
        return Measurement(self.probabilities(module))


class Measurement:
    """Label-free figures of one network state on the probe."""

    def __init__(self, probabilities: torch.Tensor) -> None:
        self.probabilities = probabilities
        self.masks = segmentation_of(probabilities)
        self.foreground = float((self.masks > 0).float().mean())
        self.entropy = mean_entropy(probabilities)

    def agreement(self, other: Measurement) -> float:
        """Dice of the foreground masks (1 for two empty masks)."""
        a, b = self.masks > 0, other.masks > 0
        total = int(a.sum()) + int(b.sum())
        return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total

    def foreground_ratio(self, other: Measurement) -> float:
        """This foreground fraction over ``other``'s (inf when ``other`` has none)."""
        if other.foreground == 0:
            return 1.0 if self.foreground == 0 else float("inf")
        return self.foreground / other.foreground


@dataclass
class TrainingData:
    """What a parameter cure trains on: the target patches (read through the cure's input
    steps), the probe its guard measures, where and in what batches, from what seed."""

    targets: TargetSet
    patches: list[Patch]
    probe: Probe
    device: torch.device
    batch_size: int
    seed: int = 0

    def random_batch(self, rng: np.random.Generator) -> torch.Tensor:
        """A batch of patches drawn without replacement (seeded ``rng``), on the device."""
        count = min(self.batch_size, len(self.patches))
        chosen = rng.choice(len(self.patches), count, replace=False)
        batch = read_patches(self.targets, [self.patches[i] for i in chosen])
        return torch.from_numpy(batch).to(self.device)


def segmentation_of(probabilities: torch.Tensor) -> torch.Tensor:
    """Foreground mask (binary) or class labels (multi-class) of probabilities."""
    if probabilities.shape[1] == 1:
        return (probabilities[:, 0] >= 0.5).to(torch.uint8)
    return probabilities.argmax(dim=1).to(torch.uint8)


def mean_entropy(probabilities: torch.Tensor) -> float:
    """Mean per-voxel entropy, normalised to [0, 1] (1 = maximally unsure)."""
    return float(entropy_loss(probabilities))


def entropy_loss(probabilities: torch.Tensor) -> torch.Tensor:
    """Mean normalised entropy of sigmoid (one channel) or softmax probabilities."""
    p = probabilities.clamp(1e-6, 1 - 1e-6)
    if p.shape[1] == 1:
        return (-(p * p.log() + (1 - p) * (1 - p).log()) / np.log(2)).mean()
    return (-(p * p.log()).sum(dim=1) / np.log(p.shape[1])).mean()
