"""Per-layer, per-channel shift tables from latent captures or stored statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.bn_layers import BNStats
from .distances import (
    gaussian_bhattacharyya,
    gaussian_kl,
    gaussian_w2,
    gaussian_w2_standardised,
    histogram_bhattacharyya,
    histogram_w1,
)
from .latents import LatentCapture, LayerLatents, gaussian_reference, gaussian_reference_moments

#: Per-channel distance names, as they appear in report.json and the widgets' tables.
GAUSSIAN_KEYS = ("wasserstein", "wasserstein_standardised", "bhattacharyya", "kl")
EMPIRICAL_KEYS = ("wasserstein_empirical", "bhattacharyya_empirical")


@dataclass
class LayerShift:
    """Distances of one layer's channels from their reference distribution.

    ``values`` maps a distance name (:data:`GAUSSIAN_KEYS`, :data:`EMPIRICAL_KEYS`) to a
    per-channel array. Gaussian distances compare the observed mean and variance with the
    Gaussian the layer normalises with (its running statistics); empirical ones compare
    histograms with the reference histogram (source images if given, else that Gaussian).
    Standardised and empirical distances are in units of the reference σ.
    """

    name: str
    kind: str
    values: dict[str, np.ndarray]

    @property
    def channels(self) -> int:
        return len(next(iter(self.values.values())))

    @property
    def score(self) -> float:
        """The layer's shift: mean standardised W2 over channels."""
        return float(np.mean(self.values["wasserstein_standardised"]))

    def ranked_channels(self, key: str = "wasserstein_standardised") -> np.ndarray:
        """Channel indices, most shifted first."""
        return np.argsort(-self.values[key], kind="stable")

    def summary(self, top: int = 5) -> dict:
        """Plain numbers for report.json: mean and max of every distance, top channels."""
        out = {"name": self.name, "kind": self.kind, "channels": self.channels}
        for key, values in self.values.items():
            out[key] = {"mean": float(np.mean(values)), "max": float(np.max(values))}
        out["most_shifted_channels"] = [int(c) for c in self.ranked_channels()[:top]]
        return out


def compare_capture(
    observed: LatentCapture, reference: LatentCapture | None = None
) -> dict[str, LayerShift]:
    """Shift of every layer of ``observed`` from its reference, in network order."""
    table = {}
    for name, layer in observed.layers.items():
        ref_layer = reference.layers.get(name) if reference is not None else None
        table[name] = _layer_shift(layer, ref_layer)
    return table


def stats_shift(source: dict[str, BNStats], other: dict[str, BNStats]) -> dict[str, LayerShift]:
    """Gaussian distances between two sets of stored BatchNorm statistics.

    Works for every model format (TorchScript included): e.g. how far adaptation moved
    each layer's statistics from the source ones.
    """
    table = {}
    for name, stats in source.items():
        if name not in other:
            continue
        args = (
            other[name]["running_mean"].double().numpy(),
            other[name]["running_var"].double().numpy(),
            stats["running_mean"].double().numpy(),
            stats["running_var"].double().numpy(),
        )
        table[name] = LayerShift(name, "batchnorm", _gaussian(*args))
    return table


def layer_scores(table: dict[str, LayerShift], key: str = "wasserstein_standardised") -> dict:
    """Mean of ``key`` over channels per layer: the per-layer overview."""
    return {name: float(np.mean(shift.values[key])) for name, shift in table.items()}


def shift_matrix(
    table: dict[str, LayerShift], key: str = "wasserstein_standardised"
) -> tuple[list[str], np.ndarray]:
    """Layers × channels matrix of ``key`` (NaN-padded to the widest layer), for heatmaps."""
    names = list(table)
    width = max(shift.channels for shift in table.values())
    matrix = np.full((len(names), width), np.nan)
    for row, name in enumerate(names):
        values = table[name].values[key]
        matrix[row, : len(values)] = values
    return names, matrix


def _layer_shift(layer: LayerLatents, reference: LayerLatents | None) -> LayerShift:
    ref_mean, ref_var = gaussian_reference_moments(layer)
    if layer.kind == "bottleneck" and reference is not None:
        ref_mean, ref_var = reference.frame_mean, reference.frame_var
    standardised = _gaussian(layer.frame_mean, layer.frame_var, ref_mean, ref_var)
    values = dict(standardised)
    # Raw units: the frame's scale is the reference σ (running σ, or |γ| for the bottleneck).
    values["wasserstein"] = standardised["wasserstein"] * layer.scale
    ref_probs = reference.probabilities() if reference is not None else gaussian_reference(layer)
    width = float(layer.edges[1] - layer.edges[0])
    values["wasserstein_empirical"] = histogram_w1(layer.probabilities(), ref_probs, width)
    values["bhattacharyya_empirical"] = histogram_bhattacharyya(layer.probabilities(), ref_probs)
    return LayerShift(layer.name, layer.kind, values)


def _gaussian(mean_t, var_t, mean_s, var_s) -> dict[str, np.ndarray]:
    return {
        "wasserstein": gaussian_w2(mean_t, var_t, mean_s, var_s),
        "wasserstein_standardised": gaussian_w2_standardised(mean_t, var_t, mean_s, var_s),
        "bhattacharyya": gaussian_bhattacharyya(mean_t, var_t, mean_s, var_s),
        "kl": gaussian_kl(mean_t, var_t, mean_s, var_s),
    }
