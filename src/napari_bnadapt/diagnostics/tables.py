"""The diagnosis as tables: per layer (overview) and per layer channel (every distance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.files import write_csv
from .diagnosis import Diagnosis
from .shift import layer_scores

#: Quantile levels reported per channel (in standardised frame units).
QUANTILES = (0.05, 0.5, 0.95)


def layer_overview(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """Per layer: mean standardised W2 before / after and the empirical residual."""
    before = layer_scores(diagnosis.shift_before)
    after = layer_scores(diagnosis.shift_after) if diagnosis.shift_after else {}
    residual = (
        layer_scores(diagnosis.shift_after, "wasserstein_empirical")
        if diagnosis.shift_after
        else {}
    )
    return [
        {"layer": name, "before": value, "after": after.get(name), "residual": residual.get(name)}
        for name, value in before.items()
    ]


def channel_rows(diagnosis: Diagnosis, layer: str | None = None) -> list[dict[str, Any]]:
    """One row per (layer, channel): every distance before, and after when measured."""
    rows = []
    for name, shift in diagnosis.shift_before.items():
        if layer is not None and name != layer:
            continue
        after = diagnosis.shift_after.get(name) if diagnosis.shift_after else None
        spreads = {
            label: capture.layers[name].quantiles(QUANTILES)
            for label, capture in (("before", diagnosis.before), ("after", diagnosis.after))
            if capture is not None and name in capture.layers
        }
        for channel in range(shift.channels):
            row: dict[str, Any] = {"layer": name, "channel": channel}
            row.update({k: float(v[channel]) for k, v in shift.values.items()})
            if after is not None:
                row.update({f"{k}_after": float(v[channel]) for k, v in after.values.items()})
            for label, values in spreads.items():
                for level, value in zip(QUANTILES, values[channel]):
                    row[f"q{round(level * 100):02d}_{label}"] = float(value)
            rows.append(row)
    return rows


def write_shift_csv(diagnosis: Diagnosis, path: str | Path, layer: str | None = None) -> Path:
    """Every per-channel distance (before, and after) as CSV, one row per layer channel."""
    return write_csv(channel_rows(diagnosis, layer), path, empty_header=("layer", "channel"))
