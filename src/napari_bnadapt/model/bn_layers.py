"""Finding normalisation layers and reading/writing BatchNorm running statistics.

Works on plain ``nn.Module`` models and on TorchScript modules alike: TorchScript
submodules are not instances of the Python classes, so layers are recognised by their
original class name and their buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Statistics of one BatchNorm layer: ``running_mean`` and ``running_var`` (unbiased).
BNStats = dict[str, torch.Tensor]

_NORM_KINDS = ("BatchNorm", "SyncBatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm")


@dataclass(frozen=True)
class NormLayer:
    """A normalisation layer found in a model."""

    name: str
    type_name: str
    channels: int
    adaptable: bool

    @property
    def is_batchnorm(self) -> bool:
        return "BatchNorm" in self.type_name


def type_name(module: nn.Module) -> str:
    """The class name of a module, also for TorchScript submodules."""
    original = getattr(module, "original_name", None)
    return str(original) if original else type(module).__name__


def _is_norm(module: nn.Module) -> bool:
    name = type_name(module)
    return any(kind in name for kind in _NORM_KINDS)


def _has_running_stats(module: nn.Module) -> bool:
    mean = getattr(module, "running_mean", None)
    var = getattr(module, "running_var", None)
    return isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)


def list_norm_layers(model: nn.Module) -> list[NormLayer]:
    """Every normalisation layer of ``model``, in definition order."""
    layers = []
    for name, module in model.named_modules():
        if not name or not _is_norm(module):
            continue
        kind = type_name(module)
        channels = _channels(module)
        adaptable = "BatchNorm" in kind and _has_running_stats(module)
        layers.append(NormLayer(name, kind, channels, adaptable))
    return layers


def batchnorm_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Name → module of every BatchNorm layer that keeps running statistics."""
    modules = dict(model.named_modules())
    return {layer.name: modules[layer.name] for layer in list_norm_layers(model) if layer.adaptable}


def read_bn_stats(model: nn.Module) -> dict[str, BNStats]:
    """A detached CPU copy of every BatchNorm layer's running mean and variance."""
    return {
        name: {
            "running_mean": module.running_mean.detach().to("cpu", copy=True),
            "running_var": module.running_var.detach().to("cpu", copy=True),
        }
        for name, module in batchnorm_modules(model).items()
    }


def write_bn_stats(model: nn.Module, stats: dict[str, BNStats]) -> None:
    """Copy ``stats`` into the model's BatchNorm buffers in place (dtype and device kept).

    Every name in ``stats`` must be a BatchNorm layer of ``model`` with matching channel
    count; this is checked for all layers before any buffer is written, so a mismatch
    leaves the model untouched.
    """
    modules = batchnorm_modules(model)
    for name, layer_stats in stats.items():
        if name not in modules:
            raise KeyError(f"the model has no BatchNorm layer named {name!r}")
        for key in ("running_mean", "running_var"):
            target = getattr(modules[name], key)
            if tuple(layer_stats[key].shape) != tuple(target.shape):
                raise ValueError(
                    f"{name}.{key}: shape {tuple(layer_stats[key].shape)} does not match "
                    f"the model's {tuple(target.shape)}"
                )
    with torch.no_grad():
        for name, layer_stats in stats.items():
            for key in ("running_mean", "running_var"):
                target = getattr(modules[name], key)
                target.copy_(layer_stats[key].to(device=target.device, dtype=target.dtype))


def restore_parameters(model: nn.Module, values: dict[str, torch.Tensor]) -> None:
    """Copy saved values back into the named parameters (and buffers) of ``model``."""
    state = dict(model.named_parameters())
    state.update(dict(model.named_buffers()))
    missing = sorted(set(values) - set(state))
    if missing:
        raise KeyError(f"the model has no parameters named {missing[:3]}")
    with torch.no_grad():
        for name, value in values.items():
            state[name].copy_(value.to(device=state[name].device, dtype=state[name].dtype))


def adaptability_verdict(layers: tuple[NormLayer, ...] | list[NormLayer]) -> str:
    """One sentence: can BatchNorm adaptation do anything for this model?"""
    adaptable = [layer for layer in layers if layer.adaptable]
    if adaptable:
        return f"{len(adaptable)} BatchNorm layers can be re-estimated on target data"
    if not layers:
        return (
            "nothing to adapt: no normalisation layers found (BatchNorm may have been fused "
            "into the convolutions at export); use a model exported before fusing"
        )
    kinds = sorted({layer.type_name for layer in layers})
    return (
        f"nothing to adapt: only {', '.join(kinds)}, which keep no running statistics "
        "(they already normalise each image on its own)"
    )


def _channels(module: nn.Module) -> int:
    for attr in ("num_features", "num_channels"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    for attr in ("running_mean", "weight"):
        value = getattr(module, attr, None)
        if isinstance(value, torch.Tensor) and value.ndim >= 1:
            return int(value.shape[0])
    return 0
