"""Export a model in a format another tool reads: a bioimage.io package or TorchScript."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..model.checkpoint import save_model
from ..model.loaded import LoadedModel
from .bioimageio import ExportConfig, ExportResult, export_bioimageio
from .format_names import EXPORT_FORMATS


def export_model(
    model: LoadedModel,
    out: str | Path,
    format: str = "bioimageio",
    sample: np.ndarray | None = None,
    config: ExportConfig | None = None,
) -> ExportResult:
    """Write ``model`` (its current statistics) to ``out`` in ``format``.

    ``torchscript`` writes the network compiled with ``torch.jit.script``, loadable with
    ``torch.jit.load`` anywhere; napari-bnadapt's metadata rides along as an extra file.
    ``bioimageio`` writes a package (see :func:`export_bioimageio`; ``sample`` is an image
    to cut its test tensors and cover from).
    """
    if format == "bioimageio":
        return export_bioimageio(model, out, sample, config)
    if format == "torchscript":
        return ExportResult(save_model(replace(model, format="torchscript"), out))
    raise InputDataError(f"unknown export format {format!r}: use {' or '.join(EXPORT_FORMATS)}")
