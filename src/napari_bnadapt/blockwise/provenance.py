"""What made a block-wise output: the record a ``.partial`` store carries, so that
``--resume`` continues only the very run that began it.

Blocks kept from another model, other statistics, another block size or tiling would be
stitched to new ones without a seam anyone could see: the mask would be silently wrong
(30 % of voxels in one case). The record holds everything a block's values depend on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from ..errors import InputDataError
from ..inference import PredictConfig
from ..model.loaded import LoadedModel
from .plan import BlockPlan


def model_digest(model: LoadedModel) -> str:
    """SHA-256 of what the network computes: every tensor of its state (weights and the
    BatchNorm statistics it holds now), its normalisation and its input steps."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.module.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16: hash its bits
            value = value.view(torch.int16)
        digest.update(value.numpy().tobytes())
    digest.update(repr(model.normalization).encode())
    for step in model.input_steps:
        digest.update(json.dumps(step.describe(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def run_record(
    model: LoadedModel,
    plan: BlockPlan,
    image: Any,
    config: PredictConfig,
    scale: tuple[float, ...] | None,
) -> dict[str, Any]:
    """Everything the values of a block depend on, as plain JSON values."""
    adaptation = model.adaptation
    return {
        "model": model_digest(model),
        "statistics": model.state,
        "cure": adaptation.cure if adaptation is not None else None,
        "input": {"shape": [int(s) for s in image.shape], "dtype": str(np.dtype(image.dtype))},
        "block": [int(b) for b in plan.block],
        "tile": [int(s.stop - s.start) for s in plan.tiles[0]] if plan.tiles else [],
        "tiles": len(plan.tiles),
        "overlap": [int(o) for o in plan.overlap],
        "threshold": model.threshold_for(config.threshold),
        "slice_axis": plan.layout.slice_axis,
        "precision": plan.execution.precision,
        "channels_last": plan.execution.channels_last,
        "fold_batchnorm": plan.execution.fold_batchnorm,
        "voxel_size": [float(v) for v in scale] if scale else None,
        "model_shape": [int(n) for n in plan.model_shape] if plan.resampled else None,
        "model_voxel_size": list(model.voxel_size) if model.voxel_size else None,
    }


def check_same_run(found: dict[str, Any] | None, expected: dict[str, Any], store: str) -> None:
    """Refuse to resume ``store`` unless ``found`` (its record) is ``expected``; say what
    differs."""
    if found is None:
        raise InputDataError(
            f"--resume: {store} does not say which run made it (begun by an older version or "
            "another program): run without --resume to start afresh"
        )
    found = json.loads(json.dumps(found))  # both sides as JSON would give them
    expected = json.loads(json.dumps(expected))
    differ = [key for key in expected if found.get(key) != expected[key]]
    if differ:
        shown = "; ".join(_difference(key, found.get(key), expected[key]) for key in differ[:4])
        raise InputDataError(
            f"--resume: {store} was begun by another run ({shown}): its blocks would not "
            "match; run without --resume to start afresh, or resume with the same model and "
            "options"
        )


def _difference(key: str, found: Any, expected: Any) -> str:
    if key == "model":
        return "another model or other statistics"
    return f"{key} {_short(found)} there, {_short(expected)} now"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else f"{text[:37]}..."
