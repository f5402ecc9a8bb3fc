"""Where the network is unsure: the maps' shapes and ranges, and the next region to paint."""

import numpy as np
import pytest

from napari_bnadapt.diagnostics.uncertainty import (
    entropy_map,
    next_uncertain_region,
    uncertainty_map,
)
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.inference import PredictConfig

CPU = PredictConfig(device="cpu")


@pytest.mark.parametrize("method", ["entropy", "tta"])
def test_maps_lie_on_the_input_grid_between_zero_and_one(small_model_2d, method):
    image = np.random.default_rng(0).normal(100, 40, (2, 40, 48)).astype(np.float32)
    found = uncertainty_map(small_model_2d, image, method, CPU)
    assert found.shape == image.shape and found.dtype == np.float32
    assert found.min() >= 0.0 and found.max() <= 1.0 and found.max() > 0


def test_entropy_is_highest_where_the_network_hesitates():
    p = np.array([[0.5, 0.99], [0.01, 0.7]])
    found = entropy_map(p)
    assert found[0, 0] == pytest.approx(1.0) and found[0, 1] < 0.1 and found[1, 0] < 0.1
    classes = np.stack([np.full((2, 2), 1 / 3)] * 3)
    assert entropy_map(classes, multiclass=True) == pytest.approx(np.ones((2, 2)))


def test_regions_come_most_uncertain_first_and_never_twice():
    u = np.zeros((2, 100, 100), np.float32)
    u[1, 10:20, 70:80] = 1.0
    u[0, 50:60, 50:60] = 0.5
    first = next_uncertain_region(u, 16)
    assert first[0] == slice(1, 2) and first[1].start <= 10 and first[2].stop >= 80
    second = next_uncertain_region(u, 16, [first])
    assert second[0] == slice(0, 1) and second[1].start <= 50 <= second[1].stop
    assert next_uncertain_region(u, 16, [(slice(None),) * 3]) is None
    with pytest.raises(InputDataError):
        next_uncertain_region(u, (4, 4))
    with pytest.raises(InputDataError, match="method"):
        uncertainty_map(None, u, "variance")


def test_regions_near_painted_strokes_are_not_proposed_again():
    u = np.zeros((2, 100, 100), np.float32)
    u[1, 10:20, 70:80] = 1.0
    u[0, 50:60, 50:60] = 0.5
    painted = np.zeros(u.shape, np.uint8)
    painted[1, 14, 72:78] = 2  # a stroke across the most uncertain spot
    found = next_uncertain_region(u, 16, painted=painted)
    assert found[0] == slice(0, 1) and found[1].start <= 50 <= found[1].stop
    # Strokes on another slice leave this one's regions free.
    painted[:] = 0
    painted[0, 55, 55] = 1
    assert next_uncertain_region(u, 16, painted=painted)[0] == slice(1, 2)
    with pytest.raises(InputDataError, match="paint them on the image"):
        next_uncertain_region(u, 16, painted=painted[:, :50])
