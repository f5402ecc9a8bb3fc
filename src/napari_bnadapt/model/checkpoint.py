"""Model files: the native checkpoint and TorchScript, loaded without unpickling code.

Native file (``torch.save`` of a dict, read back with ``torch.load(weights_only=True)``)::

    format            "napari-bnadapt-model"
    format_version    1
    architecture      {"name": "unet", "config": {dims, in_channels, ...}}
    state_dict        weights, affine terms and BatchNorm buffers (possibly adapted)
    source_bn_stats   {layer: {running_mean, running_var}}: the statistics of training
    metadata_json     JSON text: normalisation, classes, dims/channels, provenance, the
                      adaptation record and the cure's input steps when adapted
    fingerprint       (optional) the source fingerprint: tensors and plain values
    source_weights    (optional) source values of parameters a cure changed

Format version 2 marks a file whose cure needs this version to be applied (input steps or
changed parameters): older versions refuse it instead of predicting without the cure.

TorchScript files carry the same JSON (with source statistics as lists) as the extra file
``bnadapt.json`` and the fingerprint and source weights as ``bnadapt_tensors.pt`` (read
with ``weights_only=True``); TorchScript files from elsewhere load with defaults inferred
from the module.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..arrays.normalization import NormalizationSpec
from ..errors import BnAdaptError, ModelFileError, first_line
from ..io.files import atomic_output
from .architecture import Architecture, architecture_of, bare_unet, external_model
from .bn_layers import list_norm_layers
from .documents import (
    extras_from,
    metadata_document,
    read_tensor_bytes,
    record_from,
    stats_from_lists,
    stats_to_lists,
    tensor_document,
)
from .loaded import LoadedModel
from .package import is_package, load_package
from .schema import check_document, check_unet
from .signature import probe_output_channels
from .sizing import build_within_budget
from .unet import UNet, UNetConfig

FORMAT = "napari-bnadapt-model"
FORMAT_VERSION = 2
EXTRA_FILE = "bnadapt.json"
TENSORS_FILE = "bnadapt_tensors.pt"
DATA = Path(__file__).parents[1] / "data"
#: Models shipped with the package, by the name that stands for them wherever a model
#: file is asked for.
BUNDLED = {
    "demo": DATA / "demo_unet.pt",
    "membranes-fibsem": DATA / "membranes_fibsem.pt",
}
DEMO_NAME = "demo"
DEMO_PATH = BUNDLED[DEMO_NAME]


def resolve_model_path(path: str | Path) -> Path:
    """The path of a model file; a name of :data:`BUNDLED` names a bundled model."""
    if str(path) in BUNDLED:
        bundled = BUNDLED[str(path)]
        if not bundled.is_file():
            raise ModelFileError(
                f"the bundled model {str(path)!r} is missing from this installation: "
                "reinstall napari-bnadapt (or rebuild it with the script in scripts/)"
            )
        return bundled
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ModelFileError(
            f"model file {str(path)!r} not found: check the path, or use one of the bundled "
            f"models ({', '.join(BUNDLED)})"
        )
    if resolved.is_dir():
        raise ModelFileError(
            f"{str(path)!r} is a folder without rdf.yaml or bioimageio.yaml: give a model "
            "file (.pt, TorchScript) or a bioimage.io package (.zip, or its unpacked folder)"
        )
    return resolved


def load_model(
    path: str | Path, architecture: Architecture | None = None, trust_code: bool = False
) -> LoadedModel:
    """Load a native checkpoint, a TorchScript file or a bioimage.io package; refuse
    anything that runs code unless ``trust_code`` (a package's own network code).

    With ``architecture`` (a class of an installed library and its arguments), ``path`` is
    a plain state_dict of that network.
    """
    if str(path) not in BUNDLED and architecture is None and is_package(path):
        model = load_package(path, trust_code=trust_code)
        model.path = str(Path(path).expanduser())
        return model
    resolved = resolve_model_path(path)
    if architecture is not None:
        model = external_model(resolved, architecture)
    elif _is_torchscript(resolved):
        model = _load_torchscript(resolved)
    else:
        model = _load_native(resolved)
    model.path = str(path) if str(path) in BUNDLED else str(resolved)
    model.module.eval()
    return model


def save_model(model: LoadedModel, path: str | Path) -> Path:
    """Write ``model`` (current statistics, source statistics, provenance) atomically.

    TorchScript models are written as TorchScript with the metadata as an extra file;
    built-in U-Nets as the native checkpoint.
    """
    path = Path(path)
    meta = metadata_document(model)
    tensors = tensor_document(model)
    external = model.metadata.get("architecture") if model.format == "external" else None
    scripted = model.format in ("torchscript", "bioimageio")
    if not scripted and model.config is None and external is None:
        raise ModelFileError("only built-in U-Nets and TorchScript models can be saved")
    with atomic_output(path) as tmp:
        if scripted:
            meta["source_bn_stats"] = stats_to_lists(model.source_stats)
            extra = {EXTRA_FILE: json.dumps(meta)}
            if tensors:
                buffer = io.BytesIO()
                torch.save(tensors, buffer)
                extra[TENSORS_FILE] = buffer.getvalue()
            torch.jit.save(script(model.module), str(tmp), _extra_files=extra)
        else:
            document = {
                "format": FORMAT,
                "format_version": 2 if _needs_version_2(model) else 1,
                "architecture": external or {"name": "unet", "config": model.config.to_dict()},
                "state_dict": {k: v.detach().cpu() for k, v in model.module.state_dict().items()},
                "source_bn_stats": model.source_stats,
                "metadata_json": json.dumps(meta),
                **tensors,
            }
            torch.save(document, tmp)
    return path


def _needs_version_2(model: LoadedModel) -> bool:
    """Whether an older reader would get this model wrong (a cure it cannot apply)."""
    return bool(model.input_steps) or bool(model.source_weights)


def script(module: nn.Module) -> torch.jit.ScriptModule:
    """``module`` compiled to TorchScript (itself when it already is)."""
    if isinstance(module, torch.jit.ScriptModule):
        return module
    try:
        return torch.jit.script(module)
    except Exception as exc:  # TorchScript's compiler raises many kinds
        raise ModelFileError(
            f"the network {type(module).__name__} cannot be compiled to TorchScript "
            f"({type(exc).__name__}: {first_line(exc, 100)}): save it in "
            "the native format, or export it from its own library"
        ) from None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


#: The first bytes of files people mistake for a model, and what each is.
NOT_MODELS = (
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"\x89PNG", "a PNG image"),
    (b"\x89HDF", "an HDF5 file"),
)  # fmt: skip


def _refuse_other_formats(path: Path) -> None:
    """A file that is neither a zip (torch's format) nor a pickle (its legacy one) is no
    model: say what it looks like, rather than that it holds code."""
    with open(path, "rb") as stream:
        head = stream.read(8)
    if zipfile.is_zipfile(path) or head.startswith(b"\x80"):
        return
    kind = next((name for magic, name in NOT_MODELS if head.startswith(magic)), None)
    what = (
        f"a model file but {kind} (give it as the image: --target, --input)"
        if kind
        else "a readable model file (empty, truncated, or of another format)"
    )
    raise ModelFileError(
        f"{path.name} is not {what}: give the model as a .pt or TorchScript file, or a "
        "bioimage.io package"
    )


def _load_native(path: Path) -> LoadedModel:
    _refuse_other_formats(path)
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise ModelFileError(
                f"{path.name} holds Python objects that could run code when loaded, so it "
                "was refused: save the weights as a state_dict or export TorchScript"
            ) from None
        raise ModelFileError(f"{path.name} is not a readable model file: {exc}") from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/... on corrupt files
        raise ModelFileError(
            f"{path.name} is not a readable model file (truncated, corrupt, or another "
            f"format): {type(exc).__name__}"
        ) from None
    if not isinstance(document, dict):
        raise ModelFileError(
            f"{path.name} does not contain a model (found {type(document).__name__})"
        )
    if document.get("format") == FORMAT:
        return _native_from_document(document, path)
    if document and all(isinstance(v, torch.Tensor) for v in document.values()):
        return bare_unet(document, path)
    raise ModelFileError(
        f"{path.name} is a PyTorch file but not a napari-bnadapt model or U-Net state_dict: "
        "name its network with --architecture (and --architecture-args), or export it as "
        "TorchScript (torch.jit.script + save)"
    )


def _native_from_document(document: dict[str, Any], path: Path) -> LoadedModel:
    version = int(document.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path.name} was written by a newer napari-bnadapt (format {version}): upgrade"
        )
    if (document.get("architecture") or {}).get("name") == "external":
        meta = check_document(_json(document.get("metadata_json") or "{}", path), path.name)
        model = external_model(path, architecture_of(document, path), document=document, meta=meta)
        model.adaptation = record_from(meta)
        return model
    try:
        config = UNetConfig.from_dict(check_unet(document["architecture"]["config"], path.name))
        meta = check_document(_json(document["metadata_json"], path), path.name)
        module = build_within_budget(lambda: UNet(config), f"the U-Net {path.name} describes")
        module.load_state_dict(document["state_dict"])
        normalization = NormalizationSpec.from_dict(meta["normalization"])
    except BnAdaptError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path.name} is a damaged napari-bnadapt model ({type(exc).__name__}: "
            f"{first_line(exc)}): retrain or re-save it"
        ) from None
    return LoadedModel.build(
        module,
        normalization,
        config=config,
        source_stats=document.get("source_bn_stats"),
        classes=meta.get("classes"),
        metadata=meta.get("metadata", {}),
        adaptation=record_from(meta),
        **extras_from(meta, document, path),
    )


def _load_torchscript(path: Path) -> LoadedModel:
    extra = {EXTRA_FILE: "", TENSORS_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelFileError(
            f"{path.name} is not a loadable TorchScript file ({type(exc).__name__}): "
            "re-export it with torch.jit.save"
        ) from None
    meta = check_document(_json(extra[EXTRA_FILE], path), path.name) if extra[EXTRA_FILE] else {}
    tensors = read_tensor_bytes(extra[TENSORS_FILE], path) if extra[TENSORS_FILE] else {}
    layers = list_norm_layers(module)
    dims, in_channels = _infer_dims_and_channels(module, layers)
    dims, in_channels = int(meta.get("dims", dims)), int(meta.get("in_channels", in_channels))
    divisor = int((meta.get("metadata") or {}).get("divisor", 16))
    out_channels = probe_output_channels(module, dims, in_channels, max(32, 2 * divisor), path.name)
    source_stats = stats_from_lists(meta.get("source_bn_stats"))
    return LoadedModel.build(
        module,
        NormalizationSpec.from_dict(meta.get("normalization") or {"mode": "percentile"}),
        dims=dims,
        in_channels=in_channels,
        out_channels=out_channels,
        source_stats=source_stats,
        classes=meta.get("classes"),
        metadata=meta.get("metadata", {"name": path.stem, "provenance": "TorchScript file"}),
        format="torchscript",
        adaptation=record_from(meta),
        **extras_from(meta, tensors, path),
    )


def _json(text: Any, path: Path) -> Any:
    """A model file's JSON metadata, parsed; one line when it is not JSON."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path.name}: its metadata is not valid JSON ({first_line(exc, 80)}): the file is "
            "damaged or was edited by hand; re-save the model"
        ) from None


def _infer_dims_and_channels(module: nn.Module, layers: list) -> tuple[int, int]:
    """Dims and input channels of a foreign TorchScript model, from its first convolution."""
    for _, param in module.named_parameters():
        if param.ndim in (4, 5):
            return param.ndim - 2, int(param.shape[1])
    for layer in layers:
        if layer.type_name.endswith("3d"):
            return 3, 1
    return 2, 1
