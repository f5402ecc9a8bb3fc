"""Shared fixtures: tiny synthetic data and small models, all made on the fly on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.model import LoadedModel
from napari_bnadapt.model.loaded import wrap_unet
from napari_bnadapt.model.unet import UNet, UNetConfig
from napari_bnadapt.synthetic import SOURCE, make_dataset


def randomize_bn(module: torch.nn.Module, seed: int = 0) -> None:
    """Give BN layers non-trivial statistics and affine terms (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


@pytest.fixture
def small_model_2d() -> LoadedModel:
    torch.manual_seed(0)
    unet = UNet(UNetConfig(dims=2, depth=2, base_channels=4)).eval()
    randomize_bn(unet)
    return wrap_unet(
        unet, NormalizationSpec(mode="fixed", mean=100.0, std=40.0), {"name": "small2d"}
    )


@pytest.fixture
def small_model_3d() -> LoadedModel:
    torch.manual_seed(1)
    unet = UNet(UNetConfig(dims=3, depth=2, base_channels=4)).eval()
    randomize_bn(unet, seed=1)
    return wrap_unet(
        unet, NormalizationSpec(mode="fixed", mean=100.0, std=40.0), {"name": "small3d"}
    )


@pytest.fixture
def source_images() -> tuple[np.ndarray, np.ndarray]:
    return make_dataset(6, (64, 64), SOURCE, seed=3)
