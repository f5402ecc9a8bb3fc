"""Latent capture: streaming histograms, exact moments, frames, bounded memory."""

import numpy as np
import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.diagnostics.capture import capture_latents, histogram_channels, latent_layers
from napari_bnadapt.diagnostics.latents import (
    BOTTLENECK,
    LatentConfig,
    gaussian_reference,
    gaussian_reference_moments,
)
from napari_bnadapt.diagnostics.shift import compare_capture
from napari_bnadapt.errors import NotAdaptableError
from napari_bnadapt.model import LoadedModel
from napari_bnadapt.synthetic import SHIFTS, make_volume

CPU = LatentConfig(device="cpu", patches=16, patch_size=32, batch_size=4)


@pytest.fixture
def volume() -> np.ndarray:
    return make_volume((4, 64, 64), SHIFTS["brightness"], seed=5)[0]


def test_streamed_histograms_equal_one_shot_histograms():
    z = torch.randn(50, 3, 10, 10) * 3
    parts = sum(histogram_channels(chunk, 40, 8.0) for chunk in torch.split(z, 7))
    edges = np.linspace(-8, 8, 41)
    for row in range(3):
        values = z[:, row].numpy().ravel()
        inner = np.histogram(values, edges)[0]
        # np.histogram closes the last bin; values exactly at +8 go to overflow here.
        expected = np.concatenate([[np.sum(values < -8)], inner, [np.sum(values > 8)]])
        np.testing.assert_array_equal(parts[row].numpy(), expected)


def test_capture_counts_every_voxel_and_keeps_exact_moments(small_model_2d, volume):
    capture = capture_latents(small_model_2d, volume, CPU)
    assert list(capture.layers) == latent_layers(small_model_2d)
    assert capture.layers[BOTTLENECK].kind == "bottleneck"
    first = capture.layers["encoder.0.bn1"]
    assert first.counts.shape == (4, CPU.bins + 2)
    # 16 patches of 32² (no padding needed): every voxel of every channel is counted once.
    np.testing.assert_array_equal(first.counts.sum(axis=1), 16 * 32 * 32)
    assert first.moments.count == 16 * 32 * 32
    # The frame is the layer's running statistics.
    bn = small_model_2d.module.encoder[0].bn1
    np.testing.assert_allclose(first.offset, bn.running_mean.double().numpy())
    np.testing.assert_allclose(first.scale, np.sqrt(bn.running_var.double().numpy() + bn.eps))


def test_histograms_do_not_depend_on_the_batch_size(small_model_2d, volume):
    one = capture_latents(small_model_2d, volume, CPU)
    other = capture_latents(
        small_model_2d, volume, LatentConfig(device="cpu", patches=16, patch_size=32, batch_size=1)
    )
    for name in one.layers:
        if name != BOTTLENECK:
            np.testing.assert_allclose(one.layers[name].counts, other.layers[name].counts, atol=2)
            torch.testing.assert_close(
                one.layers[name].moments.mean, other.layers[name].moments.mean
            )


def test_gaussian_distances_vanish_after_adaptation(small_model_2d, volume):
    before = compare_capture(capture_latents(small_model_2d, volume, CPU))
    config = AdaptConfig(device="cpu", patches=16, patch_size=32, batch_size=4, mode="consistent")
    adapted = adapt(small_model_2d, volume, config).model
    after = compare_capture(capture_latents(adapted, volume, CPU))
    for name, shift in after.items():
        if shift.kind == "batchnorm":
            assert shift.values["wasserstein_standardised"].max() < 0.02, name
            assert before[name].score > 10 * shift.score
    # Capturing never touches the model's statistics.
    torch.testing.assert_close(
        small_model_2d.module.encoder[0].bn1.running_mean,
        small_model_2d.source_stats["encoder.0.bn1"]["running_mean"],
    )


def test_gaussian_reference_is_a_distribution_with_the_right_moments(small_model_2d, volume):
    capture = capture_latents(small_model_2d, volume, CPU)
    for layer in capture.layers.values():
        probs = gaussian_reference(layer)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    bottleneck = capture.layers[BOTTLENECK]
    mean, var = gaussian_reference_moments(bottleneck)
    samples = np.maximum(np.random.default_rng(0).standard_normal((200_000, 1)), bottleneck.floor)
    np.testing.assert_allclose(mean, samples.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(var, samples.var(axis=0), atol=0.01)


def test_bottleneck_samples_are_bounded(small_model_2d, volume):
    config = LatentConfig(device="cpu", patches=16, patch_size=32, bottleneck_samples=100)
    capture = capture_latents(small_model_2d, volume, config)
    samples = capture.bottleneck_samples
    assert samples.shape[1] == capture.layers[BOTTLENECK].channels
    assert 100 <= len(samples) <= 100 + config.batch_size
    assert capture.nbytes < 200_000


def test_torchscript_models_refuse_latent_capture(small_model_2d, volume):
    traced = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    scripted = LoadedModel(**{**small_model_2d.__dict__, "module": traced, "format": "torchscript"})
    with pytest.raises(NotAdaptableError, match="TorchScript"):
        capture_latents(scripted, volume, CPU)


def test_quantiles_from_the_streamed_histograms(small_model_2d, volume):
    capture = capture_latents(small_model_2d, volume, CPU)
    layer = capture.layers["encoder.0.bn1"]
    q = layer.quantiles((0.05, 0.5, 0.95))
    assert q.shape == (layer.channels, 3) and np.all(np.diff(q, axis=1) >= 0)
    # The median sits near the mean for these roughly symmetric inputs (frame units).
    assert np.all(np.abs(q[:, 1] - layer.frame_mean) < 1.5 * np.sqrt(layer.frame_var))
