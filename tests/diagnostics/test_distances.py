"""Distances against closed forms, numerical integrals and scipy."""

import numpy as np
import pytest
from scipy import integrate, stats

from napari_bnadapt.diagnostics import distances as d


def _integral(f) -> float:
    return integrate.quad(f, -30, 30, limit=200)[0]


def test_gaussian_distances_of_identical_distributions_are_zero():
    mean, var = np.array([0.0, 3.0, -2.0]), np.array([1.0, 0.5, 4.0])
    for f in (d.gaussian_w2, d.gaussian_w2_standardised, d.gaussian_kl, d.gaussian_bhattacharyya):
        np.testing.assert_allclose(f(mean, var, mean, var), 0.0, atol=1e-12)


def test_gaussian_w2_known_values_and_symmetry():
    # Δμ = 3, σ 1 vs 2: W2² = 9 + 1.
    assert d.gaussian_w2(3.0, 4.0, 0.0, 1.0) == pytest.approx(np.sqrt(10))
    assert d.gaussian_w2(0.0, 1.0, 3.0, 4.0) == pytest.approx(np.sqrt(10))
    # Standardised by the reference σ = 2: (3/2)² + (1/2 − 1)².
    assert d.gaussian_w2_standardised(3.0, 1.0, 0.0, 4.0) == pytest.approx(np.sqrt(2.25 + 0.25))
    # Equal σ: W2 = W1 = |Δμ|, which scipy measures on samples.
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 200_000), rng.normal(1.5, 1, 200_000)
    assert d.gaussian_w2(1.5, 1, 0, 1) == pytest.approx(stats.wasserstein_distance(a, b), abs=0.01)


def test_kl_and_bhattacharyya_match_numerical_integrals():
    mt, vt, ms, vs = 1.0, 0.5, -0.5, 2.0
    pt, ps = stats.norm(mt, np.sqrt(vt)).pdf, stats.norm(ms, np.sqrt(vs)).pdf
    kl = _integral(lambda x: pt(x) * np.log(pt(x) / ps(x)) if pt(x) > 0 else 0.0)
    assert d.gaussian_kl(mt, vt, ms, vs) == pytest.approx(kl, rel=1e-6)
    assert d.gaussian_kl(ms, vs, mt, vt) != pytest.approx(kl)  # KL is not symmetric
    bc = _integral(lambda x: np.sqrt(pt(x) * ps(x)))
    assert d.gaussian_bhattacharyya(mt, vt, ms, vs) == pytest.approx(-np.log(bc), rel=1e-6)
    assert d.gaussian_bhattacharyya(ms, vs, mt, vt) == pytest.approx(-np.log(bc), rel=1e-6)


def test_histogram_w1_matches_scipy_on_samples():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 100_000), rng.gamma(2.0, 0.7, 100_000) - 1
    edges = np.linspace(-8, 8, 321)
    hist = lambda x: np.concatenate(  # noqa: E731
        [[np.sum(x < -8)], np.histogram(x, edges)[0], [np.sum(x >= 8)]]
    )
    w1 = d.histogram_w1(hist(a), hist(b), width=edges[1] - edges[0])
    assert w1 == pytest.approx(stats.wasserstein_distance(a, b), abs=0.05)
    assert d.histogram_w1(hist(a), hist(a), 0.05) == 0.0
    assert d.histogram_bhattacharyya(hist(a), hist(a)) == pytest.approx(0.0, abs=1e-12)
    assert d.histogram_bhattacharyya(hist(a), hist(b)) > 0.05


def test_histogram_quantiles_match_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(0.5, 1.2, 50_000)
    edges = np.linspace(-8, 8, 641)
    counts = np.concatenate([[0], np.histogram(x, edges)[0], [0]])
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    np.testing.assert_allclose(
        d.histogram_quantiles(counts, edges, levels)[0], np.quantile(x, levels), atol=0.03
    )


def test_sliced_wasserstein_of_a_translation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 8))
    shift = np.zeros(8)
    shift[0] = 2.0
    assert d.sliced_wasserstein(x, x) == 0.0
    # E[(v·θ)²] = |v|²/d over random unit directions θ.
    sw = d.sliced_wasserstein(x, x + shift, projections=2000)
    assert sw == pytest.approx(2.0 / np.sqrt(8), rel=0.05)
    # Clouds of different sizes are compared through their quantile functions.
    assert d.sliced_wasserstein(x[:1000], x + shift, projections=2000) == pytest.approx(
        2.0 / np.sqrt(8), rel=0.1
    )
    with pytest.raises(ValueError, match="same d"):
        d.sliced_wasserstein(x, x[:, :3])


def test_spearman_matches_scipy_with_ties():
    a = [1, 2, 2, 5, 3, 9, 0]
    b = [0.1, 0.5, 0.3, 0.9, 0.2, 1.5, -1]
    assert d.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
