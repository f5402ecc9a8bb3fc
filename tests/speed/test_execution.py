"""Precision and layout: as asked, or measured; a model whose masks move at reduced
precision runs in float32 by itself."""

import numpy as np
import pytest
import torch
from torch import nn

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model.loaded import LoadedModel
from napari_bnadapt.speed import calibration, execution
from napari_bnadapt.speed.agreement import check_precision, compare_masks
from napari_bnadapt.speed.calibration import Calibration, calibrate
from napari_bnadapt.speed.execution import SpeedRequest, choose_speed

CPU = torch.device("cpu")


class Cancelling(nn.Module):
    """Adds a large constant and takes it away again: exact in float32, while bfloat16
    (8 significant bits) rounds the input to steps of 2 first, so masks move."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Conv2d(1, 1, 1)
        self.down = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.up.weight.fill_(1.0)
            self.up.bias.fill_(300.0)
            self.down.weight.fill_(1.0)
            self.down.bias.fill_(-300.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.up(x))


def sample() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1, (4, 1, 32, 32)).astype(np.float32)


def sample_3d() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1, (2, 1, 16, 32, 32)).astype(np.float32)


def test_agreement_of_masks():
    a = np.array([[0, 1, 1, 0]])
    assert (compare_masks(a, a).agreement, compare_masks(a, a).dice) == (1.0, 1.0)
    moved = compare_masks(a, np.array([[0, 1, 0, 0]]))
    assert moved.agreement == 0.75 and moved.dice == pytest.approx(2 / 3) and not moved.passed
    assert compare_masks(np.zeros(5), np.zeros(5)).dice == 1.0
    assert compare_masks(np.zeros(5), np.zeros(5)).passed  # nothing to move


def test_too_little_foreground_to_tell_is_float32():
    sparse = np.zeros(10_000, np.uint8)
    sparse[:50] = 1
    same = compare_masks(sparse, sparse)
    assert same.dice == 1.0 and not same.passed and "only 50 foreground" in same.describe()
    dense = np.zeros(10_000, np.uint8)
    dense[:3000] = 1
    assert compare_masks(dense, dense).passed


def test_a_model_whose_masks_move_at_bfloat16_is_caught(small_model_2d):
    fragile = check_precision(Cancelling().eval(), sample(), 1, CPU, "bf16", 0.5)
    assert not fragile.passed and fragile.agreement < 0.9
    steady = check_precision(small_model_2d.module.eval(), sample(), 4, CPU, "bf16", 0.5)
    assert steady.agreement > 0.99


def fake_calibration(monkeypatch, fastest: str) -> None:
    rates = ((p, cl, 2.0 if p == fastest else 1.0) for p in ("fp32", "bf16") for cl in (0, 1))
    fixed = Calibration(tuple((p, bool(cl), r + 0.1 * cl) for p, cl, r in rates))
    monkeypatch.setattr(execution, "calibrate", lambda *args, **kwargs: fixed)


def test_auto_falls_back_to_float32_when_bfloat16_moves_the_masks(
    monkeypatch, small_model_2d, small_model_3d
):
    fake_calibration(monkeypatch, "bf16")
    monkeypatch.setattr(execution, "runs_natively", lambda device, precision: True)
    big = execution.MIN_VOXELS
    args = (2, 1, 1, CPU, SpeedRequest("auto"), big, sample, 0.5)
    precision, channels_last, note = choose_speed(Cancelling().eval(), *args)
    assert (precision, channels_last) == ("fp32", True) and "bf16 moved the masks" in note
    # The built-in U-Net follows the measured rule: bfloat16 in 3D (checked), float32 in
    # 2D, where bfloat16 adds nothing to channels-last.
    args = (3, 1, 4, CPU, SpeedRequest("auto"), big, sample_3d, 0.5)
    precision, channels_last, note = choose_speed(small_model_3d.module, *args)
    assert (precision, channels_last) == ("bf16", True) and "Dice" in note
    assert "rule measured for the built-in U-Net" in note
    args = (2, 1, 4, CPU, SpeedRequest("auto"), big, sample, 0.5)
    assert choose_speed(small_model_2d.module, *args)[:2] == ("fp32", True)


def test_the_built_in_unet_on_a_cpu_follows_the_measured_rule(monkeypatch, small_model_2d):
    def refuse(*args, **kwargs):
        raise AssertionError("a calibration on a shared CPU is noise: the rule decides")

    monkeypatch.setattr(execution, "calibrate", refuse)
    monkeypatch.setattr(execution, "runs_natively", lambda device, precision: False)
    request = SpeedRequest("auto")
    args = (2, 1, 4, CPU, request, execution.MIN_VOXELS, sample, 0.5)
    assert choose_speed(small_model_2d.module, *args)[:2] == ("fp32", True)


def test_small_jobs_and_explicit_choices_are_not_measured(monkeypatch, small_model_2d):
    def refuse(*args, **kwargs):
        raise AssertionError("measured")

    monkeypatch.setattr(execution, "calibrate", refuse)
    net = small_model_2d.module
    small = execution.MIN_VOXELS - 1
    assert choose_speed(net, 2, 1, 4, CPU, SpeedRequest(), small, sample, 0.5)[:2] == (
        "fp32",
        False,
    )
    asked = SpeedRequest("bf16", channels_last=True)
    assert choose_speed(net, 2, 1, 4, CPU, asked, 10**9, sample, 0.5)[:2] == ("bf16", True)
    # float16 on a CPU runs in float32, as --amp fp16 always did there.
    assert choose_speed(net, 2, 1, 4, CPU, SpeedRequest("fp16"), small, sample, 0.5)[0] == "fp32"


def test_calibration_is_measured_once_and_cached(monkeypatch, small_model_2d):
    calls = []
    real = calibration.measure

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration, "measure", counting)
    monkeypatch.setattr(calibration, "PROBE", {2: 32, 3: 16})
    module = small_model_2d.module
    first = calibrate(module, 2, 1, 4, CPU)
    again = calibrate(module, 2, 1, 4, CPU)
    assert calls == [1] and first == again
    assert {(p, cl) for p, cl, _ in first.rates} >= {("fp32", False), ("fp32", True)}
    assert first.fastest()[0] in ("fp32", "bf16")


def test_reduced_precision_is_chosen_only_when_clearly_faster():
    close = Calibration((("fp32", False, 100.0), ("bf16", False, 105.0)))
    assert close.fastest() == ("fp32", False)
    clear = Calibration((("fp32", False, 100.0), ("bf16", True, 150.0)))
    assert clear.fastest() == ("bf16", True)


def test_predict_reports_how_it_ran(small_model_2d, source_images):
    image = source_images[0][0]
    result = predict(small_model_2d, image, PredictConfig(device="cpu", precision="bf16"))
    assert result.execution.precision == "bf16" and result.execution.fold_batchnorm
    plain = predict(small_model_2d, image, PredictConfig(device="cpu", fold_batchnorm=False))
    assert plain.execution.precision == "fp32" and not plain.execution.fold_batchnorm
    assert np.mean(result.mask == plain.mask) > 0.99
    with pytest.raises(Exception, match="disagree"):
        PredictConfig(amp="bf16", precision="fp32")
    assert PredictConfig(amp="bf16").requested_precision == "bf16"


def test_a_fragile_model_predicts_in_float32_under_auto(monkeypatch):
    """The mechanism end to end: auto measures bfloat16 fastest, checks it on the input,
    and runs float32."""
    fake_calibration(monkeypatch, "bf16")
    monkeypatch.setattr(execution, "MIN_VOXELS", 0)
    model = LoadedModel.build(Cancelling(), NormalizationSpec(mode="none"), dims=2, in_channels=1)
    model.metadata["divisor"] = 1
    image = np.random.default_rng(1).normal(0.3, 1, (64, 64)).astype(np.float32)
    result = predict(model, image, PredictConfig(device="cpu", tile_shape=32))
    assert result.execution.precision == "fp32" and "moved the masks" in result.execution.note
    exact = predict(model, image, PredictConfig(device="cpu", tile_shape=32, precision="fp32"))
    np.testing.assert_array_equal(result.mask, exact.mask)
