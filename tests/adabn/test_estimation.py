import numpy as np
import pytest
import torch
from torch import nn

from napari_bnadapt.adapt import AdaptConfig, adapt, reset
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.errors import CancelledError, InputDataError, NotAdaptableError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import LoadedModel, load_model, save_model
from napari_bnadapt.model.bn_layers import read_bn_stats
from napari_bnadapt.synthetic import SOURCE, TARGET, make_volume

CPU = {"device": "cpu"}


@pytest.fixture
def target():
    return np.random.default_rng(0).normal(140, 30, size=(6, 48, 48)).astype(np.float32)


def _weights(model: LoadedModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.module.state_dict().items() if "running_" not in k}


def _brute_force_first_layer(model: LoadedModel, volume: np.ndarray):
    """Population mean/var of the first BN layer's input over the whole volume."""
    spec = model.normalization
    x = torch.from_numpy((volume - spec.mean) / spec.std).float()[:, None]
    with torch.no_grad():
        features = model.module.encoder[0].conv1(x).double()
    return features.mean(dim=(0, 2, 3)), features.var(dim=(0, 2, 3), unbiased=True)


def test_pooled_statistics_equal_brute_force_population_statistics(small_model_2d, target):
    result = adapt(small_model_2d, target, AdaptConfig(mode="standard", patch_size=48, **CPU))
    mean, var = _brute_force_first_layer(small_model_2d, target)
    stats = result.stats["encoder.0.bn1"]
    torch.testing.assert_close(stats["running_mean"].double(), mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats["running_var"].double(), var, rtol=1e-5, atol=1e-6)


def test_pooling_does_not_depend_on_batch_size_or_order(small_model_2d, target):
    # Standard AdaBN normalises each batch by its own statistics, so only the first layer
    # (whose input no BN touches) is batch-invariant; consistent mode at its fixed point
    # uses eval-mode features, so every layer is.
    def run(mode, data, batch_size):
        config = AdaptConfig(mode=mode, patch_size=24, patches=24, batch_size=batch_size,
                             max_passes=12, tolerance=0.0, **CPU)  # fmt: skip
        return adapt(small_model_2d, data, config).stats

    for mode, layers in (
        ("standard", ["encoder.0.bn1"]),
        ("consistent", list(small_model_2d.source_stats)),
    ):
        one, other, backwards = (
            run(mode, target, 8),
            run(mode, target, 5),
            run(mode, list(target[::-1]), 3),
        )
        for name in layers:
            for key in ("running_mean", "running_var"):
                torch.testing.assert_close(one[name][key], other[name][key], rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(
                    one[name][key], backwards[name][key], rtol=1e-4, atol=1e-5
                )


def test_only_running_statistics_change_and_the_input_model_is_untouched(small_model_2d, target):
    before_weights, before_stats = _weights(small_model_2d), read_bn_stats(small_model_2d.module)
    tracked = {
        k: v.clone() for k, v in small_model_2d.module.state_dict().items() if "num_batches" in k
    }
    result = adapt(small_model_2d, target, AdaptConfig(**CPU))
    for key, value in _weights(result.model).items():
        assert torch.equal(value, before_weights[key]), key  # weights, affine, num_batches_tracked
    for name, stats in read_bn_stats(small_model_2d.module).items():
        assert torch.equal(stats["running_mean"], before_stats[name]["running_mean"])
    assert all(torch.equal(small_model_2d.module.state_dict()[k], v) for k, v in tracked.items())
    changed = read_bn_stats(result.model.module)
    assert not torch.equal(
        changed["encoder.0.bn1"]["running_mean"], before_stats["encoder.0.bn1"]["running_mean"]
    )
    assert result.model.state == "adapted" and small_model_2d.state == "source"


def test_reset_restores_source_statistics_bit_for_bit(small_model_2d, target, tmp_path):
    adapted = adapt(small_model_2d, target, AdaptConfig(**CPU)).model
    # through a file too: the source statistics travel with the adapted model
    reloaded = load_model(save_model(adapted, tmp_path / "adapted.pt"))
    assert reloaded.adaptation.mode == "standard" or reloaded.adaptation.mode == AdaptConfig().mode
    for model in (adapted, reloaded):
        reset(model)
        for name, stats in read_bn_stats(model.module).items():
            assert torch.equal(
                stats["running_mean"], small_model_2d.source_stats[name]["running_mean"]
            )
            assert torch.equal(
                stats["running_var"], small_model_2d.source_stats[name]["running_var"]
            )
        assert model.adaptation is None


def test_cancel_raises_and_leaves_the_model_unchanged(small_model_2d, target):
    before = {k: v.clone() for k, v in small_model_2d.module.state_dict().items()}
    calls = []
    with pytest.raises(CancelledError):
        adapt(
            small_model_2d,
            target,
            AdaptConfig(batch_size=1, **CPU),
            should_stop=lambda: calls.append(1) or len(calls) > 2,
        )
    assert all(torch.equal(v, small_model_2d.module.state_dict()[k]) for k, v in before.items())
    assert small_model_2d.adaptation is None


def test_alpha_zero_is_the_source_and_alpha_one_the_full_adaptation(small_model_2d, target):
    full = adapt(small_model_2d, target, AdaptConfig(alpha=1.0, **CPU)).stats
    none = adapt(small_model_2d, target, AdaptConfig(alpha=0.0, **CPU)).stats
    half = adapt(small_model_2d, target, AdaptConfig(alpha=0.5, mode="standard", **CPU)).stats
    full_std = adapt(small_model_2d, target, AdaptConfig(alpha=1.0, mode="standard", **CPU)).stats
    for name, source in small_model_2d.source_stats.items():
        torch.testing.assert_close(none[name]["running_mean"], source["running_mean"])
        torch.testing.assert_close(none[name]["running_var"], source["running_var"])
        expected = 0.5 * (full_std[name]["running_mean"] + source["running_mean"])
        torch.testing.assert_close(half[name]["running_mean"], expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(
        full["encoder.0.bn1"]["running_mean"],
        small_model_2d.source_stats["encoder.0.bn1"]["running_mean"],
    )


def test_prior_strength_sets_alpha_from_the_patch_count(small_model_2d, target):
    record = adapt(
        small_model_2d, target, AdaptConfig(prior_strength=16, patches=16, patch_size=24, **CPU)
    ).record
    assert record.alpha == pytest.approx(0.5)


def test_layer_choice_and_mean_only(small_model_2d, target):
    result = adapt(small_model_2d, target, AdaptConfig(layers="encoder", statistics="mean", **CPU))
    assert set(result.stats) == {n for n in small_model_2d.source_stats if n.startswith("encoder.")}
    for name, stats in result.stats.items():
        assert torch.equal(stats["running_var"], small_model_2d.source_stats[name]["running_var"])
    adapted = read_bn_stats(result.model.module)
    assert torch.equal(
        adapted["decoder.0.bn1"]["running_mean"],
        small_model_2d.source_stats["decoder.0.bn1"]["running_mean"],
    )
    first = adapt(small_model_2d, target, AdaptConfig(layers="first:3", **CPU))
    assert list(first.stats) == list(small_model_2d.source_stats)[:3]
    with pytest.raises(InputDataError, match="no BatchNorm layer matches"):
        adapt(small_model_2d, target, AdaptConfig(layers="nonsense", **CPU))


def test_model_without_batchnorm_gets_a_clear_error(target):
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.Conv2d(4, 1, 1))
    model = LoadedModel(module, 2, 1, 1, NormalizationSpec(mode="none"), source_stats={})
    with pytest.raises(NotAdaptableError, match=r"nothing to adapt.*GroupNorm"):
        adapt(model, target, AdaptConfig(**CPU))


def _conv_bn_model() -> LoadedModel:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 1, 1),
    ).eval()  # fmt: skip
    return LoadedModel(module, 2, 1, 1, NormalizationSpec(mode="fixed", mean=140.0, std=30.0),
                       source_stats=read_bn_stats(module), metadata={"divisor": 1})  # fmt: skip


@pytest.mark.parametrize("mode", ["standard", "consistent"])
def test_torchscript_model_adapts_like_the_python_model(target, mode):
    model = _conv_bn_model()
    scripted = model.copy()
    scripted.module, scripted.format = torch.jit.script(model.module), "torchscript"
    config = AdaptConfig(mode=mode, patch_size=32, patches=12, max_passes=6, tolerance=0.0, **CPU)
    expected, got = adapt(model, target, config).stats, adapt(scripted, target, config).stats
    for name in expected:
        for key in ("running_mean", "running_var"):
            torch.testing.assert_close(got[name][key], expected[name][key], rtol=1e-4, atol=1e-5)


def test_traced_torchscript_model_is_explained_not_silently_unchanged(small_model_2d, target):
    traced = small_model_2d.copy()
    traced.module = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    with pytest.raises(NotAdaptableError, match=r"torch\.jit\.script"):
        adapt(traced, target, AdaptConfig(**CPU))


def test_consistent_mode_gives_the_statistics_seen_at_inference(small_model_2d, target):
    config = AdaptConfig(mode="consistent", patch_size=48, max_passes=12, tolerance=0.0, **CPU)
    result = adapt(small_model_2d, target, config)
    # Re-measure every layer's input in eval mode with the adapted statistics: a fixed point.
    again = adapt(result.model, target, config).record.fixed_point_changes
    assert again[-1] < 1e-3


def test_roi_restricts_sampling(small_model_2d, target):
    roi = np.zeros(target.shape, dtype=np.uint8)
    roi[:, :24, :24] = 1
    with_roi = adapt(small_model_2d, target, AdaptConfig(patch_size=16, **CPU), roi=roi).record
    without = adapt(small_model_2d, target, AdaptConfig(patch_size=16, **CPU)).record
    assert with_roi.patches < without.patches
    with pytest.raises(InputDataError, match="ROI"):
        adapt(small_model_2d, target, AdaptConfig(**CPU), roi=np.zeros((3, 3)))


def test_convergence_record_reports_the_last_change(small_model_2d, target):
    record = adapt(small_model_2d, target, AdaptConfig(patch_size=16, patches=64, **CPU)).record
    changes = [c.change for c in record.convergence]
    assert len(changes) == -(-record.patches // 8) - 1 and changes[-1] < changes[0]


def test_adaptation_recovers_dice_on_a_shifted_target_end_to_end():
    model = load_model("demo")
    target, truth = make_volume((6, 128, 128), TARGET, seed=11)
    source_image, source_truth = make_volume((4, 128, 128), SOURCE, seed=12)
    before = dice(predict(model, target, PredictConfig(**CPU)).mask, truth)
    adapted = adapt(model, target, AdaptConfig(seed=0, **CPU)).model
    after = dice(predict(adapted, target, PredictConfig(**CPU)).mask, truth)
    source_dice = dice(predict(model, source_image, PredictConfig(**CPU)).mask, source_truth)
    assert before < 0.3 and after > 0.9 and after > source_dice - 0.05


def test_3d_model_adapts_on_a_volume(small_model_3d):
    volume = np.random.default_rng(2).normal(150, 20, size=(20, 40, 40)).astype(np.float32)
    result = adapt(small_model_3d, volume, AdaptConfig(patch_size=16, **CPU))
    assert result.record.patch_size == (16, 16, 16)
    stats = result.stats["encoder.0.bn1"]
    spec = small_model_3d.normalization
    x = torch.from_numpy((volume - spec.mean) / spec.std).float()[None, None]
    with torch.no_grad():
        features = small_model_3d.module.encoder[0].conv1(x).double()
    # Patches tile the volume exactly (20×40×40 → overlapping grid), so compare loosely.
    torch.testing.assert_close(
        stats["running_mean"].double(), features.mean(dim=(0, 2, 3, 4)), rtol=0.05, atol=0.05
    )
