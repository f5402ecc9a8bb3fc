import dask.array as da
import numpy as np
import pytest

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model.loaded import wrap_unet
from napari_bnadapt.model.unet import UNet, UNetConfig

CPU = {"device": "cpu"}


@pytest.fixture
def image(source_images):
    return source_images[0][0]  # 64×64 uint8


def test_tiled_equals_untiled_away_from_tile_borders(small_model_2d):
    rng = np.random.default_rng(0)
    big = rng.normal(100, 40, size=(160, 160)).astype(np.float32)
    untiled = predict(small_model_2d, big, PredictConfig(tile_shape=160, **CPU)).probabilities
    tiled = predict(
        small_model_2d, big, PredictConfig(tile_shape=64, overlap=0.25, **CPU)
    ).probabilities
    core = (slice(16, -16), slice(16, -16))
    # Differences come only from each tile's zero-padded borders, blended away.
    assert np.abs(tiled - untiled)[core].mean() < 2e-3
    assert np.abs(tiled - untiled)[core].max() < 0.05


def test_no_seams_at_tile_boundaries(small_model_2d):
    smooth = np.full((192, 192), 100.0, dtype=np.float32) + np.linspace(0, 30, 192)[None]
    probs = predict(
        small_model_2d, smooth, PredictConfig(tile_shape=64, overlap=0.25, **CPU)
    ).probabilities
    # Neighbouring-pixel jumps on the tile grid are no larger than elsewhere in the interior.
    jumps = np.abs(np.diff(probs, axis=1))[8:-8, 8:-8]
    boundary_cols = [c - 8 for c in (63, 111, 127, 159) if 8 <= c < 184]
    interior = np.delete(jumps, boundary_cols, axis=1)
    assert jumps[:, boundary_cols].max() <= interior.max() * 1.5 + 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_any_numeric_dtype_gives_the_same_result(small_model_2d, image, dtype):
    reference = predict(small_model_2d, image.astype(np.float32), PredictConfig(**CPU))
    result = predict(small_model_2d, image.astype(dtype), PredictConfig(**CPU))
    np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=1e-5)
    assert result.mask.dtype == np.uint8 and result.mask.shape == image.shape


def test_boolean_input_is_accepted(small_model_2d, image):
    result = predict(small_model_2d, image > 128, PredictConfig(**CPU))
    assert result.mask.shape == image.shape


def test_dask_input_equals_numpy_input(small_model_2d, image):
    volume = np.stack([image, image[::-1], image[:, ::-1]])
    lazy = da.from_array(volume, chunks=(1, 32, 32))
    eager = predict(small_model_2d, volume, PredictConfig(tile_shape=48, **CPU))
    dask_result = predict(small_model_2d, lazy, PredictConfig(tile_shape=48, **CPU))
    np.testing.assert_allclose(
        np.asarray(dask_result.probabilities), eager.probabilities, atol=1e-6
    )


def test_2d_model_on_a_volume_is_slice_wise(small_model_2d, image):
    volume = np.stack([image, image[::-1]])
    stacked = predict(small_model_2d, volume, PredictConfig(**CPU)).probabilities
    single = predict(small_model_2d, image[::-1], PredictConfig(**CPU)).probabilities
    np.testing.assert_allclose(stacked[1], single, atol=1e-5)


def test_slice_axis_cuts_another_plane(small_model_2d, image):
    volume = np.stack([image, image[::-1], image.T])
    along_y = predict(small_model_2d, volume, PredictConfig(slice_axis=1, **CPU)).probabilities
    plane = predict(small_model_2d, volume[:, 10, :], PredictConfig(**CPU)).probabilities
    np.testing.assert_allclose(along_y[:, 10, :], plane, atol=1e-5)


def test_3d_model_on_a_volume(small_model_3d):
    volume = np.random.default_rng(0).normal(100, 40, size=(20, 40, 36)).astype(np.float32)
    result = predict(small_model_3d, volume, PredictConfig(tile_shape=16, **CPU))
    assert result.probabilities.shape == volume.shape
    assert result.probabilities.min() >= 0.0 and result.probabilities.max() <= 1.0


def test_multiclass_model_gives_argmax_labels(image):
    unet = UNet(UNetConfig(dims=2, out_channels=3, depth=2, base_channels=4)).eval()
    model = wrap_unet(unet, NormalizationSpec(mode="percentile"))
    result = predict(model, image, PredictConfig(**CPU))
    assert result.probabilities.shape == (3, *image.shape)
    np.testing.assert_allclose(result.probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.labels, result.probabilities.argmax(axis=0))


def test_percentile_normalisation_is_computed_over_the_whole_input(image):
    unet = UNet(UNetConfig(dims=2, depth=2, base_channels=4)).eval()
    model = wrap_unet(unet, NormalizationSpec(mode="percentile"))
    scaled = image.astype(np.float32) * 3.0 + 7.0  # an affine change is normalised away
    a = predict(model, image, PredictConfig(tile_shape=32, **CPU)).probabilities
    b = predict(model, scaled, PredictConfig(tile_shape=32, **CPU)).probabilities
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((0, 10)), "empty"),
        (np.full((16, 16), np.nan, dtype=np.float32), "NaN"),
        (np.array([[1 + 1j]]), "dtype"),
        (np.zeros((2, 3, 16, 16, 4)), "spatial axes"),
    ],
)
def test_bad_input_gives_a_clear_error(small_model_2d, data, message):
    with pytest.raises(InputDataError, match=message):
        predict(small_model_2d, data, PredictConfig(**CPU))


def test_inf_in_a_volume_is_reported(small_model_2d, image):
    volume = np.stack([image, image]).astype(np.float32)
    volume[1, 5, 5] = np.inf
    with pytest.raises(InputDataError, match="infinite"):
        predict(small_model_2d, volume, PredictConfig(**CPU))


def test_channel_mismatch_is_reported(image):
    unet = UNet(UNetConfig(dims=2, in_channels=2, depth=2, base_channels=4)).eval()
    model = wrap_unet(unet, NormalizationSpec(mode="none"))
    with pytest.raises(InputDataError, match="2 channels"):
        predict(model, image, PredictConfig(**CPU))
    result = predict(model, np.stack([image, image]), PredictConfig(**CPU))
    assert result.mask.shape == image.shape


def test_3d_model_refuses_a_2d_image(small_model_3d, image):
    with pytest.raises(InputDataError, match="3D volume"):
        predict(small_model_3d, image, PredictConfig(**CPU))


def test_unknown_device_is_reported(small_model_2d, image):
    from napari_bnadapt.errors import BnAdaptError

    with pytest.raises(BnAdaptError, match=r"not available|unknown"):
        predict(small_model_2d, image, PredictConfig(device="cuda:7"))
