"""The built-in U-Net: 2D or 3D, conv (no bias) → BatchNorm → ReLU blocks.

The layer names are chosen so that BatchNorm layers read like the diagram
(``encoder.0.bn1``, ``bottleneck.bn2``, ``decoder.1.bn1``): adaptation selects layers by
these names, and the diagnostics show them to the user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of the built-in U-Net.

    Parameters
    ----------
    dims
        2 for images (and slice-wise volumes), 3 for volumes.
    in_channels, out_channels
        Input channels; output channels (1 = binary foreground, >1 = classes, softmax).
    depth
        Number of 2× down-samplings; inputs are padded to a multiple of ``2**depth``.
    base_channels
        Width of the first level; each level doubles it.
    """

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 3
    base_channels: int = 16

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {self.dims}")
        for name in ("in_channels", "out_channels", "depth", "base_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def divisor(self) -> int:
        """Spatial sizes the network handles without internal padding."""
        return 2**self.depth

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelFileError(
                f"the model file's architecture has unknown keys {sorted(unknown)}; "
                "it was written by a newer napari-bnadapt: upgrade the package"
            )
        return cls(**{k: int(v) for k, v in data.items()})


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _batchnorm(dims: int) -> type[nn.Module]:
    return nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d


class ConvBlock(nn.Module):
    """Two conv (no bias, BN supplies the shift) → BatchNorm → ReLU steps."""

    def __init__(self, dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        conv, bn = _conv(dims), _batchnorm(dims)
        self.conv1 = conv(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = bn(out_channels)
        self.conv2 = conv(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with BatchNorm, for 2D or 3D data.

    Input ``(N, C, [D,] H, W)`` of any spatial size; sizes that are not a multiple of
    ``2**depth`` are padded by edge replication and the output is cropped back.
    Output: raw logits ``(N, out_channels, [D,] H, W)``.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or UNetConfig()
        cfg = self.config
        widths = [cfg.base_channels * 2**level for level in range(cfg.depth + 1)]
        self.encoder = nn.ModuleList()
        previous = cfg.in_channels
        for width in widths[:-1]:
            self.encoder.append(ConvBlock(cfg.dims, previous, width))
            previous = width
        self.pool = nn.MaxPool2d(2) if cfg.dims == 2 else nn.MaxPool3d(2)
        self.bottleneck = ConvBlock(cfg.dims, widths[-2], widths[-1])
        up = nn.ConvTranspose2d if cfg.dims == 2 else nn.ConvTranspose3d
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(cfg.depth)):
            self.upsamplers.append(up(widths[level + 1], widths[level], kernel_size=2, stride=2))
            self.decoder.append(ConvBlock(cfg.dims, 2 * widths[level], widths[level]))
        self.head = _conv(cfg.dims)(widths[0], cfg.out_channels, kernel_size=1)
        # A plain int, so that the forward pass compiles with torch.jit.script (export).
        self.divisor: int = cfg.divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        x = pad_to_multiple(x, self.divisor)
        skips: list[torch.Tensor] = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for level, (upsample, block) in enumerate(zip(self.upsamplers, self.decoder)):
            skip = skips[len(skips) - 1 - level]
            x = block(torch.cat([skip, upsample(x)], dim=1))
        logits = self.head(x)
        return crop_to(logits, spatial)


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 0) -> torch.Tensor:
    """Pad the spatial axes of ``x`` at their far end to a multiple of ``multiple`` (and to
    at least ``minimum``, a multiple too, for networks that declare a smallest input)."""
    # F.pad lists the last axis first; written with indices so that it compiles to TorchScript.
    pads: list[int] = []
    needed = 0
    for axis in range(x.dim() - 1, 1, -1):
        size = x.shape[axis]
        extra = max((-size) % multiple, minimum - size + (-minimum) % multiple)
        pads += [0, extra]
        needed += extra
    if needed == 0:
        return x
    return F.pad(x, pads, mode="replicate")


def run_padded(module: nn.Module, x: torch.Tensor, divisor: int, minimum: int = 0) -> torch.Tensor:
    """``module`` on ``x`` padded to what the network takes (a multiple of ``divisor``, at
    least ``minimum``), its output cropped back to ``x``'s spatial size: every forward pass
    of the engine (prediction, AdaBN, TENT, self-training, latent capture) goes through it."""
    return crop_to(module(pad_to_multiple(x, divisor, minimum)), list(x.shape[2:]))


def to_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Foreground probability (sigmoid) of one output channel, class probabilities
    (softmax over channels) of several: how the engine reads every network's logits."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def crop_to(x: torch.Tensor, spatial: list[int]) -> torch.Tensor:
    """Crop the spatial axes of ``x`` back to ``spatial`` (undo :func:`pad_to_multiple`)."""
    for axis, size in enumerate(spatial):
        x = x.narrow(axis + 2, 0, size)
    return x


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and affine terms), buffers excluded."""
    return sum(p.numel() for p in model.parameters())
