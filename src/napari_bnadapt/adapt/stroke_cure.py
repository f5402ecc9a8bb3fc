"""The stroke cure as one job: patches around the strokes, the label-free anchor, the
fine-tuning, and what it did (for the record), with the cells of the painted slices before
and after (a 2D one-channel model's): strokes that open membranes merge cells, which the
held-out strokes do not see, and a run whose cells merged is undone.

It runs on the model the cure's plan has made label-free so far (the source, or AdaBN), in
place; :mod:`.engine` keeps the source values of what it trains, so ``reset`` is bit-exact.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..adabn.config import AdaptConfig
from ..adabn.sampling import Patch, TargetSet, patch_shape, read_patches, smallest_patch
from ..diagnostics.quality import cells_merged, cells_per_slice
from ..jobs import Steps
from ..model.loaded import LoadedModel
from .stroke_training import StrokeBatch, anchor_of, stroke_training_steps
from .stroke_verdict import stroke_verdict
from .strokes import StrokeSet, stroke_patches

#: Most patches read around the strokes (they cover every stroke when it is enough).
MAX_PATCHES = 64
#: Painted slices whose cells are counted (the first ones; a bounded cost).
CELL_SLICES = 4
#: Why a run the held-out strokes kept was undone: its cells merged (docs/strokes.md: on
#: the grid's 91 kept runs, the 4 below two thirds of the cells each lost 0.32-0.42 Rand F;
#: no other lost more than 0.15).
MERGED_REASON = (
    "the painted slices' cells merged (the strokes opened the membranes): undone, the "
    "network is the label-free one"
)
#: Patch edge around strokes for a model whose training patch is unknown.
DEFAULT_PATCH = {2: 64, 3: 32}


def stroke_cure_steps(
    model: LoadedModel,
    targets: TargetSet,
    strokes: StrokeSet,
    cfg: AdaptConfig,
    device: torch.device,
) -> Steps[dict[str, Any]]:
    """Fine-tune ``model`` (in place) on ``strokes`` of ``targets``; returns the record's
    ``strokes`` entry: what was painted, what was trained, how it stopped, the held-out
    strokes before and after, the guard, the seconds."""
    started = time.perf_counter()
    batch = read_stroke_batch(model, targets, strokes, cfg, device)
    label_free = painted_cells(model, targets, strokes, device)
    # One copy of the starting weights, for the training's guard and the merge guard.
    start = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    outcome = yield from stroke_training_steps(
        model, batch, steps=cfg.stroke_steps, learning_rate=cfg.stroke_learning_rate,
        parameters=cfg.stroke_parameters, consistency=cfg.stroke_consistency,
        batch_size=cfg.batch_size, device=device, seed=cfg.seed, start=start,
    )  # fmt: skip
    if label_free is not None and outcome["guard"]["kept"]:
        taught = painted_cells(model, targets, strokes, device)
        outcome["cells"] = {"label_free": label_free, "taught": taught}
        if cells_merged(label_free, taught):  # membranes opened: what strokes cannot see
            model.module.load_state_dict(start)
            outcome["guard"] = {"kept": False, "merged": True, "reason": MERGED_REASON}
    return {
        **strokes.summary,
        "patches": len(batch.inputs),
        "patch_size": list(batch.inputs.shape[2:]),
        **outcome,
        "seconds": round(time.perf_counter() - started, 3),
    }


def read_stroke_batch(
    model: LoadedModel,
    targets: TargetSet,
    strokes: StrokeSet,
    cfg: AdaptConfig,
    device: torch.device,
) -> StrokeBatch:
    """Patches that hold every stroke (at most :data:`MAX_PATCHES`), read through the
    cure's input steps, with their stroke labels and the label-free model's predictions."""
    view = targets.views[0]
    expected = tuple(view.shape[1:])
    if strokes.labels.shape != expected:  # both are resampled by the same factors
        raise AssertionError(f"strokes {strokes.labels.shape} against target {expected}")
    patches = stroke_patches(targets, strokes, stroke_patch(model, cfg), MAX_PATCHES, cfg.seed)
    inputs = torch.from_numpy(read_patches(targets, patches))
    labels = np.stack([strokes.labels[p.index[1:]] for p in patches])
    held = np.stack([strokes.held_out[p.index[1:]] for p in patches])
    return StrokeBatch(
        inputs=inputs,
        labels=torch.from_numpy(labels.astype(np.int64)),
        held_out=torch.from_numpy(held),
        anchor=anchor_of(model.module.to(device), inputs, model, device),
    )


def painted_cells(
    model: LoadedModel, targets: TargetSet, strokes: StrokeSet, device: torch.device
) -> float | None:
    """Cells per painted slice in the network's mask as it is now (whole slices at the
    model's scale, up to :data:`CELL_SLICES`); None for 3D or multi-class models."""
    if model.dims != 2 or model.out_channels != 1:
        return None
    planes = np.flatnonzero(strokes.labels.any(axis=(1, 2)))[:CELL_SLICES]
    whole = [Patch(0, (slice(None), int(z), slice(None), slice(None))) for z in planes]
    inputs = torch.from_numpy(read_patches(targets, whole))
    found = anchor_of(model.module.to(device), inputs, model, device)[:, 0].numpy()
    masks = found >= model.threshold_for(None)
    return round(float(np.mean([cells_per_slice(mask) for mask in masks])), 1)


def stroke_patch(model: LoadedModel, cfg: AdaptConfig) -> tuple[int, ...]:
    """The patch the strokes train on: the configured one, else the model's training patch
    (what its layers learnt on, and four times cheaper per step than AdaBN's 128² default),
    at least what the network can take."""
    if cfg.patch_size is not None:
        return patch_shape(model, cfg.patch_size)
    trained = model.metadata.get("patch_size")
    edge = int(max(trained)) if trained else DEFAULT_PATCH[model.dims]
    return (max(edge, smallest_patch(model)),) * model.dims


def stroke_summary(details: dict[str, Any]) -> str:
    """One line on what the strokes did (the record's ``strokes`` entry), in the words
    of the napari message (:func:`.stroke_verdict.stroke_verdict`)."""
    return (
        f"strokes: {details['strokes']} strokes, {details['labelled_pixels']} labelled pixels "
        f"on {len(details.get('slices', [0]))} slice(s); {details['steps']} steps "
        f"({details['stopped']}); {stroke_verdict(details)}"
    )
