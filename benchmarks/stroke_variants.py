"""The stroke cure's recipe variants that ``benchmarks/strokes.py --explore`` measures:
AdaptConfig options, simulated-user changes, and module attributes replaced for the run
(what is not an option: the stop rule, the split of the strokes, the anchor's loss)."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from napari_bnadapt.adapt.stroke_training import anchor_loss
from napari_bnadapt.adapt.strokes import split_blocks


def nothing_held_out(labels, *_args) -> np.ndarray:
    """Hold nothing out: no stop rule, no guard (the fixed-steps variants)."""
    return np.zeros(labels.shape, bool)


def confident_anchor(logits, anchor, where):
    """The anchor only where the label-free model is sure (p ≤ 0.2 or ≥ 0.8): its unsure
    rims (a membrane's thickness) free to follow the strokes."""
    sure = (anchor.amax(dim=1) >= 0.8) | (anchor.amin(dim=1) <= 0.2)
    return anchor_loss(logits, anchor, where & sure)


def anchor_away(logits, anchor, where, reach: int = 4):
    """No anchor within ``reach`` pixels of a stroke: what a stroke says spreads to its
    neighbours before the anchor takes over."""
    painted = (~where).float().unsqueeze(1)
    near = F.max_pool2d(painted, 2 * reach + 1, stride=1, padding=reach)[:, 0] > 0
    return anchor_loss(logits, anchor, where & ~near)


def head_only(model, which: str) -> list[str]:
    """The 1×1 output layer alone (a linear read-out of the last features, as
    convpaint-like tools train on frozen features); ``which`` is ignored."""
    return [n for n, _ in model.module.named_parameters() if n.startswith("head.")]


def last_stage(model, which: str) -> list[str]:
    """The last up-sampling, decoder stage and the head (the finest scale only)."""
    prefixes = ("upsamplers.2.", "decoder.2.", "head.")
    return [n for n, _ in model.module.named_parameters() if n.startswith(prefixes)]


#: name → (AdaptConfig options, simulated-user changes, ``module.attribute`` replacements).
VARIANTS = {
    "default": ({}, {}, {}),
    "no consistency": ({"stroke_consistency": 0.0}, {}, {}),
    "consistency 1": ({"stroke_consistency": 1.0}, {}, {}),
    "consistency 3": ({"stroke_consistency": 3.0}, {}, {}),
    "lr 1e-4, consistency 3": ({"stroke_learning_rate": 1e-4, "stroke_consistency": 3.0}, {}, {}),
    "lr 3e-4, consistency 3": ({"stroke_learning_rate": 3e-4, "stroke_consistency": 3.0}, {}, {}),
    "decoder": ({"stroke_parameters": "decoder"}, {}, {}),
    "affine": ({"stroke_parameters": "affine", "stroke_learning_rate": 1e-2}, {}, {}),
    "lr 3e-4": ({"stroke_learning_rate": 3e-4}, {}, {}),
    "lr 3e-3": ({"stroke_learning_rate": 3e-3}, {}, {}),
    "brush 1": ({}, {"width": 1}, {}),
    "brush 7": ({}, {"width": 7}, {}),
    "fixed 100 steps": ({"stroke_steps": 100}, {}, {"strokes.split_strokes": nothing_held_out}),
    "fixed 30 steps": ({"stroke_steps": 30}, {}, {"strokes.split_strokes": nothing_held_out}),
    "statistics again": ({"reestimate": True}, {}, {}),
    "confident anchor": ({}, {}, {"stroke_training.anchor_loss": confident_anchor}),
    "anchor away from strokes": ({}, {}, {"stroke_training.anchor_loss": anchor_away}),
    "strokes cure": ({"cure": "strokes"}, {}, {}),
    "strokes cure, lr 1e-3, consistency 0.3": (
        {"cure": "strokes", "stroke_learning_rate": 1e-3, "stroke_consistency": 0.3},
        {},
        {},
    ),
    "head, lr 1e-2": (
        {"stroke_learning_rate": 1e-2},
        {},
        {"stroke_training.trainable_names": head_only},
    ),
    "head, lr 1e-2, no consistency": (
        {"stroke_learning_rate": 1e-2, "stroke_consistency": 0.0},
        {},
        {"stroke_training.trainable_names": head_only},
    ),
    "last stage, lr 1e-3": (
        {"stroke_learning_rate": 1e-3},
        {},
        {"stroke_training.trainable_names": last_stage},
    ),
    "blocks held out": ({}, {}, {"strokes.split_strokes": split_blocks}),
}
