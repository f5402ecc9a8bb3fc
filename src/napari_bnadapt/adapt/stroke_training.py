"""The stroke cure's fine-tuning: a loss on the painted pixels, the label-free model as the
anchor everywhere else, stopped and guarded by held-out strokes.

The network starts from the label-free state (AdaBN's statistics, or the source's) and
trains the chosen parameters (all, the decoder, or the BatchNorm affine terms) on patches
that hold the strokes, with the BatchNorm statistics frozen (eval mode: a few patches
around strokes are neither many enough nor representative enough to measure statistics
on). The loss is class-balanced cross-entropy on the training strokes plus a consistency
term pulling every unlabelled pixel towards the label-free model's prediction (its weight
``consistency``), so that a few strokes correct what they touch without the rest drifting.
After AdaBN the anchor is strong (weight 3, step size 3e-4: chosen on strokes painted as
corrections, docs/strokes.md); on the source model's own predictions (``strokes``) it is
weak (0.3, 1e-3), as where the label-free model is wrong everywhere (inverted contrast,
which ``polarity`` fixes without labels): :data:`~..adabn.config.STROKE_RECIPES`.

Every ``CHECK_EVERY`` steps the held-out strokes are scored (class-balanced accuracy and
loss), and the training strokes (each class's recall); the best state is kept, training
stops when it has not improved for ``PATIENCE`` checks (counted once every class's
training strokes are half right), and the result is kept only when it beats the
label-free model on the held-out strokes while getting at least half of every class's
training strokes right (strokes painted where the label-free model is wrong start near
zero on both, and a network collapsed to one class would otherwise "beat" it): otherwise
everything is undone. (When no stroke pixel could be held out, as with a single dot per
class, nothing can judge: the step limit stops and the result stays, and
the record says so.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..jobs import Progress, Steps
from ..model.loaded import LoadedModel
from ..model.unet import UNet, run_padded, to_probabilities
from .tent import affine_names

CHECK_EVERY = 10
#: A kept state classifies at least this share of every painted class's training strokes.
TAUGHT_FLOOR = 0.5
#: Checks without a better held-out score before training stops.
PATIENCE = 4
#: Parameter groups the stroke cure may train.
DECODER_PREFIXES = ("upsamplers.", "decoder.", "head.")


@dataclass
class StrokeBatch:
    """Patches around the strokes, read once: inputs ``(N, C, *patch)``, stroke labels
    ``(N, *patch)`` (0 = none), held-out mask, and the label-free model's probabilities."""

    inputs: torch.Tensor
    labels: torch.Tensor
    held_out: torch.Tensor
    anchor: torch.Tensor

    @property
    def training(self) -> torch.Tensor:
        return (self.labels > 0) & ~self.held_out


def trainable_names(model: LoadedModel, which: str) -> list[str]:
    """Names of the parameters the cure trains: ``all``, ``decoder`` (the built-in U-Net's
    up-sampling path and head; for other networks the later half of the parameters) or
    ``affine`` (the BatchNorm γ, β)."""
    names = [n for n, _ in model.module.named_parameters()]
    if which == "affine":
        return affine_names(model)
    if which == "decoder":
        if isinstance(model.module, UNet):
            return [n for n in names if n.startswith(DECODER_PREFIXES)]
        return names[len(names) // 2 :]
    return names


def stroke_training_steps(
    model: LoadedModel,
    batch: StrokeBatch,
    *,
    steps: int,
    learning_rate: float,
    parameters: str,
    consistency: float,
    batch_size: int,
    device: torch.device,
    seed: int = 0,
    start: dict[str, torch.Tensor] | None = None,
) -> Steps[dict[str, Any]]:
    """Fine-tune ``model`` in place on ``batch``; undo unless the held-out strokes say it
    is better than the state it started from (``start``, a copy of the module's state
    dict: taken here unless the caller, which may undo it later, already holds one).
    Returns what was done, for the record."""
    module = model.module.to(device).eval()
    names = trainable_names(model, parameters)
    named = dict(module.named_parameters())
    start = start if start is not None else copy.deepcopy(module.state_dict())
    flags = {n: p.requires_grad for n, p in named.items()}
    for name, parameter in named.items():
        parameter.requires_grad_(name in names)
    optimizer = torch.optim.Adam([named[n] for n in names], lr=learning_rate)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    before = held_out_score(module, batch, model, device)
    best, best_state, best_step, since, taken = before, None, 0, 0, 0
    history, stopped = [], "step limit"
    try:
        for step in range(1, steps + 1):
            chosen = rng.choice(len(batch.inputs), min(batch_size, len(batch.inputs)), False)
            x, labels, train_mask, anchor = _augment(batch, chosen, rng, generator)
            logits = run_padded(module, x.to(device), model.divisor)
            loss = stroke_loss(logits, labels.to(device), train_mask.to(device))
            if consistency > 0:
                loss = loss + consistency * anchor_loss(
                    logits, anchor.to(device), ~(labels > 0).to(device)
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            taken = step
            yield Progress(step, steps, f"learning from strokes, step {step}/{steps}")
            if before.accuracy is None or (step % CHECK_EVERY and step != steps):
                continue
            score = held_out_score(module, batch, model, device)
            history.append({"step": step, **score.to_dict()})
            if score.better_than(best):
                best, best_state, best_step, since = (
                    score,
                    copy.deepcopy(module.state_dict()),
                    step,
                    0,
                )
            elif score.learnt():  # a network still learning its strokes has not stalled
                since += 1
                if since >= PATIENCE:
                    stopped = "held-out strokes stopped improving"
                    break
    except BaseException:
        module.load_state_dict(start)
        raise
    finally:
        for name, parameter in named.items():
            parameter.requires_grad_(flags[name])
    if before.accuracy is None:  # nothing held out: nothing can judge, the last state stays
        kept, reason = True, "kept unchecked: no stroke could be held out (paint a few more)"
    else:
        kept = best_state is not None
        reason = (
            "kept: better on the held-out strokes"
            if kept
            else "learning did not make the held-out strokes more right (while getting the "
            "others right): undone, the network is the label-free one"
        )
        module.load_state_dict(best_state if kept else start)
    return {
        "steps": taken,
        "best_step": best_step,
        "stopped": stopped,
        "parameters": parameters,
        "held_out_before": before.to_dict(),
        "held_out_after": best.to_dict(),
        "history": history,
        "guard": {"kept": kept, "reason": reason},
    }


@dataclass(frozen=True)
class HeldOutScore:
    """Class-balanced accuracy and loss on the held-out strokes (None: none held out), the
    lowest recall of a class on the training strokes (``taught``), and each painted class's
    recall on the held-out strokes (``recalls``, label order: what the message names)."""

    accuracy: float | None
    loss: float | None
    taught: float | None = None
    recalls: dict[int, float] | None = None

    def better_than(self, other: HeldOutScore) -> bool:
        """Higher accuracy; at equal accuracy, lower loss. Never a state that classifies
        most of a painted class's training strokes wrong: a network that predicts one class
        everywhere scores half the held-out strokes right when the label-free model had
        none right (strokes painted where it was wrong), yet it learnt nothing."""
        if self.accuracy is None or other.accuracy is None:
            return False
        if not self.learnt():
            return False
        if self.accuracy != other.accuracy:
            return self.accuracy > other.accuracy
        return self.loss < other.loss

    def learnt(self) -> bool:
        """Whether the network classifies enough of every class's training strokes."""
        return self.taught is None or self.taught >= TAUGHT_FLOOR

    def to_dict(self) -> dict[str, float | None]:
        return {
            "accuracy": None if self.accuracy is None else round(self.accuracy, 5),
            "loss": None if self.loss is None else round(self.loss, 5),
            "taught": None if self.taught is None else round(self.taught, 5),
            "recalls": None
            if self.recalls is None
            else {str(k): round(v, 4) for k, v in self.recalls.items()},
        }


def held_out_score(
    module: torch.nn.Module, batch: StrokeBatch, model: LoadedModel, device: torch.device
) -> HeldOutScore:
    """The network's class-balanced accuracy and loss on the held-out stroke pixels, and
    its lowest per-class recall on the training strokes."""
    if not batch.held_out.any():
        return HeldOutScore(None, None)
    module.eval()
    logits = []
    with torch.no_grad():
        for start in range(0, len(batch.inputs), 8):
            x = batch.inputs[start : start + 8].to(device)
            logits.append(run_padded(module, x, model.divisor).float().cpu())
    logits = torch.cat(logits)
    held, training, labels = batch.held_out, batch.training, batch.labels
    loss = float(stroke_loss(logits, labels, held))
    predicted = _classes_of(logits)
    recalls = class_recalls(predicted, labels, held)
    accuracy = float(np.mean(list(recalls.values())))
    taught = list(class_recalls(predicted, labels, training).values())
    # Rounded so that a difference of one pixel in a million does not count as better.
    return HeldOutScore(round(accuracy, 4), loss, min(taught) if taught else None, recalls)


def class_recalls(
    predicted: torch.Tensor, labels: torch.Tensor, where: torch.Tensor
) -> dict[int, float]:
    """Per painted label, the share of its stroke pixels ``where`` predicted as its class."""
    recalls = {}
    for c in torch.unique(labels[where]):
        chosen = where & (labels == c)
        recalls[int(c)] = float((predicted[chosen] == c - 1).float().mean())
    return recalls


def stroke_loss(logits: torch.Tensor, labels: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the stroke pixels ``where``, each class weighing the same whatever
    its pixel count (binary: sigmoid of one channel; label 1 = background)."""
    terms = []
    for c in torch.unique(labels[where]):
        mask = where & (labels == c)
        target = int(c) - 1
        if logits.shape[1] == 1:
            values = logits[:, 0][mask]
            terms.append(
                F.binary_cross_entropy_with_logits(values, torch.full_like(values, target))
            )
        else:
            values = logits.movedim(1, -1)[mask]
            wanted = torch.full((len(values),), target, dtype=torch.long, device=values.device)
            terms.append(F.cross_entropy(values, wanted))
    return torch.stack(terms).mean() if terms else logits.sum() * 0.0


def anchor_loss(logits: torch.Tensor, anchor: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the label-free model's probabilities on the pixels ``where``."""
    if logits.shape[1] == 1:
        losses = F.binary_cross_entropy_with_logits(logits[:, 0], anchor[:, 0], reduction="none")
    else:
        losses = -(anchor * F.log_softmax(logits, dim=1)).sum(dim=1)
    weight = where.float()
    return (losses * weight).sum() / weight.sum().clamp_min(1.0)


def anchor_of(
    module: torch.nn.Module, inputs: torch.Tensor, model: LoadedModel, device
) -> torch.Tensor:
    """The label-free model's probabilities on ``inputs`` (eval mode, on the CPU)."""
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), 8):
            x = inputs[start : start + 8].to(device)
            out.append(to_probabilities(run_padded(module, x, model.divisor).float()).cpu())
    return torch.cat(out)


def _classes_of(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class per pixel, 0 = background (binary: sigmoid ≥ 0.5)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] >= 0).long()
    return logits.argmax(dim=1)


def _augment(
    batch: StrokeBatch, chosen: np.ndarray, rng: np.random.Generator, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """The chosen patches, each turned and flipped at random in the plane (inputs, labels
    and anchor alike), with a random gain, offset and noise on the input."""
    index = torch.from_numpy(np.sort(chosen))
    x, labels = batch.inputs[index], batch.labels[index]
    train, anchor = batch.training[index], batch.anchor[index]
    turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)

    def move(t: torch.Tensor) -> torch.Tensor:
        t = torch.rot90(t, turns, dims=(-2, -1))
        return torch.flip(t, dims=(-1,)) if flip else t

    x, labels, train, anchor = move(x), move(labels), move(train), move(anchor)
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    gain = 1.0 + 0.1 * torch.randn(shape, generator=generator)
    offset = 0.1 * torch.randn(shape, generator=generator)
    noise = 0.05 * torch.randn(x.shape, generator=generator)
    return x * gain + offset + noise, labels, train, anchor
