"""Could the strokes choose the foreground threshold too? Measured, not adopted.

``python benchmarks/stroke_threshold.py --data ../shared/data/real_em --out docs``

After the stroke cure (``adabn+strokes``, the shipped recipe), a threshold is chosen on the
painted slice by class-balanced accuracy on the strokes (0.05 steps; ties: the one nearest
0.5), by several rules, and the target's held-out slices are scored at each:

- ``all``: every stroke, the training ones included, thresholds 0.05–0.95;
- ``held``: only the held-out strokes (the split the cure's guard uses, on the painted
  slice), 0.2–0.8, or 0.05–0.95 and kept at 0.5 unless it rises by ``margin``.

Writes ``strokes_threshold.json`` into ``--out`` and prints the table of docs/strokes.md
("A threshold chosen by the strokes"). ``--sweep`` scores the AdaBN and target-trained
models at fixed thresholds instead (no strokes; ``strokes_threshold_sweep.json``). Figures
are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from real_em import CPU, add_pair_options, load_volumes
from stroke_tables import DIRECTIONS, cell
from strokes import draw, painted_slices, pairs, scores_of, user_for

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.adapt.strokes import split_strokes
from napari_bnadapt.inference import PredictConfig, predict

#: name → (which strokes, lowest and highest threshold, margin over 0.5's accuracy).
RULES = {
    "0.5 (shipped)": (None, 0.5, 0.5, 0.0),
    "all strokes, 0.05–0.95": ("all", 0.05, 0.95, 0.0),
    "held-out strokes, 0.2–0.8": ("held", 0.2, 0.8, 0.0),
    "held-out strokes, 0.05–0.95, margin 0.02": ("held", 0.05, 0.95, 0.02),
}


def balanced(probabilities: np.ndarray, strokes: np.ndarray, threshold: float) -> float:
    """Class-balanced accuracy of ``probabilities >= threshold`` on the strokes."""
    foreground, background = probabilities[strokes == 2], probabilities[strokes == 1]
    return 0.5 * ((foreground >= threshold).mean() + (background < threshold).mean())


def choose(probabilities, strokes, low: float, high: float, margin: float) -> float:
    grid = np.round(np.arange(low, high + 1e-9, 0.05), 2)
    accuracy = np.array([balanced(probabilities, strokes, t) for t in grid])
    if accuracy.max() < balanced(probabilities, strokes, 0.5) + margin:
        return 0.5
    best = grid[accuracy >= accuracy.max() - 1e-9]
    return float(best[np.argmin(np.abs(best - 0.5))])


def run(pair, count: int, placement: str) -> dict:
    slices = painted_slices(pair.target, pair.seed, 1)
    strokes = draw(pair, count, slices, placement, user_for(pair))
    cured = adapt(pair.source, pair.target.train, AdaptConfig(cure="adabn+strokes", **CPU),
                  voxel_size=pair.target.voxel_size, strokes=strokes).model  # fmt: skip
    painted = strokes[slices]
    held = np.where(split_strokes(painted, 2, 2, 0), painted, 0)
    config, voxel = PredictConfig(**CPU), pair.target.voxel_size
    on_slice = predict(cured, pair.target.train[slices], config, voxel_size=voxel).probabilities
    on_test = predict(cured, pair.target.test, config, voxel_size=voxel).probabilities
    row = {"seed": pair.seed, "placement": placement, "strokes": count,
           "held_pixels": int((held > 0).sum())}  # fmt: skip
    for name, (which, low, high, margin) in RULES.items():
        chosen = {"all": painted, "held": held}.get(which)
        t = 0.5 if chosen is None else choose(on_slice, chosen, low, high, margin)
        found = scores_of(on_test >= t, pair.target.test_labels)
        row[name] = {"threshold": t, "dice": found["dice"], "rand_f": found["rand_f"]}
    return row


#: The thresholds of ``--sweep``.
SWEEP = (0.2, 0.35, 0.5, 0.65, 0.8, 0.9)


def sweep(pair) -> dict:
    """Dice and Rand F of the AdaBN and target-trained models at each of :data:`SWEEP`."""
    row: dict = {"seed": pair.seed}
    config, voxel = PredictConfig(**CPU), pair.target.voxel_size
    for name, model in (("adabn", pair.adabn), ("target_trained", pair.target_model)):
        found = predict(model, pair.target.test, config, voxel_size=voxel).probabilities
        row[name] = {
            str(t): {k: v for k, v in scores_of(found >= t, pair.target.test_labels).items()
                     if k in ("dice", "rand_f")}
            for t in SWEEP
        }  # fmt: skip
    return row


def print_table(rows: list[dict]) -> None:
    """Per setting and rule: Dice and Rand F (mean ± half the spread), the thresholds
    chosen, and the worst seed's change against 0.5."""
    print(
        "| direction | strokes | K | rule | thresholds | Dice | Rand F | worst Δ Dice / Δ Rand F |"
    )
    print("|---" * 8 + "|")
    for src, tgt in DIRECTIONS:
        direction = f"{src}->{tgt}"
        settings = dict.fromkeys((r["placement"], r["strokes"]) for r in rows
                                 if r["direction"] == direction)  # fmt: skip
        for placement, count in settings:
            group = [r for r in rows if r["direction"] == direction
                     and r["placement"] == placement and r["strokes"] == count]  # fmt: skip
            base = [r["0.5 (shipped)"] for r in group]
            for name in RULES:
                got = [r[name] for r in group]
                worst_dice = min(g["dice"] - b["dice"] for g, b in zip(got, base))
                worst_rand = min(g["rand_f"] - b["rand_f"] for g, b in zip(got, base))
                chosen = ", ".join(f"{g['threshold']:g}" for g in got)
                print(f"| {src} → {tgt} | {placement} | {count} | {name} | {chosen} | "
                      f"{cell([g['dice'] for g in got])} | {cell([g['rand_f'] for g in got])} | "
                      f"{worst_dice:+.3f} / {worst_rand:+.3f} |")  # fmt: skip


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    """The pair's options and the small grid's (K, placements), for this and
    stroke_cells.py."""
    add_pair_options(parser)
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--placements", nargs="+", default=["random", "corrections"])
    parser.add_argument("--threads", type=int, default=2)


def run_grid(volumes, args, run) -> list[dict]:
    """``run(pair, count, placement)`` for every seed, direction, placement and K."""
    rows = []
    for _, src, tgt, pair in pairs(volumes, args):
        for placement in args.placements:
            for count in args.counts:
                rows.append({"direction": f"{src}->{tgt}", **run(pair, count, placement)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_options(parser)
    parser.add_argument("--tables", type=Path, help="print the table of a results JSON")
    parser.add_argument("--sweep", action="store_true", help="fixed thresholds, no strokes")
    args = parser.parse_args()
    if args.tables:
        print_table(json.loads(args.tables.read_text()))
        return
    torch.set_num_threads(args.threads)
    volumes = load_volumes(args.data)
    if args.sweep:
        rows = [{"direction": f"{src}->{tgt}", **sweep(pair)}
                for _, src, tgt, pair in pairs(volumes, args)]  # fmt: skip
    else:
        rows = run_grid(volumes, args, run)
    name = "strokes_threshold_sweep.json" if args.sweep else "strokes_threshold.json"
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / name).write_text(json.dumps(rows, indent=1))
    if not args.sweep:
        print_table(rows)


if __name__ == "__main__":
    main()
