"""Resampling to the model's voxel size and back: factors, shapes and registration."""

from typing import ClassVar

import numpy as np
import pytest

from napari_bnadapt.arrays.resampling import (
    parse_voxel_size,
    resample,
    resample_to,
    zoom_factors,
)
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.inference import PredictConfig, predict


def test_zoom_factors_in_the_plane_for_2d_models_and_every_axis_for_3d():
    assert zoom_factors((50, 10, 10), (4.6, 4.6), (4, 100, 100), 2) == pytest.approx(
        (1.0, 10 / 4.6, 10 / 4.6)
    )
    assert zoom_factors((10, 10), (50, 5, 5), (100, 100), 2) == (2.0, 2.0)
    assert zoom_factors((40, 10, 10), (10, 10, 10), (8, 50, 50), 3) == (4.0, 1.0, 1.0)
    # A channel axis in front keeps its factor; a 2D model slicing across x resamples z, y.
    assert zoom_factors((20, 10, 5), (5, 5), (2, 8, 8, 8), 2, slice_axis=2) == (1, 4, 2, 1)


def test_no_resampling_when_unknown_or_close():
    assert zoom_factors(None, (5, 5), (10, 10), 2) is None
    assert zoom_factors((5, 5), None, (10, 10), 2) is None
    assert zoom_factors((5.1, 5.1), (5, 5), (10, 10), 2) is None


def test_bad_voxel_sizes_are_clear_errors():
    with pytest.raises(InputDataError, match="positive"):
        zoom_factors((0, 5), (5, 5), (10, 10), 2)
    with pytest.raises(InputDataError, match="does not fit"):
        zoom_factors((5, 5, 5, 5), (5, 5), (10, 10), 2)


def test_typed_voxel_sizes():
    assert parse_voxel_size("50,4.6,4.6", 3) == (50.0, 4.6, 4.6)
    assert parse_voxel_size("50x4.6×4.6", 3) == (50.0, 4.6, 4.6)
    assert parse_voxel_size(" 10 ", 2) == (10.0, 10.0)
    assert parse_voxel_size("10", 4) == (10.0, 10.0, 10.0)  # spatial axes only
    assert parse_voxel_size("  ", 3) is None and parse_voxel_size(None, 3) is None
    for bad, words in (("ten", "give numbers"), ("0,5", "between"), ("nan", "between"),
                       ("inf,1", "between"), (",", "between"), ("1,1e308,1e308", "between"),
                       ("1e-300", "between"), ("-5", "between")):  # fmt: skip
        with pytest.raises(InputDataError, match=words) as error:
            parse_voxel_size(bad, 3, "--voxel-size")
        assert str(error.value).startswith(f"--voxel-size {bad!r}")


def test_round_trip_keeps_shape_and_registration():
    volume = np.zeros((5, 37, 53), np.float32)
    volume[:, 10:14, 30:36] = 1.0
    up = resample(volume, (1, 2.17, 2.17))
    back = resample_to(up, volume.shape)
    assert back.shape == volume.shape
    centre = lambda a: np.array(np.nonzero(a[2] > 0.5)).mean(axis=1)  # noqa: E731
    assert np.allclose(centre(back), centre(volume), atol=0.5)
    assert ((back > 0.5) == (volume > 0.5)).mean() > 0.99


def test_prediction_at_another_voxel_size_comes_back_on_the_input_grid(small_model_2d):
    small_model_2d.metadata["voxel_size"] = [4.0, 4.0]
    image = np.random.default_rng(0).integers(0, 255, (2, 30, 45)).astype(np.uint8)
    config = PredictConfig(device="cpu")
    rescaled = predict(small_model_2d, image, config, voxel_size=(50.0, 8.0, 8.0))
    plain = predict(small_model_2d, image, config)
    assert rescaled.mask.shape == plain.mask.shape == image.shape
    assert not np.array_equal(rescaled.probabilities, plain.probabilities)
    same_scale = predict(small_model_2d, image, config, voxel_size=(50.0, 4.0, 4.0))
    assert np.array_equal(same_scale.probabilities, plain.probabilities)


def test_linear_resampling_is_scipys_and_any_region_is_the_whole_arrays():
    from scipy import ndimage

    from napari_bnadapt.arrays.resampling import resample_region

    data = np.random.default_rng(0).random((5, 37, 53)).astype(np.float32)
    for factors in [(1, 2.17, 2.17), (1, 0.46, 0.46), (2.5, 1, 0.7), (0.3, 0.5, 1.9)]:
        whole = resample(data, factors)
        scipy = ndimage.zoom(data, factors, order=1, mode="nearest", grid_mode=True)
        assert whole.shape == scipy.shape and np.abs(whole - scipy).max() < 1e-6
        pieces = np.full(whole.shape, np.nan, np.float32)
        steps = (3, 7, 11)  # regions that divide no axis
        for z in range(0, whole.shape[0], steps[0]):
            for y in range(0, whole.shape[1], steps[1]):
                for x in range(0, whole.shape[2], steps[2]):
                    region = tuple(
                        slice(s, min(s + k, n)) for s, k, n in zip((z, y, x), steps, whole.shape)
                    )
                    pieces[region] = resample_region(
                        lambda box: data[box], data.shape, whole.shape, region
                    )
        np.testing.assert_array_equal(pieces, whole)


class Recording:
    """An array that notes every region read from it (a module-level class, so that a
    graph holding it refers to this one, not a copy)."""

    reads: ClassVar[list] = []

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim

    def __getitem__(self, index):
        Recording.reads.append(index)
        return self.data[index]


def test_lazy_resampling_reads_only_what_a_region_needs():
    import dask.array as da

    from napari_bnadapt.arrays.resampling import resample_lazily

    data = np.random.default_rng(1).integers(0, 255, (6, 400, 360)).astype(np.uint8)
    source = da.from_array(Recording(data), chunks=(1, 50, 50))
    lazy = resample_lazily(source, (1, 0.5, 0.5), chunk=32)
    assert lazy.shape == (6, 200, 180) and lazy.dtype == np.float32
    Recording.reads.clear()
    patch = np.asarray(lazy[2, 10:30, 40:60])
    np.testing.assert_array_equal(patch, resample(data, (1, 0.5, 0.5))[2, 10:30, 40:60])
    shapes = [data[r].size for r in Recording.reads]
    assert 0 < sum(shapes) < data[0].size  # a corner of one slice, not the volume
