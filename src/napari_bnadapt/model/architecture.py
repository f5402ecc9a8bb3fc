"""Networks from installed libraries: a plain ``state_dict`` plus the class that reads it.

Most people have a network on disk as ``torch.save(model.state_dict(), "unet.pt")``. The
weights alone say nothing of the architecture, so the user names it
(``--architecture monai.networks.nets.UNet --architecture-args '{"spatial_dims": 2, ...}'``):
the class is imported from an *installed library* and built with those arguments, and the
weights are read with ``torch.load(weights_only=True)``. No code ever comes from the model
file. An adapted model saved by this package records the class and its arguments; reading
such a file back rebuilds the class only from the libraries of :data:`TRUSTED_PACKAGES`
(anything else needs the user to name the architecture again).
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from ..arrays.normalization import NormalizationSpec
from ..errors import BnAdaptError, ModelFileError
from .loaded import LoadedModel, wrap_unet
from .schema import check_unet
from .sizing import build_within_budget
from .unet import UNet, UNetConfig

#: A class's import path: dotted Python names, nothing relative, no file paths.
_IMPORT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
#: Libraries whose network classes a model file may name to be rebuilt on load.
TRUSTED_PACKAGES = ("monai.networks.nets", "segmentation_models_pytorch", "napari_bnadapt")


@dataclass(frozen=True)
class Architecture:
    """A network class by its import path, and the keyword arguments that build it."""

    target: str
    args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, target: str, args: str | dict[str, Any] | None) -> Architecture:
        """From the command line: a dotted class path and a JSON object of arguments."""
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise ModelFileError(
                    f"--architecture-args is not valid JSON ({exc.msg}): write it as an "
                    """object, e.g. '{"spatial_dims": 2, "in_channels": 1}'"""
                ) from None
        if not isinstance(args or {}, dict):
            raise ModelFileError("--architecture-args must be a JSON object of keyword arguments")
        return cls(target.strip(), dict(args or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": "external", "target": self.target, "args": self.args}

    def build(self) -> nn.Module:
        """Import the class from its installed library and build it (once its size is
        known to fit in memory)."""
        module_name, _, class_name = self.target.rpartition(".")
        if not _IMPORT_PATH.fullmatch(self.target):
            raise ModelFileError(
                f"--architecture {self.target!r}: give the class's import path, e.g. "
                "monai.networks.nets.UNet (files and paths are never imported)"
            )
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            raise ModelFileError(
                f"cannot import {self.target}: install the library that provides it (e.g. "
                "pip install monai) or check the class name"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ModelFileError(f"{self.target} is not a torch.nn.Module class")
        return build_within_budget(
            lambda: cls(**self.args), f"{self.target} with --architecture-args"
        )


def is_trusted(target: str) -> bool:
    return any(target == p or target.startswith(f"{p}.") for p in TRUSTED_PACKAGES)


def load_weights(
    module: nn.Module, path: Path | BinaryIO, target: str, name: str | None = None
) -> nn.Module:
    """Read a state_dict (never code) from ``path`` (a file, or an open binary stream
    called ``name``) into ``module``, strictly."""
    label = name or Path(getattr(path, "name", "weights")).name
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(
            f"{label} holds no readable weights ({type(exc).__name__}): save them with "
            "torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{label} is not a state_dict (a dict of tensors)")
    try:
        result = module.load_state_dict(
            _strip_prefix(state, set(module.state_dict())), strict=False
        )
    except RuntimeError as exc:  # same names, other shapes
        detail = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise ModelFileError(
            f"the weights in {label} do not fit {target} with these arguments ({detail[:160]}): "
            "give the --architecture-args the network was trained with"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelFileError(
            f"the weights in {label} do not fit {target} with these arguments "
            f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected, "
            f"e.g. {(result.missing_keys or result.unexpected_keys)[0]!r}): give the "
            "--architecture-args the network was trained with"
        )
    return module.eval()


def _strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Weights saved from a DataParallel or a Lightning module carry a common prefix:
    dropped when (and only when) that makes the keys those of the network."""
    if set(state) == expected:
        return state
    for prefix in ("module.", "model.", "net."):
        stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if len(stripped) == len(state) and set(stripped) == expected:
            return stripped
    return state


def external_model(
    path: Path,
    architecture: Architecture,
    *,
    document: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> LoadedModel:
    """A network of an installed library with the weights of ``path`` (a state_dict), or
    rebuilt from a document this package saved (``document``, with its ``meta``)."""
    module = architecture.build()
    if document is None:
        load_weights(module, path, architecture.target)
    else:
        try:
            module.load_state_dict(document["state_dict"])
        except (KeyError, RuntimeError) as exc:
            raise ModelFileError(f"{path.name} is damaged ({type(exc).__name__})") from None
    module.eval()
    dims, in_channels = first_convolution(module)
    meta = dict(meta or {})
    metadata = meta.get("metadata") or {
        "name": path.stem,
        "provenance": f"state_dict of {architecture.target}",
    }
    metadata["architecture"] = architecture.to_dict()
    return LoadedModel.build(
        module,
        NormalizationSpec.from_dict(meta.get("normalization") or {"mode": "percentile"}),
        dims=dims,
        in_channels=in_channels,
        out_channels=int(meta.get("out_channels") or _output_channels(module, dims, in_channels)),
        source_stats=(document or {}).get("source_bn_stats"),
        classes=meta.get("classes"),
        metadata=metadata,
        format="external",
    )


def architecture_of(document: dict[str, Any], path: Path) -> Architecture:
    """The architecture a saved document names, if its library is trusted."""
    spec = document.get("architecture") or {}
    target = str(spec.get("target", ""))
    if not is_trusted(target):
        raise ModelFileError(
            f"{path.name} names the network class {target!r}, which is not from a library "
            f"trusted to be rebuilt ({', '.join(TRUSTED_PACKAGES)}): load it with "
            f"--architecture {target} to confirm you trust it"
        )
    return Architecture(target, dict(spec.get("args") or {}))


def first_convolution(module: nn.Module) -> tuple[int, int]:
    """Spatial dims and input channels of a network, from its first convolution."""
    for _, param in module.named_parameters():
        if param.ndim in (4, 5):
            return param.ndim - 2, int(param.shape[1])
    raise ModelFileError("the network has no 2D or 3D convolution: it is not an image network")


def _output_channels(module: nn.Module, dims: int, in_channels: int) -> int:
    """Output channels, from one forward pass of a small zero input."""
    with torch.no_grad():
        out = module(torch.zeros((1, in_channels) + (64,) * dims))
    return int(out.shape[1])


def bare_unet(state: dict[str, torch.Tensor], path: Path) -> LoadedModel:
    """A state_dict of the built-in U-Net saved without metadata: infer its config."""
    try:
        first = state["encoder.0.conv1.weight"]
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("encoder."))
        inferred = {
            "dims": first.ndim - 2, "in_channels": int(first.shape[1]),
            "out_channels": int(state["head.weight"].shape[0]), "depth": depth,
            "base_channels": int(first.shape[0]),
        }  # fmt: skip
    except (KeyError, ValueError, IndexError):
        inferred = None
    try:
        if inferred is None:
            raise KeyError("not the built-in U-Net's keys")
        config = UNetConfig.from_dict(check_unet(inferred, path.name))
        module = build_within_budget(lambda: UNet(config), f"the U-Net {path.name} describes")
        module.load_state_dict(state)
    except BnAdaptError:
        raise
    except (KeyError, ValueError, RuntimeError):
        raise ModelFileError(
            f"{path.name} is a state_dict of an unknown architecture: name it, e.g. "
            "--architecture monai.networks.nets.UNet --architecture-args '{...}', or export "
            "the network as TorchScript"
        ) from None
    # No normalisation was recorded: per-input percentiles are the safest guess.
    return wrap_unet(
        module,
        NormalizationSpec(mode="percentile"),
        metadata={"name": path.stem, "provenance": "bare state_dict (normalisation guessed)"},
    )
