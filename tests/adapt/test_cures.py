"""Every cure on small synthetic shifts: what it repairs, its guard, its record, its reset."""

import numpy as np
import pytest
import torch

from napari_bnadapt.adapt import CURES, AdaptConfig, adapt, reset
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.diagnostics.fingerprinting import compute_fingerprint
from napari_bnadapt.errors import NotAdaptableError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.bn_layers import read_bn_stats
from napari_bnadapt.synthetic import SHIFTS, SOURCE, make_volume

CPU = {"device": "cpu"}
SHAPE = (3, 128, 128)


@pytest.fixture(scope="module")
def model():
    """The demo model with the fingerprint of its (synthetic) source domain."""
    model = load_model("demo")
    model.fingerprint = compute_fingerprint(model, make_volume(SHAPE, SOURCE, seed=3)[0])
    return model


def score(model, volume, truth) -> float:
    return dice(predict(model, volume, PredictConfig(**CPU)).mask, truth)


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def test_histogram_matching_repairs_a_gamma_shift(model):
    volume, truth = make_volume(SHAPE, SHIFTS["gamma"], seed=5)
    assert score(model, volume, truth) < 0.2
    result = adapt(model, volume, AdaptConfig(cure="histogram", **CPU))
    assert result.record.input_steps == ("histogram matched to the source",)
    # The statistics stayed the source's: the input alone was changed.
    assert all(
        torch.equal(v, model.source_stats[k]["running_mean"])
        for k, v in ((n, s["running_mean"]) for n, s in read_bn_stats(result.model.module).items())
    )
    assert score(result.model, volume, truth) > 0.95


def test_fda_repairs_a_low_frequency_illumination_shift(model):
    volume, truth = make_volume(SHAPE, SOURCE, seed=5)
    ramp = 1.0 + 0.6 * np.sin(np.arange(SHAPE[2]) / SHAPE[2] * np.pi)
    shaded = np.clip(volume * ramp[None, None, :] * 0.8, 0, 255).astype(np.uint8)
    before = score(model, shaded, truth)
    adabn = score(adapt(model, shaded, AdaptConfig(**CPU)).model, shaded, truth)
    fda = score(adapt(model, shaded, AdaptConfig(cure="fda", **CPU)).model, shaded, truth)
    assert fda > max(before, adabn) + 0.02 and fda > 0.97


def test_an_inverted_contrast_is_detected_and_inverted_back(model):
    volume, truth = make_volume(SHAPE, SHIFTS["inverted"], seed=5)
    kept = adapt(model, volume, AdaptConfig(**CPU))  # the default keeps the polarity
    result = adapt(model, volume, AdaptConfig(polarity="auto", **CPU))
    assert result.record.details["polarity"]["inverted"] is True
    assert "contrast inverted" in result.record.input_steps
    assert score(result.model, volume, truth) > 0.95 > score(kept.model, volume, truth) + 0.3
    brightness, _ = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    plain = adapt(model, brightness, AdaptConfig(polarity="auto", **CPU)).record
    assert plain.input_steps == () and plain.details["polarity"]["inverted"] is False


def test_tent_guard_undoes_a_collapse(model):
    volume, truth = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    adabn = adapt(model, volume, AdaptConfig(**CPU)).model
    # A step size ten thousand times too large inflates the foreground far past the guard.
    config = AdaptConfig(cure="tent", tent_steps=20, tent_learning_rate=10.0, **CPU)
    result = adapt(model, volume, config)
    assert result.record.details["guard"]["kept"] is False
    assert result.model.source_weights is None  # nothing changed that would need undoing
    assert score(result.model, volume, truth) == score(adabn, volume, truth)
    assert score(result.model, volume, truth) >= score(model, volume, truth)


def test_tent_keeps_a_gentle_improvement_and_only_touches_affine_terms(model):
    volume, _ = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    result = adapt(model, volume, AdaptConfig(cure="tent", tent_steps=3, **CPU))
    assert result.record.details["guard"]["kept"] is True
    changed = set(result.model.source_weights)
    assert changed and all(
        name.endswith((".weight", ".bias")) and ".bn" in name for name in changed
    )


def test_self_training_runs_guarded_and_records_its_steps(model):
    volume, truth = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    config = AdaptConfig(cure="self-training", self_training_steps=6, **CPU)
    result = adapt(model, volume, config)
    details = result.record.details
    assert details["self_training_steps"] == 6 and "guard" in details
    assert score(result.model, volume, truth) > 0.9


def test_alpha_entropy_records_every_candidate(model):
    volume, _ = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    result = adapt(model, volume, AdaptConfig(cure="alpha-entropy", **CPU))
    entropies = result.record.details["alpha_entropies"]
    assert set(entropies) == {"0", "0.25", "0.5", "0.75", "1"}
    assert entropies[f"{result.record.alpha:g}"] == min(entropies.values())


@pytest.mark.parametrize("cure", [c for c in CURES if c != "self-training"] + ["self-training"])
def test_reset_is_bit_exact_after_every_cure(model, cure, tmp_path):
    volume, _ = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    source = state(model)
    config = AdaptConfig(cure=cure, self_training_steps=3, tent_steps=3, **CPU)
    adapted = adapt(model, volume, config).model
    assert adapted.state == "adapted" and adapted.adaptation.cure == cure
    assert state(model).keys() == source.keys() and all(
        torch.equal(v, source[k]) for k, v in state(model).items()
    )  # the user's model never changes
    save_model(adapted, tmp_path / "adapted.pt")
    for again in (adapted, load_model(tmp_path / "adapted.pt")):
        reset(again)
        assert again.input_steps == () and again.adaptation is None
        assert all(torch.equal(v, source[k]) for k, v in state(again).items()), cure


def test_a_saved_cure_is_applied_by_predict(model, tmp_path):
    volume, _ = make_volume(SHAPE, SHIFTS["gamma"], seed=5)
    adapted = adapt(model, volume, AdaptConfig(cure="histogram+adabn", **CPU)).model
    save_model(adapted, tmp_path / "cured.pt")
    loaded = load_model(tmp_path / "cured.pt")
    assert loaded.input_steps == adapted.input_steps
    expected = predict(adapted, volume, PredictConfig(**CPU)).mask
    assert np.array_equal(predict(loaded, volume, PredictConfig(**CPU)).mask, expected)


def test_auto_is_deterministic_and_records_its_choice(model):
    volume, _ = make_volume(SHAPE, SHIFTS["gamma"], seed=5)
    first = adapt(model, volume, AdaptConfig(cure="auto", **CPU))
    second = adapt(model, volume, AdaptConfig(cure="auto", **CPU))
    auto = first.record.details["auto"]
    assert first.record.cure == "auto" and auto == second.record.details["auto"]
    assert auto["chosen"] in auto["scores"] and "adabn" in auto["scores"]
    assert all(torch.equal(v, state(second.model)[k]) for k, v in state(first.model).items())


def test_input_cures_need_a_fingerprint_and_say_how_to_add_one():
    bare = load_model("demo")
    bare.fingerprint = None
    volume, _ = make_volume(SHAPE, SHIFTS["gamma"], seed=5)
    with pytest.raises(NotAdaptableError, match="bnadapt fingerprint"):
        adapt(bare, volume, AdaptConfig(cure="histogram", **CPU))
    # Without a fingerprint, auto still works, over the cures that need none.
    assert (
        "histogram+adabn"
        not in adapt(bare, volume, AdaptConfig(cure="auto", **CPU)).record.details["auto"]["scores"]
    )


@pytest.mark.parametrize("cure", ["adabn", "histogram+adabn", "tent", "self-training", "auto"])
def test_progress_rises_once_to_the_end_whatever_the_cure(model, cure):
    volume, _ = make_volume(SHAPE, SHIFTS["brightness"], seed=5)
    steps = []
    config = AdaptConfig(cure=cure, polarity="auto", tent_steps=2, self_training_steps=2, **CPU)
    adapt(model, volume, config, progress=steps.append)
    done = [s.done for s in steps]
    assert done == sorted(done) and len({s.total for s in steps}) == 1
    assert done[-1] == steps[-1].total
