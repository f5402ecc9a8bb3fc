"""An adapted model as a bioimage.io package (spec 0.5), made with ``bioimageio.spec``.

The package holds the network as TorchScript (its current, possibly adapted, statistics,
and a cure's input steps compiled in front of it: :mod:`.baked_steps`),
the model's normalisation as the input's preprocessing and its activation as the output's
postprocessing, fresh test tensors, a cover of the masks before and after adaptation, and
a documentation page that says what was adapted and how to undo it. The provenance is in
``config.napari_bnadapt`` and the source statistics in an attachment, so napari-bnadapt
reopens the package with its adaptation record and a working reset. The original package
is the ``parent`` when it came from the model zoo.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import ModelFileError
from ..io.files import atomic_output
from ..model.checkpoint import script
from ..model.documents import metadata_document, tensor_document
from ..model.loaded import LoadedModel
from ..model.package import CONFIG_KEY, STEPS_IN_NETWORK, TENSORS_ATTACHMENT
from .baked_steps import BakedSteps
from .cover import write_cover
from .documentation import write_documentation
from .test_tensors import make_test_tensors, sample_crop

#: What every exported package cites: the method its statistics come from.
ADABN = (
    "Li, Wang, Shi, Liu, Hou (2016). Revisiting Batch Normalization For Practical Domain "
    "Adaptation.",
    "https://arxiv.org/abs/1603.04779",
)
#: No output halo is declared: bioimage.io consumers pad a declared halo by mirroring the
#: image, which changes the predictions near the border, while the package should predict
#: exactly what napari-bnadapt predicts (the network sees the whole image, zero-padded by
#: its layers). The smallest input is the network's divisor, or what the package it came
#: from declared.


@dataclass(frozen=True)
class ExportConfig:
    """Options of :func:`export_bioimageio` (empty fields: taken from the model).

    Parameters
    ----------
    name
        The package's name (letters, digits, spaces, ``_+-()``; other characters dropped).
    authors
        The people to credit; default: the original package's authors, else "unknown".
    license
        An SPDX id; default: the original package's, else CC-BY-4.0.
    test
        Run ``bioimageio.core``'s ``test_model`` on the written package (a few seconds).
    """

    name: str = ""
    authors: tuple[str, ...] = ()
    license: str = ""
    test: bool = True
    tags: tuple[str, ...] = field(default=("segmentation", "electron-microscopy"))


@dataclass(frozen=True)
class ExportResult:
    """Where the package is, and what ``test_model`` said of it (None: not run)."""

    path: Path
    test_passed: bool | None = None
    test_message: str = ""


def export_bioimageio(
    model: LoadedModel,
    out: str | Path,
    sample: np.ndarray | None = None,
    config: ExportConfig | None = None,
) -> ExportResult:
    """Write ``model`` as the bioimage.io package ``out`` (a ``.zip``), atomically."""
    cfg = config or ExportConfig()
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ModelFileError(f"{out.name}: a bioimage.io package is written as a .zip")
    from bioimageio.spec import ValidationContext, save_bioimageio_package

    crop = sample_crop(model, sample, _min_size(model), model.divisor)
    with tempfile.TemporaryDirectory(prefix="bnadapt-export-") as folder:
        files = _write_files(model, Path(folder), crop)
        # No I/O checks: nothing is downloaded (the citation's URL stays unchecked).
        with ValidationContext(perform_io_checks=False):
            description = _description(model, files, cfg)
        packaged = save_bioimageio_package(description, output_path=Path(folder) / "package.zip")
        with atomic_output(out) as tmp:
            shutil.copyfile(packaged, tmp)
    if not cfg.test:
        return ExportResult(out)
    passed, message = test_package(out)
    return ExportResult(out, passed, message)


def test_package(path: Path) -> tuple[bool, str]:
    """``bioimageio.core.test_model`` on ``path``, offline: passed, and the first failure."""
    from bioimageio.core import test_model

    summary = test_model(path)
    if summary.status == "passed":
        return True, "bioimageio.core test_model passed"
    failed = [d for d in summary.details if d.status == "failed"]
    first = failed[0] if failed else None
    detail = f"{first.name}: {first.errors[0].msg if first.errors else ''}" if first else ""
    return False, f"bioimageio.core test_model failed ({detail[:200]})"


test_package.__test__ = False  # a function of the package, not a pytest test


def _write_files(model: LoadedModel, folder: Path, crop: np.ndarray) -> dict[str, Path]:
    """The package's files: weights, test tensors, cover, documentation, attachment."""
    tensors = make_test_tensors(model, crop)
    files = {
        "weights": folder / "weights_torchscript.pt",
        "input": folder / "test_input.npy",
        "output": folder / "test_output.npy",
        "cover": folder / "cover.png",
        "documentation": folder / "README.md",
        "attachment": folder / TENSORS_ATTACHMENT,
    }
    network = model.module.cpu().eval()
    if model.input_steps:  # bioimage.io has no preprocessing for them: inside the network
        network = BakedSteps(network, model.input_steps).eval()
    torch.jit.save(script(network), str(files["weights"]))
    np.save(files["input"], tensors.input)
    np.save(files["output"], tensors.output)
    write_cover(model, tensors, files["cover"])
    write_documentation(model, files["documentation"])
    document = tensor_document(model)
    document["source_bn_stats"] = model.source_stats
    torch.save(document, files["attachment"])
    return files


def _description(model: LoadedModel, files: dict[str, Path], cfg: ExportConfig) -> Any:
    from bioimageio.spec.model import v0_5 as spec

    parent = model.metadata.get("bioimageio") or {}
    space = ("z", "y", "x")[3 - model.dims :]
    size = spec.ParameterizedSize(min=_min_size(model), step=model.divisor)
    scales = [_scale(model, i) for i in range(model.dims)]
    space_in = [
        spec.SpaceInputAxis(id=spec.AxisId(a), size=size, **scale)
        for a, scale in zip(space, scales)
    ]
    space_out = [
        spec.SpaceOutputAxis(
            id=spec.AxisId(a),
            size=spec.SizeReference(tensor_id=spec.TensorId("raw"), axis_id=spec.AxisId(a)),
            **scale,
        )
        for a, scale in zip(space, scales)
    ]
    channels_in = spec.ChannelAxis(channel_names=_identifiers("channel", model.in_channels, None))
    channels_out = spec.ChannelAxis(
        channel_names=_identifiers("class", model.out_channels, model.classes)
    )
    inputs = spec.InputTensorDescr(
        id=spec.TensorId("raw"),
        axes=[spec.BatchAxis(), channels_in, *space_in],
        test_tensor=spec.FileDescr(source=files["input"]),
        data=spec.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=_preprocessing(model, spec),
    )
    if model.out_channels == 1:
        activation = spec.SigmoidDescr()
    else:
        activation = spec.SoftmaxDescr(kwargs=spec.SoftmaxKwargs(axis=spec.AxisId("channel")))
    outputs = spec.OutputTensorDescr(
        id=spec.TensorId("probabilities"),
        axes=[spec.BatchAxis(), channels_out, *space_out],
        test_tensor=spec.FileDescr(source=files["output"]),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        postprocessing=[activation],
    )
    return spec.ModelDescr(
        name=_name(cfg.name or _default_name(model)),
        description=_summary(model),
        authors=[
            spec.Author(name=a) for a in (cfg.authors or parent.get("authors") or ("unknown",))
        ],
        cite=[spec.CiteEntry(text=ADABN[0], url=spec.HttpUrl(ADABN[1]))],
        license=spec.LicenseId(cfg.license or parent.get("license") or "CC-BY-4.0"),
        documentation=spec.FileDescr(source=files["documentation"]),
        covers=[spec.FileDescr(source=files["cover"])],
        attachments=[spec.FileDescr(source=files["attachment"])],
        inputs=[inputs],
        outputs=[outputs],
        weights=spec.WeightsDescr(
            torchscript=spec.TorchscriptWeightsDescr(
                source=files["weights"],
                pytorch_version=spec.Version(torch.__version__.split("+")[0]),
            )
        ),
        parent=spec.LinkedModel(id=spec.ModelId(parent["id"]), version=parent.get("version"))
        if parent.get("id")
        else None,
        tags=list(cfg.tags),
        config={CONFIG_KEY: _provenance(model)},
    )


def _preprocessing(model: LoadedModel, spec: Any) -> list[Any]:
    """The model's normalisation as one bioimage.io preprocessing step."""
    norm = model.normalization
    if norm.mode == "fixed":
        kwargs = spec.FixedZeroMeanUnitVarianceKwargs(mean=norm.mean, std=norm.std)
        return [spec.FixedZeroMeanUnitVarianceDescr(kwargs=kwargs)]
    if norm.mode == "percentile":
        kwargs = spec.ScaleRangeKwargs(
            min_percentile=norm.low_percentile, max_percentile=norm.high_percentile
        )
        return [spec.ScaleRangeDescr(kwargs=kwargs)]
    if norm.mode == "zscore":
        return [spec.ZeroMeanUnitVarianceDescr()]
    return []


def _provenance(model: LoadedModel) -> dict[str, Any]:
    """napari-bnadapt's metadata document plus a readable summary of the adaptation."""
    document = metadata_document(model)
    # napari-bnadapt takes the steps out of the network again when it opens the package.
    document[STEPS_IN_NETWORK] = bool(model.input_steps)
    record = model.adaptation
    document["provenance"] = {
        "tool": f"napari-bnadapt {__version__}",
        "exported": datetime.now(UTC).isoformat(timespec="seconds"),
        "state": model.state,
        "cure": record.cure if record else None,
        "target": record.target if record else None,
        "patches": record.patches if record else None,
        "alpha": record.alpha if record else None,
        "adapted": record.created if record else None,
        "parent": (model.metadata.get("bioimageio") or {}).get("name"),
    }
    return document


def _min_size(model: LoadedModel) -> int:
    """Smallest input: a multiple of the network's step, at least what it was imported with."""
    step = model.divisor
    least = max(model.min_size, step)
    return -(-least // step) * step


def _scale(model: LoadedModel, axis: int) -> dict[str, Any]:
    size = model.voxel_size
    if not size or len(size) != model.dims:
        return {}
    return {"scale": float(size[axis]), "unit": "nanometer"}


def _identifiers(prefix: str, count: int, names: tuple[str, ...] | None) -> list[str]:
    """Channel names as bioimage.io identifiers (letters, digits, underscores)."""
    from bioimageio.spec.model.v0_5 import Identifier

    raw = list(names or ()) if names and len(names) == count else []
    raw = raw or [f"{prefix}{i}" for i in range(count)]
    cleaned = [re.sub(r"\W+", "_", n).strip("_") or f"{prefix}{i}" for i, n in enumerate(raw)]
    cleaned = [n if n[0].isalpha() else f"{prefix}_{n}" for n in cleaned]
    return [Identifier(n) for n in cleaned]


def _name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", text)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()[:64]
    return cleaned if len(cleaned) >= 5 else f"{cleaned} model".strip()


def _default_name(model: LoadedModel) -> str:
    record = model.adaptation
    return f"{model.name} adapted to {record.target}" if record else model.name


def _summary(model: LoadedModel) -> str:
    record = model.adaptation
    base = f"{model.dims}D segmentation network ({', '.join(model.classes)})"
    if record is None:
        return f"{base} with its source BatchNorm statistics, exported by napari-bnadapt."
    return (
        f"{base} whose normalisation statistics were adapted ({record.cure}) to "
        f"{record.target} by napari-bnadapt, without labels."
    )
