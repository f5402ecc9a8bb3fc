"""The parts of a model file beside the network, as plain documents and back.

Shared by every file format that carries a model (the native checkpoint, TorchScript's
extra files, a bioimage.io package's ``config`` and attachment): the JSON metadata
(normalisation, classes, adaptation record, input steps) and the optional tensors
(fingerprint, source weights).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ..errors import BnAdaptError, ModelFileError
from .bn_layers import BNStats
from .fingerprint import Fingerprint
from .input_steps import step_from_dict, step_to_dict
from .loaded import LoadedModel
from .painted_strokes import PaintedStrokes
from .record import AdaptationRecord
from .schema import check_voxel_size


def tensor_document(model: LoadedModel) -> dict[str, Any]:
    """The optional tensor parts: the fingerprint, the source weights and the strokes."""
    out: dict[str, Any] = {}
    if model.fingerprint is not None:
        out["fingerprint"] = model.fingerprint.to_document()
    if model.source_weights:
        out["source_weights"] = {k: v.detach().cpu() for k, v in model.source_weights.items()}
    if model.strokes is not None:
        out["strokes"] = model.strokes.to_document()
    return out


def metadata_document(model: LoadedModel) -> dict[str, Any]:
    return {
        "dims": model.dims,
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "normalization": model.normalization.to_dict(),
        "classes": list(model.classes),
        "metadata": model.metadata,
        "adaptation": model.adaptation.to_dict() if model.adaptation else None,
        "input_steps": [step_to_dict(step) for step in model.input_steps],
    }


def record_from(meta: dict[str, Any]) -> AdaptationRecord | None:
    """The adaptation record of a file's metadata (None: the statistics are the source)."""
    record = meta.get("adaptation")
    try:
        return AdaptationRecord.from_dict(record) if record else None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"the model's adaptation record is damaged ({type(exc).__name__}): re-save the "
            "model from the tool that adapted it"
        ) from None


def extras_from(meta: dict[str, Any], tensors: dict[str, Any], path: Path) -> dict[str, Any]:
    """Fingerprint, input steps, source weights and strokes of a file (all optional)."""
    strokes = tensors.get("strokes")
    if strokes is not None:
        out = int(meta.get("out_channels") or 255)  # unknown: any label a file may hold
        strokes = PaintedStrokes.from_document(strokes, 2 if out == 1 else out, path.name)
    try:
        document = tensors.get("fingerprint")
        fingerprint = Fingerprint.from_document(document) if document else None
        if fingerprint is not None and fingerprint.voxel_size:
            check_voxel_size(list(fingerprint.voxel_size), path.name, "fingerprint")
        return {
            "fingerprint": fingerprint,
            "input_steps": tuple(step_from_dict(s) for s in meta.get("input_steps") or ()),
            "source_weights": tensors.get("source_weights") or None,
            "strokes": strokes,
        }
    except BnAdaptError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path.name}: its fingerprint or cure is damaged or from a newer napari-bnadapt "
            f"({type(exc).__name__}): upgrade, or re-save the model"
        ) from None


def read_tensor_bytes(data: bytes | str, path: Path) -> dict[str, Any]:
    raw = data.encode("latin-1") if isinstance(data, str) else data
    try:
        document = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on a corrupt archive
        raise ModelFileError(
            f"{path.name}: its fingerprint could not be read ({type(exc).__name__}): re-save it"
        ) from None
    return document if isinstance(document, dict) else {}


def stats_to_lists(stats: dict[str, BNStats]) -> dict[str, dict[str, list[float]]]:
    """BatchNorm statistics as JSON lists (for formats whose metadata is text)."""
    return {name: {k: v.tolist() for k, v in layer.items()} for name, layer in stats.items()}


def stats_from_lists(document: dict[str, Any] | None) -> dict[str, BNStats]:
    """:func:`stats_to_lists` read back (empty when the file has none)."""
    return {
        name: {k: torch.tensor(v, dtype=torch.float32) for k, v in layer.items()}
        for name, layer in (document or {}).items()
    }
