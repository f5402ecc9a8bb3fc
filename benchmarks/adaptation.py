"""Adaptation benchmark: Dice per mode and shift, the (μ1, μ2) map, timing ratios.

``python benchmarks/adaptation.py [--out docs]`` prints markdown tables and writes
``adaptation_grid.png`` and ``adaptation_results.json`` into ``--out``. Figures are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from napari_bnadapt.adabn.sampling import (
    batches,
    patch_shape,
    prepare_target,
    read_patches,
    sample_patches,
)
from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.model.unet import pad_to_multiple
from napari_bnadapt.synthetic import SHIFTS, SOURCE, make_volume

CPU = {"device": "cpu"}
MODES = ("standard", "consistent", "ema")


def dice_of(model, volume, truth) -> float:
    return dice(predict(model, volume, PredictConfig(**CPU)).mask, truth)


def shift_table(model) -> list[dict]:
    rows = []
    for name, domain in SHIFTS.items():
        volume, truth = make_volume((12, 192, 192), domain, seed=31)
        row = {"shift": name, "before": dice_of(model, volume, truth)}
        for mode in MODES:
            adapted = adapt(model, volume, AdaptConfig(mode=mode, **CPU)).model
            row[mode] = dice_of(adapted, volume, truth)
        rows.append(row)
    return rows


def grid(model, values) -> list[dict]:
    cells = []
    for mu1 in values:
        for mu2 in values:
            volume, truth = make_volume(
                (6, 128, 128), SOURCE.shifted(mu_foreground=mu1, mu_background=mu2), seed=41
            )
            before = dice_of(model, volume, truth)
            after = dice_of(adapt(model, volume, AdaptConfig(**CPU)).model, volume, truth)
            cells.append({"mu1": mu1, "mu2": mu2, "before": before, "after": after})
    return cells


def forward_floor(model, volume, config: AdaptConfig) -> float:
    """Seconds for one plain eval-mode forward pass over the patches adaptation samples."""
    targets = prepare_target(model, volume)
    patches = sample_patches(
        targets, model.dims, patch_shape(model, None), config.patches, config.seed
    )
    module = model.module.eval()
    started = time.perf_counter()
    with torch.no_grad():
        for group in batches(patches, config.batch_size):
            module(pad_to_multiple(torch.from_numpy(read_patches(targets, group)), model.divisor))
    return time.perf_counter() - started


def timing(model) -> list[dict]:
    volume, _ = make_volume((64, 512, 512), SHIFTS["brightness"], seed=5)
    rows = []
    for patches in (64, 256):
        config = AdaptConfig(patches=patches, **CPU)
        floor = min(forward_floor(model, volume, config) for _ in range(2))
        row = {"patches": patches, "forward_s": floor}
        for mode in ("standard", "consistent"):
            best = min(
                _timed(
                    lambda m=mode, n=patches: adapt(
                        model, volume, AdaptConfig(mode=m, patches=n, **CPU)
                    )
                )
                for _ in range(2)
            )
            row[f"{mode}_s"] = best
            row[f"{mode}_ratio"] = best / floor
        rows.append(row)
    default_wall = _timed(lambda: adapt(model, volume, AdaptConfig(**CPU)))
    rows.append({"default_wall_s_512x512x64": default_wall})
    return rows


def convergence(model) -> list[dict]:
    volume, _ = make_volume((64, 512, 512), SHIFTS["brightness"], seed=5)
    record = adapt(model, volume, AdaptConfig(patches=512, **CPU)).record
    return [{"patches": c["batch"] * 8, "change_sigma": c["change"]} for c in record["convergence"]]


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def plot_grid(cells: list[dict], values, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(values)
    before = np.array([c["before"] for c in cells]).reshape(n, n)
    after = np.array([c["after"] for c in cells]).reshape(n, n)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    for ax, data, title, cmap, limits in (
        (axes[0], before, "Dice, source model", "viridis", (0, 1)),
        (axes[1], after, "Dice, BN-adapted", "viridis", (0, 1)),
        (axes[2], after - before, "gain (adapted − source)", "RdBu", (-1, 1)),
    ):
        image = ax.imshow(data, origin="lower", cmap=cmap, vmin=limits[0], vmax=limits[1])
        ax.set_xticks(range(n), [f"{v:.2f}" for v in values])
        ax.set_yticks(range(n), [f"{v:.2f}" for v in values])
        ax.set_xlabel("target μ2 (background)")
        ax.set_ylabel("target μ1 (structures)")
        ax.set_title(title)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"Source domain: μ1 = {SOURCE.mu_foreground}, μ2 = {SOURCE.mu_background}")
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"torch threads: {torch.get_num_threads()}")
    model = load_model("demo")
    results = {"shifts": shift_table(model)}
    print("\n| shift | source model | standard | consistent | ema |\n|---|---|---|---|---|")
    for r in results["shifts"]:
        print(
            f"| {r['shift']} | {r['before']:.3f} | {r['standard']:.3f} | {r['consistent']:.3f} | {r['ema']:.3f} |"
        )
    values = [0.1, 0.3, 0.5, 0.7, 0.9]
    results["grid"] = grid(model, values)
    plot_grid(results["grid"], values, args.out / "adaptation_grid.png")
    print(
        "\n| μ1 \\ μ2 | "
        + " | ".join(f"{v:.1f}" for v in values)
        + " |\n"
        + "|---" * (len(values) + 1)
        + "|"
    )
    for mu1 in values:
        cells = [c for c in results["grid"] if c["mu1"] == mu1]
        print(
            f"| {mu1:.1f} | "
            + " | ".join(f"{c['before']:.2f} → {c['after']:.2f}" for c in cells)
            + " |"
        )
    results["convergence"] = convergence(model)
    print("\n| patches | change of statistics (σ) |\n|---|---|")
    for c in results["convergence"]:
        if c["patches"] in (16, 32, 64, 128, 256, 504):
            print(f"| {c['patches']} | {c['change_sigma']:.4f} |")
    results["timing"] = timing(model)
    print("\n| patches | forward pass (floor) | standard | consistent |\n|---|---|---|---|")
    for t in results["timing"][:-1]:
        print(
            f"| {t['patches']} | {t['forward_s']:.2f} s | {t['standard_s']:.2f} s ({t['standard_ratio']:.2f}×) "
            f"| {t['consistent_s']:.2f} s ({t['consistent_ratio']:.2f}×) |"
        )
    print(
        f"\ndefault adaptation on a 512×512×64 uint8 volume: {results['timing'][-1]['default_wall_s_512x512x64']:.2f} s (CPU)"
    )
    (args.out / "adaptation_results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
