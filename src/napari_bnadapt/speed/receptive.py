"""How far a network looks: its receptive field, measured, and the tile overlap it needs.

A tile's prediction near its edge differs from the whole image's because the network
sees padding there instead of the image. How far inwards that reaches is the network's
receptive-field radius: measured exactly by changing the probe input on one side of a
line and finding how far from the line the output changes (any network, TorchScript and
bioimage.io packages included; no layer arithmetic). The error falls off well before the
radius: on the real EM pair (docs/scale.md) the bundled U-Net's tile-edge error in the
middle of a ramp of half its radius is already below what moves its masks, so tiles
overlap by half the radius (rounded up to the network's down-sampling). A network whose
output changes everywhere (global pooling, attention) has no finite radius: its tiles
overlap by a quarter of the tile, as before.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..model.unet import run_padded
from .cache import recall, remember
from .calibration import architecture_key

#: Longest probe per axis: radii beyond half of it count as unbounded.
PROBE = 512
#: Overlap = this fraction of the receptive-field radius (docs/scale.md: measured).
RAMP = 0.5


def receptive_radius(
    module: nn.Module,
    dims: int,
    in_channels: int,
    divisor: int,
    min_size: int = 0,
) -> tuple[int | None, ...]:
    """The receptive-field radius (px) of ``module`` along each spatial axis; None along an
    axis where it exceeds the probe (:data:`PROBE` / 2). Cached per architecture; measured
    on the device the module is on."""
    key = f"radius:{architecture_key(module, dims)}"
    cached = recall(key)
    if cached is not None and len(cached.get("radius", ())) == dims:
        return tuple(cached["radius"])
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    radius = tuple(
        _radius_along(module, dims, in_channels, divisor, min_size, device, axis)
        for axis in range(dims)
    )
    remember(key, {"radius": list(radius)})
    return radius


def overlap_for(radius: int | None, tile: int, divisor: int) -> int:
    """The overlap of ``tile``-long tiles of a network with ``radius``: :data:`RAMP` of
    the radius rounded up to the divisor (a quarter of the tile for an unbounded radius),
    at most half the tile."""
    if tile <= 1:
        return 0
    wanted = round(0.25 * tile) if radius is None else radius * RAMP
    overlap = divisor * math.ceil(wanted / divisor) if wanted > 0 else 0
    return int(min(overlap, tile // 2))


def _radius_along(
    module: nn.Module,
    dims: int,
    in_channels: int,
    divisor: int,
    min_size: int,
    device: torch.device,
    axis: int,
) -> int | None:
    """Two inputs equal left of the middle of ``axis`` and different right of it: the
    outputs differ up to the radius left of the middle."""
    width = max(2 * divisor, min_size)
    width = divisor * math.ceil(width / divisor)
    length = divisor * math.ceil(max(PROBE, min_size) / divisor)
    shape = [1, in_channels] + [width] * dims
    shape[2 + axis] = length
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(shape, generator=generator)
    second = first.clone()
    middle = length // 2
    index = [slice(None)] * len(shape)
    index[2 + axis] = slice(middle, None)
    second[tuple(index)] = torch.randn(second[tuple(index)].shape, generator=generator)
    module.eval()
    with torch.inference_mode():
        a = run_padded(module, first.to(device), divisor, min_size).float().cpu()
        b = run_padded(module, second.to(device), divisor, min_size).float().cpu()
    change = (a - b).abs().amax(dim=tuple(d for d in range(a.dim()) if d != 2 + axis)).numpy()
    scale = float(change.max())
    if scale == 0:
        return 0
    changed = np.flatnonzero(change[:middle] > 1e-6 * scale)
    if not len(changed):
        return 0
    reach = middle - int(changed[0])
    return None if reach >= middle else reach
