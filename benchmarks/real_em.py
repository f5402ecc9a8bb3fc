"""Real EM benchmark: every cure on the shared cross-domain pair, both directions, over seeds.

``python benchmarks/real_em.py --data ../shared/data/real_em --out docs [--seeds 0 1 2]``
trains the source and target models of each seed (cached in ``--cache``), adapts each
source model to the other volume's training slices with every cure (no labels), scores
Dice on the other volume's held-out slices, and writes ``real_em_results.json`` and
``real_em_masks.png`` into ``--out``. It prints the markdown tables of docs/real_em.md.
Figures are reported, never asserted. Takes about 15 min per seed on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from adaptation import forward_floor  # benchmarks/adaptation.py, beside this script

from napari_bnadapt.adabn.sampling import to_model_scale
from napari_bnadapt.adapt import CURES, AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.images import read_named_image
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.training import TrainConfig, train

CPU = {"device": "cpu"}
#: Training slices and held-out slices of each volume (as in the issue's table).
SPLITS = {"vnc": (slice(0, 16), slice(16, 20)), "neuroproof": (slice(0, 200), slice(200, 250))}
NAMES = {"vnc": "VNC ssTEM", "neuroproof": "NeuroProof FIB-SEM"}


@dataclass
class Volume:
    name: str
    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    voxel_size: tuple[float, ...]


def load_volumes(data: Path) -> dict[str, Volume]:
    volumes = {}
    for name, (train_part, test_part) in SPLITS.items():
        image = read_named_image(data / f"{name}_img.tif")
        labels = np.asarray(read_named_image(data / f"{name}_membranes.tif").data)
        pixels = np.asarray(image.data)
        volumes[name] = Volume(
            name, pixels[train_part], labels[train_part], pixels[test_part], labels[test_part],
            image.voxel_size,
        )  # fmt: skip
    return volumes


def trained(volume: Volume, seed: int, steps: int, cache: Path):
    """The model of the issue's recipe (``bnadapt train --steps 800 --seed S``), cached."""
    path = cache / f"{volume.name}_seed{seed}_steps{steps}.pt"
    if path.exists():
        return load_model(path)
    config = TrainConfig(steps=steps, seed=seed, validate_every=max(1, steps // 4), **CPU)
    result = train([volume.train], [volume.train_labels], config, names=[volume.name],
                   voxel_size=volume.voxel_size)  # fmt: skip
    save_model(result.model, path)
    return load_model(path)


def score(model, volume: Volume, rescale: bool = True) -> tuple[float, np.ndarray]:
    voxel = volume.voxel_size if rescale else None
    mask = predict(model, volume.test, PredictConfig(**CPU), voxel_size=voxel).mask
    return dice(mask, volume.test_labels), mask


def direction(source, target_model, target: Volume, cures, seed: int) -> dict:
    """Every cure from ``source`` to ``target``, with the references of the same seed."""
    row: dict = {"seed": seed}
    row["source_only"], _ = score(source, target, rescale=False)
    row["rescale_only"], _ = score(source, target)
    row["target_trained"], _ = score(target_model, target)
    started = time.perf_counter()
    adabn_plain = adapt(source, target.train, AdaptConfig(**CPU)).model
    row["adabn_no_rescale"], _ = score(adabn_plain, target, rescale=False)
    row["seconds_forward"] = time.perf_counter() - started  # one estimation pass as unit
    row["cures"], row["scores"], row["seconds"] = {}, {}, {}
    for cure in cures:
        started = time.perf_counter()
        result = adapt(source, target.train, AdaptConfig(cure=cure, **CPU),
                       voxel_size=target.voxel_size)  # fmt: skip
        row["seconds"][cure] = time.perf_counter() - started
        row["cures"][cure], _ = score(result.model, target)
        row["details_" + cure] = result.record.details
        if cure == "auto":
            row["auto_chosen"] = result.record.details["auto"]["chosen"]
            row["scores"] = result.record.details["auto"]["scores"]
    return row


def masks_figure(volumes: dict[str, Volume], cache: Path, steps: int, out: Path) -> Path:
    """One held-out slice per direction: image, truth, and the masks of seed 0's models."""
    from matplotlib.figure import Figure

    models = {name: trained(v, 0, steps, cache) for name, v in volumes.items()}
    panels = ("image", "ground truth", "source only", "AdaBN (no rescale)", "AdaBN (rescaled)",
              "auto", "target-trained")  # fmt: skip
    figure = Figure(figsize=(2.2 * len(panels), 5.0), constrained_layout=True)
    axes = figure.subplots(2, len(panels))
    for row, (src, tgt) in enumerate((("vnc", "neuroproof"), ("neuroproof", "vnc"))):
        target = volumes[tgt]
        adabn = adapt(models[src], target.train, AdaptConfig(**CPU)).model
        auto = adapt(models[src], target.train, AdaptConfig(cure="auto", **CPU),
                     voxel_size=target.voxel_size).model  # fmt: skip
        plain = adapt(models[src], target.train, AdaptConfig(**CPU),
                      voxel_size=target.voxel_size).model  # fmt: skip
        shown = [
            score(models[src], target, rescale=False), score(adabn, target, rescale=False),
            score(plain, target), score(auto, target), score(models[tgt], target),
        ]  # fmt: skip
        z = 0 if tgt == "vnc" else 10
        crop = (z, slice(0, 512), slice(0, 512)) if tgt == "vnc" else (z, slice(None), slice(None))
        images = [target.test[crop], target.test_labels[crop], *(m[crop] for _, m in shown)]
        for col, (ax, picture, title) in enumerate(zip(axes[row], images, panels)):
            ax.imshow(picture, cmap="gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            extra = f"\nDice {shown[col - 2][0]:.2f}" if col >= 2 else ""
            ax.set_title(f"{title}{extra}", fontsize=8)
        axes[row][0].set_ylabel(f"{NAMES[src]} →\n{NAMES[tgt]}", fontsize=8)
    path = out / "real_em_masks.png"
    figure.savefig(path, dpi=110)
    return path


def timing(volumes: dict[str, Volume], cache: Path, steps: int, cures) -> dict:
    """Seconds of each cure over one plain forward pass on the same sampled patches (seed 0,
    best of two runs), per direction: run alone, on an otherwise idle machine."""
    out = {}
    for src, tgt in (("vnc", "neuroproof"), ("neuroproof", "vnc")):
        model, target = trained(volumes[src], 0, steps, cache), volumes[tgt]
        scaled = to_model_scale(model, target.train, target.voxel_size)
        floor = min(forward_floor(model, scaled, AdaptConfig(**CPU)) for _ in range(2))
        row = {"forward_s": floor}
        for cure in cures:
            seconds = []
            for _ in range(2 if cure != "self-training" else 1):
                started = time.perf_counter()
                adapt(model, scaled, AdaptConfig(cure=cure, **CPU))
                seconds.append(time.perf_counter() - started)
            row[cure] = min(seconds) / floor
        out[f"{src}->{tgt}"] = row
        print(json.dumps({k: round(v, 2) for k, v in row.items()}), flush=True)
    return out


def oracles(volumes: dict[str, Volume], cache: Path, steps: int, seeds) -> dict:
    """How much of the remaining gap is annotation style: AdaBN's masks (rescaled) scored
    with the threshold, or the dilation/erosion, chosen *with the labels* (never done by
    the product: an upper bound of what fixing the boundary width alone gives)."""
    from scipy import ndimage

    out: dict[str, list] = {}
    for seed in seeds:
        for src, tgt in (("vnc", "neuroproof"), ("neuroproof", "vnc")):
            model, target = trained(volumes[src], seed, steps, cache), volumes[tgt]
            adapted = adapt(model, target.train, AdaptConfig(**CPU), voxel_size=target.voxel_size)
            probs = predict(adapted.model, target.test, PredictConfig(**CPU),
                            voxel_size=target.voxel_size).probabilities  # fmt: skip
            thresholds = {
                t: dice(probs >= t, target.test_labels) for t in np.arange(0.1, 0.95, 0.1)
            }
            mask, widths = probs >= 0.5, {}
            plane = np.ones((1, 3, 3), bool)
            for k in range(-3, 4):
                if k == 0:
                    changed = mask
                elif k > 0:
                    changed = ndimage.binary_dilation(mask, plane, iterations=k)
                else:
                    changed = ndimage.binary_erosion(mask, plane, iterations=-k)
                widths[k] = dice(changed, target.test_labels)
            best_t, best_k = max(thresholds, key=thresholds.get), max(widths, key=widths.get)
            row = {"seed": seed, "adabn": widths[0], "best_threshold": float(best_t),
                   "threshold_dice": thresholds[best_t], "best_width_px": best_k,
                   "width_dice": widths[best_k]}  # fmt: skip
            out.setdefault(f"{src}->{tgt}", []).append(row)
            print(f"{src}->{tgt}", json.dumps(row, default=float), flush=True)
    return out


def summarise(rows: list[dict]) -> dict:
    """Mean and spread (max − min) over seeds of every figure."""

    def stats(values):
        values = np.asarray(values, float)
        return {"mean": float(values.mean()), "spread": float(values.max() - values.min())}

    out = {
        key: stats([r[key] for r in rows])
        for key in ("source_only", "rescale_only", "adabn_no_rescale", "target_trained")
    }
    for cure in rows[0]["cures"]:
        out[cure] = stats([r["cures"][cure] for r in rows])
    return out  # fmt: skip


def print_tables(results: dict) -> None:
    print(
        "| direction | source-only | rescaled | AdaBN (0.1 default) | best cure | auto | target-trained | gap closed by auto |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, summary in results["summary"].items():
        src, tgt = key.split("->")
        cures = {c: v for c, v in summary.items() if c in CURES and c != "auto"}
        best = max(cures, key=lambda c: cures[c]["mean"])
        low, high = summary["source_only"]["mean"], summary["target_trained"]["mean"]
        auto = summary.get("auto", {"mean": float("nan"), "spread": 0})
        closed = (auto["mean"] - low) / (high - low)
        cell = lambda s: f"{s['mean']:.3f} ± {s['spread'] / 2:.3f}"  # noqa: E731
        print(f"| {NAMES[src]} → {NAMES[tgt]} | {cell(summary['source_only'])} | "
              f"{cell(summary['rescale_only'])} | {cell(summary['adabn_no_rescale'])} | "
              f"{best} {cell(cures[best])} | {cell(auto)} | {cell(summary['target_trained'])} | "
              f"{closed:.0%} |")  # fmt: skip
    print()
    for key, summary in results["summary"].items():
        print(f"{key}: " + ", ".join(
            f"{c} {s['mean']:.3f}±{s['spread'] / 2:.3f}" for c, s in summary.items()))  # fmt: skip


def add_pair_options(parser: argparse.ArgumentParser) -> None:
    """The data, output, model cache, seeds and training steps (this and strokes.py)."""
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real_em"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bnadapt_real_em"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pair_options(parser)
    parser.add_argument("--cures", nargs="+", default=list(CURES))
    parser.add_argument("--figure-only", action="store_true", help="only draw the masks figure")
    parser.add_argument("--timing-only", action="store_true", help="only time the cures")
    parser.add_argument("--oracle-only", action="store_true", help="only the label oracles")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    volumes = load_volumes(args.data)
    if args.oracle_only:
        found = oracles(volumes, args.cache, args.steps, args.seeds)
        if args.out:
            (args.out / "real_em_oracles.json").write_text(
                json.dumps(found, indent=1, default=float)
            )
        return
    if args.timing_only:
        times = timing(volumes, args.cache, args.steps, args.cures)
        if args.out:
            (args.out / "real_em_timing.json").write_text(json.dumps(times, indent=1))
        return
    if args.figure_only:
        print(f"wrote {masks_figure(volumes, args.cache, args.steps, args.out or Path('.'))}")
        return
    rows: dict[str, list] = {}
    for seed in args.seeds:
        models = {name: trained(v, seed, args.steps, args.cache) for name, v in volumes.items()}
        for src, tgt in (("vnc", "neuroproof"), ("neuroproof", "vnc")):
            row = direction(models[src], models[tgt], volumes[tgt], args.cures, seed)
            rows.setdefault(f"{src}->{tgt}", []).append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.startswith("details")},
                             default=float), flush=True)  # fmt: skip
    results = {"rows": rows, "summary": {k: summarise(v) for k, v in rows.items()}}
    print_tables(results)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "real_em_results.json").write_text(json.dumps(results, indent=1, default=float))
        masks_figure(volumes, args.cache, args.steps, args.out)


if __name__ == "__main__":
    main()
