"""The receptive field is measured, not computed from layers; overlaps follow from it."""

import pytest
import torch
from torch import nn

from napari_bnadapt.speed.cache import cache_dir
from napari_bnadapt.speed.receptive import overlap_for, receptive_radius


def convs(count: int, kernel: tuple[int, int] = (3, 3)) -> nn.Module:
    torch.manual_seed(0)
    pad = tuple(k // 2 for k in kernel)
    layers = [nn.Conv2d(1, 1, kernel, padding=pad)] + [
        nn.Conv2d(1, 1, kernel, padding=pad) for _ in range(count - 1)
    ]
    return nn.Sequential(*layers).eval()


def test_radius_of_stacked_convolutions_per_axis():
    # Each 3-wide convolution reaches one pixel further; a 1×5 kernel two along x only.
    assert receptive_radius(convs(4), 2, 1, 1) == (4, 4)
    assert receptive_radius(convs(3, (1, 5)), 2, 1, 1) == (0, 6)


def test_a_global_network_has_no_finite_radius():
    class Global(nn.Module):
        def forward(self, x):
            return x - x.mean()

    assert receptive_radius(Global(), 2, 1, 1) == (None, None)


def test_radius_is_cached_in_the_private_cache(small_model_2d):
    first = receptive_radius(small_model_2d.module, 2, 1, small_model_2d.divisor)
    assert (cache_dir() / "calibration.json").exists()
    assert receptive_radius(small_model_2d.module, 2, 1, small_model_2d.divisor) == first
    assert all(r is not None and r > small_model_2d.divisor for r in first)


@pytest.mark.parametrize(
    ("radius", "tile", "divisor", "expected"),
    [(46, 512, 8, 24), (46, 32, 8, 16), (None, 512, 8, 128), (0, 512, 8, 0), (5, 64, 4, 4)],
)
def test_overlap_is_half_the_radius_rounded_up_to_the_divisor(radius, tile, divisor, expected):
    assert overlap_for(radius, tile, divisor) == expected
