import pytest
import torch

from napari_bnadapt.model.bn_layers import list_norm_layers
from napari_bnadapt.model.unet import UNet, UNetConfig, count_parameters


@pytest.mark.parametrize(
    ("dims", "shape"),
    [(2, (64, 64)), (2, (37, 50)), (2, (1, 1)), (3, (16, 16, 16)), (3, (9, 13, 7))],
)
def test_output_matches_input_spatial_shape(dims, shape):
    model = UNet(
        UNetConfig(dims=dims, in_channels=2, out_channels=3, depth=2, base_channels=4)
    ).eval()
    x = torch.randn(2, 2, *shape)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, *shape)


def test_blocks_are_conv_without_bias_then_batchnorm():
    model = UNet(UNetConfig(dims=2, depth=3, base_channels=8))
    block = model.encoder[0]
    assert block.conv1.bias is None and block.conv2.bias is None
    assert isinstance(block.bn1, torch.nn.BatchNorm2d)
    layers = list_norm_layers(model)
    # two BN per block: depth encoder blocks + bottleneck + depth decoder blocks
    assert len(layers) == 2 * (3 + 1 + 3)
    assert layers[0].name == "encoder.0.bn1" and layers[-1].name == "decoder.2.bn2"
    assert all(layer.adaptable for layer in layers)


def test_3d_uses_batchnorm3d_and_widths_double():
    model = UNet(UNetConfig(dims=3, depth=2, base_channels=4))
    assert isinstance(model.bottleneck.bn1, torch.nn.BatchNorm3d)
    assert model.bottleneck.conv1.out_channels == 16
    assert count_parameters(model) > 0


@pytest.mark.parametrize("bad", [{"dims": 4}, {"depth": 0}, {"base_channels": 0}])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        UNetConfig(**bad)
