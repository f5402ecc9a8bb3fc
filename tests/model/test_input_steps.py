"""Input steps: what each does to an input, and that they survive a model file."""

import numpy as np

from napari_bnadapt.model.fingerprint import QUANTILE_LEVELS
from napari_bnadapt.model.input_steps import (
    InvertContrast,
    MatchHistogram,
    SwapAmplitude,
    compose,
    step_from_dict,
    step_to_dict,
)


def test_histogram_matching_maps_target_quantiles_onto_the_source():
    rng = np.random.default_rng(0)
    target = rng.gamma(2.0, 1.0, 20_000).astype(np.float32)
    source = rng.normal(0.0, 1.0, 20_000)
    step = MatchHistogram.between(
        np.quantile(target, QUANTILE_LEVELS), np.quantile(source, QUANTILE_LEVELS)
    )
    mapped = step(target)
    assert np.all(np.diff(mapped[np.argsort(target)]) >= 0)  # monotone
    assert abs(mapped.mean()) < 0.05 and abs(mapped.std() - 1.0) < 0.05


def test_histogram_matching_of_integer_images_is_a_function():
    target = np.repeat(np.arange(4.0), 64)  # few values: repeated quantiles
    step = MatchHistogram.between(np.quantile(target, QUANTILE_LEVELS), QUANTILE_LEVELS)
    assert np.all(np.diff(step.target) > 0)  # repeated quantiles merged: a function
    assert np.all(np.diff(step(np.arange(4.0, dtype=np.float32))) > 0)


def test_amplitude_swap_replaces_slow_changes_and_keeps_edges():
    plane = np.zeros((64, 64), np.float32)
    plane[:, 32:] = 1.0
    ramp = np.linspace(0, 3, 64, dtype=np.float32)[None, :]
    flat_spectrum = (0.0, 0.0)
    step = SwapAmplitude(0.05, flat_spectrum, (0.0, 0.5), mean=0.5)
    out = step((plane + ramp)[None])[0]
    assert out.shape == (64, 64) and abs(out.mean() - 0.5) < 1e-4
    # The edge is still the strongest gradient; the ramp's slope is gone in the flat halves.
    assert np.argmax(np.abs(np.diff(out.mean(axis=0)))) in (30, 31, 32)
    assert np.ptp(out[:, 5:25].mean(axis=0)) < np.ptp(ramp[0, 5:25])


def test_inversion_is_its_own_inverse_and_steps_compose_in_order():
    x = np.linspace(-1, 3, 9, dtype=np.float32)
    invert = InvertContrast(1.0)
    assert np.allclose(invert(invert(x)), x) and np.allclose(invert(x), 2.0 - x)
    double = compose(lambda v: v * 2, [invert])
    assert np.allclose(double(x), 2.0 - 2 * x)


def test_steps_round_trip_through_plain_values():
    steps = [
        InvertContrast(0.25),
        MatchHistogram((0.0, 1.0), (-1.0, 1.0)),
        SwapAmplitude(0.01, (1.0, 0.5), (0.0, 0.5), 0.1),
    ]
    for step in steps:
        assert step_from_dict(step_to_dict(step)) == step
