"""A bioimage.io tensor description in this package's terms: axes, normalisation, activation.

The engine feeds networks ``(N, C, [Z,] Y, X)`` float32 tensors normalised by a
:class:`NormalizationSpec` and turns logits into probabilities itself (sigmoid for one
channel, softmax for several). A package may order its axes otherwise, leave out the
batch axis, or output probabilities: :class:`PackageNetwork` adapts such a network to the
engine's convention, and compiles with TorchScript so that an adapted model exports again.
Processing steps the engine cannot reproduce exactly are refused with their name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..arrays.normalization import NormalizationSpec
from ..errors import ModelFileError

#: Units of bioimage.io space axes, in nm.
UNIT_NM = {"angstrom": 0.1, "nanometer": 1.0, "micrometer": 1e3, "millimeter": 1e6}
#: Preprocessing steps that only cast: nothing to reproduce.
CASTS = ("ensure_dtype",)


@dataclass(frozen=True)
class TensorLayout:
    """Axis letters of a package's tensor (``b``, ``c``, ``z``, ``y``, ``x``) and sizes."""

    axes: str
    channels: int
    min_size: int = 16
    step: int = 16
    halo: int = 0

    @property
    def spatial(self) -> str:
        return "".join(a for a in self.axes if a in "zyx")

    @property
    def canonical(self) -> str:
        return "bc" + self.spatial


def input_layout(tensor: Any) -> TensorLayout:
    """Axes, channel count and tiling hints of a v0.5 input tensor description."""
    letters, channels, sizes = _axes(tensor, "input")
    mins = [s.min for s in sizes if hasattr(s, "min")]
    steps = [s.step for s in sizes if hasattr(s, "step")]
    fixed = [int(s) for s in sizes if isinstance(s, int)]
    # A fixed spatial size (no step) is a tile size the network needs exactly.
    step = max(steps + fixed) if steps or fixed else 1
    min_size = max(mins + fixed) if mins or fixed else step
    return TensorLayout(letters, channels, int(min_size), int(step))


def output_layout(tensor: Any, source: str) -> TensorLayout:
    """Axes and halo of a v0.5 output tensor: its spatial size must follow the input's."""
    letters, channels, sizes = _axes(tensor, "output")
    for axis, size in zip(_spatial_axes(tensor), sizes):
        offset = getattr(size, "offset", None)
        if offset is None or offset != 0 or str(size.tensor_id) != source:
            raise ModelFileError(
                f"the package's output axis {axis.id} is not the size of its input ({size}): "
                "napari-bnadapt segments with networks whose output matches their input"
            )
    halos = [int(getattr(a, "halo", 0) or 0) for a in _spatial_axes(tensor)]
    return TensorLayout(letters, channels, halo=max(halos, default=0))


def voxel_size_nm(tensor: Any) -> tuple[float, ...] | None:
    """Spatial scale of the input axes in nm, when every spatial axis has a length unit."""
    sizes = []
    for axis in _spatial_axes(tensor):
        unit = str(getattr(axis, "unit", None) or "")
        if unit not in UNIT_NM:
            return None
        sizes.append(float(axis.scale) * UNIT_NM[unit])
    return tuple(sizes)


def normalization_of(steps: list[Any]) -> NormalizationSpec:
    """The package's input preprocessing as one normalisation the engine applies."""
    kept = [s for s in steps if s.id not in CASTS]
    if not kept:
        return NormalizationSpec(mode="none")
    if len(kept) > 1:
        raise ModelFileError(
            "the package's preprocessing chains "
            f"{' → '.join(s.id for s in kept)}: napari-bnadapt reproduces one normalisation "
            "(scale_range, zero_mean_unit_variance, fixed_zero_mean_unit_variance or "
            "scale_linear); re-export the package with one"
        )
    step = kept[0]
    kwargs = step.kwargs
    if step.id == "scale_range":
        _require_scalar(step, getattr(kwargs, "reference_tensor", None) is None)
        return NormalizationSpec(
            mode="percentile",
            low_percentile=float(kwargs.min_percentile),
            high_percentile=float(kwargs.max_percentile),
        )
    if step.id == "zero_mean_unit_variance":
        return NormalizationSpec(mode="zscore")
    if step.id == "fixed_zero_mean_unit_variance":
        mean, std = getattr(kwargs, "mean", None), getattr(kwargs, "std", None)
        _require_scalar(step, isinstance(mean, int | float) and isinstance(std, int | float))
        return NormalizationSpec(
            mode="fixed", mean=float(mean), std=float(std) + getattr(kwargs, "eps", 1e-6)
        )
    if step.id == "scale_linear":
        gain, offset = getattr(kwargs, "gain", 1.0), getattr(kwargs, "offset", 0.0)
        _require_scalar(step, isinstance(gain, int | float) and isinstance(offset, int | float))
        if gain <= 0:
            raise ModelFileError("the package's scale_linear has a gain ≤ 0: not supported")
        # x * gain + offset == (x - mean) / std with these two:
        return NormalizationSpec(mode="fixed", mean=-float(offset) / gain, std=1.0 / gain)
    raise ModelFileError(
        f"the package's preprocessing step {step.id!r} is not supported by napari-bnadapt "
        "(supported: scale_range, zero_mean_unit_variance, fixed_zero_mean_unit_variance, "
        "scale_linear, ensure_dtype)"
    )


def activation_of(steps: list[Any], channels: int) -> tuple[str, float | None]:
    """The output activation (``'logits'``: the engine applies it; ``'probabilities'``:
    the network already did) and a binarisation threshold when the package gives one."""
    kept = [s for s in steps if s.id not in CASTS]
    threshold = None
    if kept and kept[-1].id == "binarize":
        value = getattr(kept[-1].kwargs, "threshold", None)
        threshold = float(value) if isinstance(value, int | float) else None
        kept = kept[:-1]
    if not kept:
        return "probabilities", threshold
    if len(kept) == 1 and kept[0].id == "sigmoid" and channels == 1:
        return "logits", threshold
    if len(kept) == 1 and kept[0].id == "softmax" and channels > 1:
        return "logits", threshold
    raise ModelFileError(
        f"the package's postprocessing ({' → '.join(s.id for s in kept)}) on {channels} "
        "channel(s) is not a segmentation napari-bnadapt reproduces: it needs sigmoid on one "
        "channel, softmax over several, or probabilities from the network"
    )


class PackageNetwork(nn.Module):
    """A package's network seen in the engine's convention ``(N, C, [Z,] Y, X)`` → logits.

    ``into``/``back`` permute the canonical axes into the network's order and its output
    back; without a batch axis each sample runs alone; probabilities become logits, so the
    engine's sigmoid/softmax gives them back unchanged.
    """

    def __init__(
        self, net: nn.Module, into: list[int], back: list[int], batched: bool, probabilities: bool
    ) -> None:
        super().__init__()
        self.net = net
        self.into = into
        self.back = back
        self.batched = batched
        self.probabilities = probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batched:
            out = self.net(x.permute(self.into)).permute(self.back)
        else:
            outs = [self.net(x[i].permute(self.into)).permute(self.back) for i in range(x.shape[0])]
            out = torch.stack(outs)
        if self.probabilities:
            p = out.clamp(1e-6, 1.0 - 1e-6)
            out = torch.log(p / (1.0 - p)) if out.shape[1] == 1 else torch.log(p)
        return out


def engine_network(
    net: nn.Module, source: TensorLayout, target: TensorLayout, activation: str
) -> nn.Module:
    """``net`` as the engine calls it: itself when the package already follows the engine's
    convention, else wrapped in a :class:`PackageNetwork`."""
    batched = "b" in source.axes
    probabilities = activation == "probabilities"
    if source.axes == source.canonical and target.axes == target.canonical and not probabilities:
        return net
    if ("b" in target.axes) != batched:
        raise ModelFileError("the package's input and output disagree on a batch axis")
    # Without a batch axis each sample (C, spatial) is permuted on its own.
    canonical_in = source.canonical if batched else source.canonical[1:]
    into = [canonical_in.index(a) for a in source.axes]
    canonical_out = target.canonical if batched else target.canonical[1:]
    back = [target.axes.index(a) for a in canonical_out]
    return PackageNetwork(net, into, back, batched, probabilities).eval()


def _axes(tensor: Any, kind: str) -> tuple[str, int, list[Any]]:
    letters, channels, sizes = "", 1, []
    for axis in tensor.axes:
        kind_name = axis.type
        if kind_name == "batch":
            letters += "b"
        elif kind_name == "channel":
            letters += "c"
            channels = len(axis.channel_names)
        elif kind_name == "space" and str(axis.id) in ("z", "y", "x"):
            letters += str(axis.id)
            sizes.append(axis.size)
        else:
            raise ModelFileError(
                f"the package's {kind} tensor {tensor.id} has a {kind_name} axis "
                f"{axis.id!s}: napari-bnadapt handles batch, channel and z/y/x space axes only"
            )
    if "c" not in letters:
        raise ModelFileError(f"the package's {kind} tensor {tensor.id} has no channel axis")
    spatial = sum(a in "zyx" for a in letters)
    if spatial not in (2, 3) or "y" not in letters or "x" not in letters:
        raise ModelFileError(
            f"the package's {kind} tensor {tensor.id} has axes {letters!r}: napari-bnadapt "
            "segments 2D (y, x) or 3D (z, y, x) images"
        )
    return letters, channels, sizes


def _spatial_axes(tensor: Any) -> list[Any]:
    return [a for a in tensor.axes if a.type == "space"]


def _require_scalar(step: Any, ok: bool) -> None:
    if not ok:
        raise ModelFileError(
            f"the package's {step.id} uses per-channel values or a reference tensor: "
            "napari-bnadapt reproduces one value for all channels"
        )
