"""Distances between per-channel distributions (vectorised over channels, numpy).

Gaussian closed forms take means and *variances*; ``t`` is the observed (target)
distribution, ``s`` the reference (source). Empirical distances work on histograms on
shared, equally spaced bins (as produced by :mod:`napari_bnadapt.latents`) and on samples.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def gaussian_w2(mean_t, var_t, mean_s, var_s) -> np.ndarray:
    """2-Wasserstein distance between 1D Gaussians: ``sqrt(Δμ² + (σ_t − σ_s)²)``."""
    mean_t, var_t, mean_s, var_s = _arrays(mean_t, var_t, mean_s, var_s)
    return np.sqrt((mean_t - mean_s) ** 2 + (np.sqrt(var_t) - np.sqrt(var_s)) ** 2)


def gaussian_w2_standardised(mean_t, var_t, mean_s, var_s) -> np.ndarray:
    """W2 in units of the reference σ: ``sqrt((Δμ/σ_s)² + (σ_t/σ_s − 1)²)``."""
    mean_t, var_t, mean_s, var_s = _arrays(mean_t, var_t, mean_s, var_s)
    sigma_s = np.sqrt(np.maximum(var_s, _TINY))
    return np.sqrt(((mean_t - mean_s) / sigma_s) ** 2 + (np.sqrt(var_t) / sigma_s - 1.0) ** 2)


def gaussian_kl(mean_t, var_t, mean_s, var_s) -> np.ndarray:
    """KL(t ‖ s) = ln(σ_s/σ_t) + (σ_t² + Δμ²)/(2σ_s²) − ½ (nats)."""
    mean_t, var_t, mean_s, var_s = _arrays(mean_t, var_t, mean_s, var_s)
    var_t, var_s = np.maximum(var_t, _TINY), np.maximum(var_s, _TINY)
    return 0.5 * np.log(var_s / var_t) + (var_t + (mean_t - mean_s) ** 2) / (2 * var_s) - 0.5


def gaussian_bhattacharyya(mean_t, var_t, mean_s, var_s) -> np.ndarray:
    """D_B = Δμ²/(4(σ_s² + σ_t²)) + ½ ln((σ_s² + σ_t²)/(2σ_sσ_t)); symmetric."""
    mean_t, var_t, mean_s, var_s = _arrays(mean_t, var_t, mean_s, var_s)
    var_t, var_s = np.maximum(var_t, _TINY), np.maximum(var_s, _TINY)
    total = var_s + var_t
    return (mean_t - mean_s) ** 2 / (4 * total) + 0.5 * np.log(total / (2 * np.sqrt(var_s * var_t)))


def histogram_w1(p: np.ndarray, q: np.ndarray, width: float) -> np.ndarray:
    """1-Wasserstein distance between histograms on shared equally spaced cells (per row).

    Each cell's mass sits at its centre, so this is the exact W1 of those discrete
    distributions: ``width · Σ |CDF_p − CDF_q|``. Rows are normalised first.
    """
    p, q = _normalised(p), _normalised(q)
    return width * np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)).sum(axis=-1)


def histogram_bhattacharyya(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Bhattacharyya distance ``−ln Σ sqrt(p·q)`` between histograms (per row)."""
    p, q = _normalised(p), _normalised(q)
    coefficient = np.sqrt(p * q).sum(axis=-1)
    return -np.log(np.clip(coefficient, _TINY, 1.0))


def histogram_quantiles(counts: np.ndarray, edges: np.ndarray, levels) -> np.ndarray:
    """Quantiles per row from histogram counts ``(rows, bins + 2)`` (linear within bins).

    Mass in the underflow/overflow cells is placed at the outer edges.
    """
    levels = np.asarray(levels, dtype=np.float64)
    probs = _normalised(np.atleast_2d(counts))
    # CDF at each edge: underflow + bins before it.
    cdf = np.cumsum(probs[:, :-1], axis=1)
    out = np.empty((probs.shape[0], levels.size))
    for row in range(probs.shape[0]):
        out[row] = np.interp(levels, cdf[row], edges)
    return out


def sliced_wasserstein(
    x: np.ndarray, y: np.ndarray, projections: int = 128, p: int = 2, seed: int = 0
) -> float:
    """Sliced p-Wasserstein distance between two clouds of vectors ``(n, d)``, ``(m, d)``.

    ``SW_p^p ≈ mean over random unit directions θ of ∫ |F⁻¹_{xθ} − F⁻¹_{yθ}|^p``; the
    quantile functions are compared on a common grid, so n and m may differ.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two (n, d) arrays with the same d, got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(x.shape[1], projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    count = max(len(x), len(y))
    qx, qy = _quantile_function(x @ theta, count), _quantile_function(y @ theta, count)
    return float(np.mean(np.abs(qx - qy) ** p) ** (1.0 / p))


def _quantile_function(projected: np.ndarray, count: int) -> np.ndarray:
    """Sorted values per column, resampled (linearly) to ``count`` mid-point levels."""
    ordered = np.sort(projected, axis=0)
    n = len(ordered)
    if n == count:
        return ordered
    position = np.clip((np.arange(count) + 0.5) / count * n - 0.5, 0, n - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n - 1)
    weight = (position - low)[:, None]
    return ordered[low] * (1 - weight) + ordered[high] * weight


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def _normalised(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return counts / np.maximum(counts.sum(axis=-1, keepdims=True), _TINY)
