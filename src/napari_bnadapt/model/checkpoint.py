"""Model files: the native checkpoint and TorchScript, loaded without unpickling code.

Native file (``torch.save`` of a dict, read back with ``torch.load(weights_only=True)``)::

    format            "napari-bnadapt-model"
    format_version    1
    architecture      {"name": "unet", "config": {dims, in_channels, ...}}
    state_dict        weights, affine terms and BatchNorm buffers (possibly adapted)
    source_bn_stats   {layer: {running_mean, running_var}}: the statistics of training
    metadata_json     JSON text: normalisation, classes, dims/channels, provenance,
                      and the adaptation record when the statistics were adapted

TorchScript files carry the same JSON (with source statistics as lists) as the extra file
``bnadapt.json``; TorchScript files from elsewhere load with defaults inferred from the
module.
"""

from __future__ import annotations

import copy
import json
import pickle
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..arrays.normalization import NormalizationSpec
from ..errors import ModelFileError
from ..io.files import atomic_output
from .bn_layers import BNStats, list_norm_layers, read_bn_stats
from .unet import UNet, UNetConfig

FORMAT = "napari-bnadapt-model"
FORMAT_VERSION = 1
EXTRA_FILE = "bnadapt.json"
DEMO_NAME = "demo"
DEMO_PATH = Path(__file__).parents[1] / "data" / "demo_unet.pt"


@dataclass
class LoadedModel:
    """A segmentation network with everything needed to use and adapt it.

    ``source_stats`` are the BatchNorm statistics the network was trained with; they
    never change, so the model can always be reset to them. ``adaptation`` is the record
    of the adaptation whose statistics the module currently holds (None: source).
    """

    module: nn.Module
    dims: int
    in_channels: int
    out_channels: int
    normalization: NormalizationSpec
    source_stats: dict[str, BNStats]
    classes: tuple[str, ...] = ("foreground",)
    metadata: dict[str, Any] = field(default_factory=dict)
    config: UNetConfig | None = None
    format: str = "native"
    path: str | None = None
    adaptation: dict[str, Any] | None = None

    @property
    def divisor(self) -> int:
        """Spatial sizes that the network needs (inputs are padded to a multiple)."""
        if self.config is not None:
            return self.config.divisor
        return int(self.metadata.get("divisor", 16))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or (Path(self.path).stem if self.path else "model"))

    @property
    def state(self) -> str:
        """``'source'`` or ``'adapted'``: which BatchNorm statistics the module holds."""
        return "source" if self.adaptation is None else "adapted"

    @property
    def training_axis(self) -> int:
        """Axis a 2D model was trained across when given volumes (its slicing plane)."""
        return int(self.metadata.get("training_axis", 0))

    def copy(self) -> LoadedModel:
        """A deep copy: adapting the copy never touches this model."""
        return replace(
            self,
            module=copy.deepcopy(self.module),
            source_stats={
                k: {n: t.clone() for n, t in v.items()} for k, v in self.source_stats.items()
            },
            metadata=copy.deepcopy(self.metadata),
            adaptation=copy.deepcopy(self.adaptation),
        )


def wrap_unet(
    module: UNet,
    normalization: NormalizationSpec,
    metadata: dict[str, Any] | None = None,
    classes: tuple[str, ...] | None = None,
) -> LoadedModel:
    """Bundle a freshly built or trained :class:`UNet`; its current statistics are the source."""
    cfg = module.config
    return LoadedModel(
        module=module,
        dims=cfg.dims,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        normalization=normalization,
        source_stats=read_bn_stats(module),
        classes=classes or default_classes(cfg.out_channels),
        metadata=dict(metadata or {}),
        config=cfg,
    )


def default_classes(out_channels: int) -> tuple[str, ...]:
    if out_channels == 1:
        return ("foreground",)
    return ("background", *(f"class {i}" for i in range(1, out_channels)))


def resolve_model_path(path: str | Path) -> Path:
    """The path of a model file; the word ``demo`` names the bundled demo model."""
    if str(path) == DEMO_NAME:
        if not DEMO_PATH.is_file():
            raise ModelFileError(
                "the bundled demo model is missing from this installation: reinstall "
                "napari-bnadapt or run scripts/make_demo_model.py"
            )
        return DEMO_PATH
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ModelFileError(
            f"model file {str(path)!r} not found: check the path, or use 'demo' for the "
            "bundled demo model"
        )
    if resolved.is_dir():
        raise ModelFileError(
            f"{str(path)!r} is a folder, not a model file: give a .pt native or TorchScript file"
        )
    return resolved


def load_model(path: str | Path) -> LoadedModel:
    """Load a native checkpoint or a TorchScript file; refuse anything that runs code."""
    resolved = resolve_model_path(path)
    model = _load_torchscript(resolved) if _is_torchscript(resolved) else _load_native(resolved)
    model.path = str(path) if str(path) == DEMO_NAME else str(resolved)
    model.module.eval()
    return model


def save_model(model: LoadedModel, path: str | Path) -> Path:
    """Write ``model`` (current statistics, source statistics, provenance) atomically.

    TorchScript models are written as TorchScript with the metadata as an extra file;
    built-in U-Nets as the native checkpoint.
    """
    path = Path(path)
    meta = _metadata_document(model)
    with atomic_output(path) as tmp:
        if model.format == "torchscript":
            meta["source_bn_stats"] = {
                name: {k: v.tolist() for k, v in stats.items()}
                for name, stats in model.source_stats.items()
            }
            torch.jit.save(model.module, str(tmp), _extra_files={EXTRA_FILE: json.dumps(meta)})
        else:
            if model.config is None:
                raise ModelFileError("only built-in U-Nets and TorchScript models can be saved")
            document = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "architecture": {"name": "unet", "config": model.config.to_dict()},
                "state_dict": {k: v.detach().cpu() for k, v in model.module.state_dict().items()},
                "source_bn_stats": model.source_stats,
                "metadata_json": json.dumps(meta),
            }
            torch.save(document, tmp)
    return path


def _metadata_document(model: LoadedModel) -> dict[str, Any]:
    return {
        "dims": model.dims,
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "normalization": model.normalization.to_dict(),
        "classes": list(model.classes),
        "metadata": model.metadata,
        "adaptation": model.adaptation,
    }


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def _load_native(path: Path) -> LoadedModel:
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
        return _from_bare_state_dict(document, path)
    raise ModelFileError(
        f"{path.name} is a PyTorch file but not a napari-bnadapt model or U-Net state_dict: "
        "export the network as TorchScript (torch.jit.script/trace + save) to use it here"
    )


def _native_from_document(document: dict[str, Any], path: Path) -> LoadedModel:
    version = int(document.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path.name} was written by a newer napari-bnadapt (format {version}): upgrade"
        )
    try:
        config = UNetConfig.from_dict(document["architecture"]["config"])
        meta = json.loads(document["metadata_json"])
        module = UNet(config)
        module.load_state_dict(document["state_dict"])
        normalization = NormalizationSpec.from_dict(meta["normalization"])
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path.name} is a damaged napari-bnadapt model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120]}): retrain or re-save it"
        ) from None
    return LoadedModel(
        module=module,
        dims=config.dims,
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        normalization=normalization,
        source_stats=document.get("source_bn_stats") or read_bn_stats(module),
        classes=tuple(meta.get("classes") or default_classes(config.out_channels)),
        metadata=meta.get("metadata", {}),
        config=config,
        format="native",
        adaptation=meta.get("adaptation"),
    )


def _from_bare_state_dict(state: dict[str, torch.Tensor], path: Path) -> LoadedModel:
    """A state_dict of the built-in U-Net saved without metadata: infer its config."""
    try:
        first = state["encoder.0.conv1.weight"]
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("encoder."))
        config = UNetConfig(
            dims=first.ndim - 2,
            in_channels=int(first.shape[1]),
            out_channels=int(state["head.weight"].shape[0]),
            depth=depth,
            base_channels=int(first.shape[0]),
        )
        module = UNet(config)
        module.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError):
        raise ModelFileError(
            f"{path.name} is a state_dict of an unknown architecture: export the network "
            "as TorchScript to use it here"
        ) from None
    # No normalisation was recorded: per-input percentiles are the safest guess.
    return wrap_unet(
        module,
        NormalizationSpec(mode="percentile"),
        metadata={"name": path.stem, "provenance": "bare state_dict (normalisation guessed)"},
    )


def _load_torchscript(path: Path) -> LoadedModel:
    extra = {EXTRA_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelFileError(
            f"{path.name} is not a loadable TorchScript file ({type(exc).__name__}): "
            "re-export it with torch.jit.save"
        ) from None
    meta = json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}
    layers = list_norm_layers(module)
    dims, in_channels = _infer_dims_and_channels(module, layers)
    source = meta.get("source_bn_stats")
    source_stats = (
        {
            n: {k: torch.tensor(v, dtype=torch.float32) for k, v in s.items()}
            for n, s in source.items()
        }
        if source
        else read_bn_stats(module)
    )
    normalization = meta.get("normalization") or {"mode": "percentile"}
    return LoadedModel(
        module=module,
        dims=int(meta.get("dims", dims)),
        in_channels=int(meta.get("in_channels", in_channels)),
        out_channels=int(meta.get("out_channels", 1)),
        normalization=NormalizationSpec.from_dict(normalization),
        source_stats=source_stats,
        classes=tuple(meta.get("classes") or ("foreground",)),
        metadata=meta.get("metadata", {"name": path.stem, "provenance": "TorchScript file"}),
        config=None,
        format="torchscript",
        adaptation=meta.get("adaptation"),
    )


def _infer_dims_and_channels(module: nn.Module, layers: list) -> tuple[int, int]:
    """Dims and input channels of a foreign TorchScript model, from its first convolution."""
    for _, param in module.named_parameters():
        if param.ndim in (4, 5):
            return param.ndim - 2, int(param.shape[1])
    for layer in layers:
        if layer.type_name.endswith("3d"):
            return 3, 1
    return 2, 1
