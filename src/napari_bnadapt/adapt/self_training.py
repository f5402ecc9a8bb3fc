"""Short self-training: fine-tuning on the adapted model's own confident predictions.

A mean teacher (Tarvainen & Valpola 2017; SynapseNet's domain adaptation for EM): the
teacher, starting as the AdaBN-adapted network, labels weakly augmented target patches;
the student learns those labels, where the teacher is confident, on strongly augmented
copies (intensity jitter and noise); the teacher follows the student as a moving average.
BatchNorm stays in eval mode with the AdaBN statistics. Every ``CHECK_EVERY`` steps the
teacher's probe masks are compared with the previous ones; training stops when they stop
changing (a label-free criterion), and the collapse guard undoes everything if the masks
ran away from AdaBN's.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..jobs import Progress, Steps
from ..model.loaded import LoadedModel
from ..model.unet import run_padded, to_probabilities
from .guard import check
from .probe import TrainingData, segmentation_of

#: Teacher probability beyond which a pixel's pseudo-label is trusted (either class).
CONFIDENCE = 0.9
#: Moving-average weight of the teacher.
TEACHER_MOMENTUM = 0.99
CHECK_EVERY = 25
#: Steps before the stopping criterion may stop training.
MIN_STEPS = 50
#: Probe masks changing less than this (1 − Dice) between checks: converged.
CONVERGED = 0.005


def self_training_steps(
    model: LoadedModel, data: TrainingData, *, steps: int, learning_rate: float
) -> Steps[dict[str, Any]]:
    """Fine-tune ``model`` (in place) for at most ``steps`` steps. Returns what was done."""
    probe = data.probe
    teacher = model.module.to(data.device).eval()
    start = copy.deepcopy(teacher.state_dict())
    student = copy.deepcopy(teacher).train(False)
    before = previous = probe.measure(teacher)
    optimizer = torch.optim.Adam(student.parameters(), lr=learning_rate)
    rng = np.random.default_rng(data.seed)
    torch.manual_seed(data.seed)
    taken, changes, stopped = 0, [], "step limit"
    try:
        for step in range(1, steps + 1):
            x = _weak_augment(data.random_batch(rng), rng)
            with torch.no_grad():
                teacher_probs = to_probabilities(run_padded(teacher, x, model.divisor))
            loss = _pseudo_label_loss(run_padded(student, _strong(x), model.divisor), teacher_probs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            _follow(teacher, student)
            taken = step
            yield Progress(step, steps, f"self-training step {step}/{steps}")
            if step % CHECK_EVERY == 0:
                current = probe.measure(teacher)
                changes.append(round(1.0 - current.agreement(previous), 5))
                previous = current
                if step >= MIN_STEPS and changes[-1] < CONVERGED:
                    stopped = "probe masks stopped changing"
                    break
    except BaseException:
        teacher.load_state_dict(start)
        raise
    reading = check(before, probe.measure(teacher))
    if not reading.kept:
        teacher.load_state_dict(start)
    return {
        "self_training_steps": taken,
        "stopped": stopped,
        "probe_changes": changes,
        "guard": reading.to_dict(),
    }


def _weak_augment(x: torch.Tensor, rng) -> torch.Tensor:
    """The same flip and quarter turn for teacher and student."""
    x = torch.rot90(x, int(rng.integers(4)), dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if rng.random() < 0.5 else x


def _strong(x: torch.Tensor) -> torch.Tensor:
    """The student's view: random gain, offset and noise in the normalised units."""
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    spread = x.std().clamp_min(1e-6)
    gain = 1.0 + 0.1 * torch.randn(shape, device=x.device)
    offset = 0.1 * spread * torch.randn(shape, device=x.device)
    return x * gain + offset + 0.1 * spread * torch.randn_like(x)


def _pseudo_label_loss(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the teacher's hard labels, only where the teacher is confident."""
    if logits.shape[1] == 1:
        confident = ((teacher > CONFIDENCE) | (teacher < 1 - CONFIDENCE)).float()
        losses = F.binary_cross_entropy_with_logits(
            logits, (teacher >= 0.5).float(), reduction="none"
        )
    else:
        confident = (teacher.max(dim=1, keepdim=True).values > CONFIDENCE).float()
        labels = segmentation_of(teacher).long()
        losses = F.cross_entropy(logits, labels, reduction="none")[:, None]
    return (losses * confident).sum() / confident.sum().clamp_min(1.0)


def _follow(teacher: torch.nn.Module, student: torch.nn.Module) -> None:
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.mul_(TEACHER_MOMENTUM).add_(s, alpha=1.0 - TEACHER_MOMENTUM)
