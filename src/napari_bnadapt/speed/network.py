"""A copy of a network prepared for inference: BatchNorm folded into the convolutions
before it, channels-last memory, on the device. The user's model is never changed."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..model.unet import ConvBlock
from .precision import memory_format


class FoldedConvBlock(nn.Module):
    """:class:`~napari_bnadapt.model.unet.ConvBlock` in eval mode with each BatchNorm
    folded into the convolution before it (one convolution with a bias instead of a
    convolution and a normalisation pass over its output), ReLU in place."""

    def __init__(self, block: ConvBlock) -> None:
        super().__init__()
        self.conv1 = fold_batchnorm(block.conv1, block.bn1)
        self.conv2 = fold_batchnorm(block.conv2, block.bn2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x), inplace=True)
        return F.relu(self.conv2(x), inplace=True)


def fold_batchnorm(conv: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """``conv`` followed by ``bn`` in eval mode as one convolution (a new module):
    ``W·γ/√(σ²+ε)`` and bias ``β + (b - μ)·γ/√(σ²+ε)``, the running statistics (source
    or adapted) frozen in."""
    folded = copy.deepcopy(conv)
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shape = (-1,) + (1,) * (conv.weight.dim() - 1)
        folded.weight = nn.Parameter(conv.weight * scale.reshape(shape), requires_grad=False)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        folded.bias = nn.Parameter(bn.bias + (bias - bn.running_mean) * scale, requires_grad=False)
    return folded


def foldable(module: nn.Module) -> bool:
    """Whether :func:`inference_module` can fold BatchNorm in ``module`` (the built-in U-Net
    and anything built from its blocks, with affine BatchNorm and running statistics)."""
    return any(
        isinstance(m, ConvBlock)
        and all(b.affine and b.running_var is not None for b in (m.bn1, m.bn2))
        for m in module.modules()
    )


def inference_module(
    module: nn.Module, device: torch.device, dims: int, channels_last: bool, fold: bool
) -> nn.Module:
    """``module`` in eval mode on ``device``; a copy with BatchNorm folded (``fold``, where
    :func:`foldable`) and in channels-last memory (``channels_last``), so that the
    caller's module keeps its own layers, statistics and memory format."""
    if not (fold and foldable(module)) and not channels_last:
        return module.to(device).eval()
    prepared = copy.deepcopy(module).eval()
    if fold:
        _fold_blocks(prepared)
    prepared = prepared.to(device)
    if channels_last:
        prepared = prepared.to(memory_format=memory_format(dims))
    return prepared


def _fold_blocks(module: nn.Module) -> None:
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ConvBlock) and all(
                b.affine and b.running_var is not None for b in (child.bn1, child.bn2)
            ):
                setattr(parent, name, FoldedConvBlock(child))
