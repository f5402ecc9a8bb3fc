"""Diagnostics benchmark: does the measured shift rank the Dice gain of adaptation?

``python benchmarks/diagnostics.py [--out docs]`` runs the demo model on synthetic targets
(every named shift at three severities, plus the (μ1, μ2) grid), measures Dice before and
after default adaptation with the ground truth, diagnoses each target without labels, and
prints Spearman ρ between each label-free predictor and the actual gain. Also the cost of
a latent capture against a plain forward pass over the same patches. Figures are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from adaptation import forward_floor  # benchmarks/adaptation.py, beside this script
from reading import SHAPE, synthetic_cases

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.diagnostics import LatentConfig, capture_latents
from napari_bnadapt.diagnostics.diagnosis import diagnose
from napari_bnadapt.diagnostics.distances import spearman
from napari_bnadapt.diagnostics.quality import compare_masks
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.synthetic import SHIFTS, SOURCE, Domain, make_volume

CPU = {"device": "cpu"}


def measure(model, name: str, domain: Domain, seed: int, source: np.ndarray) -> dict:
    volume, truth = make_volume(SHAPE, domain, seed=seed)
    before = predict(model, volume, PredictConfig(**CPU))
    adapted = adapt(model, volume, AdaptConfig(**CPU)).model
    after = predict(adapted, volume, PredictConfig(**CPU))
    quality = compare_masks(before, after)
    diagnosis = diagnose(model, volume, adapted, config=LatentConfig(**CPU), quality=quality)
    with_source = diagnose(
        model, volume, adapted, source=source, config=LatentConfig(**CPU), quality=quality
    )
    figures = diagnosis.verdict.figures
    return {
        "predicted_benefit": diagnosis.verdict.predicted_benefit,
        "reading_with_source": with_source.verdict.reading,
        "predicted_benefit_with_source": with_source.verdict.predicted_benefit,
        "case": name,
        "domain": asdict(domain),
        "dice_before": dice(before.mask, truth),
        "dice_after": dice(after.mask, truth),
        "reading": diagnosis.verdict.reading,
        "first_layer_shift": figures["first_layer_shift"],
        "mean_shift": figures["mean_shift"],
        "deeper_layers_shift": figures["deeper_layers_shift"],
        "empirical_drop": figures["empirical_before"] - figures["empirical_after"],
        "residual_ratio": figures["residual_ratio"],
        "sliced_before": diagnosis.sliced["before"],
        "sliced_drop": diagnosis.sliced["before"] - diagnosis.sliced["after"],
        "agreement_dice": quality.agreement_dice,
        "confidence_change": quality.after.confident_fraction - quality.before.confident_fraction,
    }


def capture_cost(model) -> dict:
    volume, _ = make_volume((16, 512, 512), SHIFTS["brightness"], seed=5)
    config = LatentConfig(**CPU)
    # The same patches as adaptation with its defaults, timed without any measurement.
    floor = min(forward_floor(model, volume, AdaptConfig(**CPU)) for _ in range(3))
    best, capture = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        capture = capture_latents(model, volume, config)
        best = min(best, time.perf_counter() - started)
    layers = len(capture.layers)
    channels = sum(layer.channels for layer in capture.layers.values())
    return {
        "patches": capture.patches,
        "forward_s": floor,
        "capture_s": best,
        "ratio": best / floor,
        "layers": layers,
        "channels": channels,
        "bins": config.bins,
        "histogram_bytes": sum(layer.counts.nbytes for layer in capture.layers.values()),
        "total_bytes": capture.nbytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--cost-only", action="store_true", help="only time the capture")
    args = parser.parse_args()
    model = load_model("demo")
    if args.cost_only:
        print(json.dumps(capture_cost(model), indent=1))
        return
    source = make_volume(SHAPE, SOURCE, seed=59)[0]
    rows = [
        measure(model, name, domain, seed=60 + i, source=source)
        for i, (name, domain) in enumerate(synthetic_cases())
    ]
    gain = np.array([r["dice_after"] - r["dice_before"] for r in rows])
    predictors = (
        "predicted_benefit_with_source", "predicted_benefit", "first_layer_shift",
        "mean_shift", "empirical_drop", "sliced_drop", "confidence_change", "agreement_dice",
    )  # fmt: skip
    correlations = {p: spearman([r[p] for r in rows], gain) for p in predictors}
    print(
        "| case | Dice before | after | gain | reading | with source images "
        "| first-layer shift (σ) | residual |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r, g in zip(rows, gain):
        print(
            f"| {r['case']} | {r['dice_before']:.3f} | {r['dice_after']:.3f} | {g:+.3f} | "
            f"{r['reading']} | {r['reading_with_source']} | {r['first_layer_shift']:.2f} | "
            f"{r['residual_ratio']:.0%} |"
        )
    print("\n| predictor | Spearman ρ with the Dice gain |\n|---|---|")
    for name, rho in correlations.items():
        print(f"| {name} | {rho:+.2f} |")
    for key in ("reading", "reading_with_source"):
        readings = {}
        for r, g in zip(rows, gain):
            readings.setdefault(r[key], []).append(g)
        print(
            f"\n| {key} | cases | mean gain | gain > 0.05 | gain < −0.05 |\n|---|---|---|---|---|"
        )
        for reading, gains in sorted(readings.items()):
            gains = np.array(gains)
            print(
                f"| {reading} | {len(gains)} | {gains.mean():+.3f} | {np.sum(gains > 0.05)} | "
                f"{np.sum(gains < -0.05)} |"
            )
    cost = capture_cost(model)
    print(
        f"\nlatent capture: {cost['capture_s']:.2f} s vs forward pass {cost['forward_s']:.2f} s "
        f"over the same {cost['patches']} patches ({cost['ratio']:.2f}×); "
        f"{cost['layers']} layers, {cost['channels']} channels, {cost['bins']} bins: "
        f"histograms {cost['histogram_bytes'] / 1e6:.2f} MB, all {cost['total_bytes'] / 1e6:.2f} MB"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"cases": rows, "spearman": correlations, "capture_cost": cost}
    (args.out / "diagnostics_results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
