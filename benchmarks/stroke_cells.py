"""Do the strokes merge cells? A label-free check, measured against Rand F on the real pair.

``python benchmarks/stroke_cells.py --data ../shared/data/real_em --out docs``

Strokes can open gaps in membranes: Dice may rise while neighbouring cells merge and Rand F
collapses, which neither Dice nor the foreground share shows. Without labels, the cells of
a mask (:func:`napari_bnadapt.diagnostics.quality.cells_per_slice`) can be counted. This
runs the shipped cure (``adabn+strokes``) on the grid's strokes (K = 10, 20 on one slice,
random and corrections, 3 seeds, both directions), counts the cells of AdaBN's and the
taught mask on the painted slice, and scores the held-out slices. The least share of cells
kept by runs that did not lose Rand F sets
:data:`napari_bnadapt.diagnostics.quality.MERGED`, below which the napari message cautions.
The cure records the same count at the model's scale (``details["strokes"]["cells"]``,
what the CLI's and napari's caution read), kept beside it. Writes ``strokes_cells.json``
into ``--out``; figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json

import torch
from real_em import CPU, load_volumes
from stroke_threshold import add_grid_options, run_grid
from strokes import draw, painted_slices, scores_of, test_mask, user_for

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.diagnostics.quality import MERGED, cells_per_slice
from napari_bnadapt.inference import PredictConfig, predict


def run(pair, count: int, placement: str) -> dict:
    slices = painted_slices(pair.target, pair.seed, 1)
    strokes = draw(pair, count, slices, placement, user_for(pair))
    result = adapt(pair.source, pair.target.train, AdaptConfig(cure="adabn+strokes", **CPU),
                   voxel_size=pair.target.voxel_size, strokes=strokes)  # fmt: skip
    config, voxel = PredictConfig(**CPU), pair.target.voxel_size
    painted = pair.target.train[slices]
    cells = {
        name: cells_per_slice(predict(model, painted, config, voxel_size=voxel).mask)
        for name, model in (("adabn", pair.adabn), ("taught", result.model))
    }
    taught = scores_of(test_mask(result.model, pair.target), pair.target.test_labels)
    adabn = pair.references["adabn"]
    return {
        "seed": pair.seed, "placement": placement, "strokes": count,
        "kept": result.record.details["strokes"]["guard"]["kept"], "cells": cells,
        # What the cure itself recorded (the painted slice at the model's scale): the
        # figures its caution reads.
        "recorded": result.record.details["strokes"].get("cells"),
        "share": round(cells["taught"] / max(cells["adabn"], 1.0), 3),
        "delta_dice": round(taught["dice"] - adabn["dice"], 4),
        "delta_rand_f": round(taught["rand_f"] - adabn["rand_f"], 4),
    }  # fmt: skip


def print_table(rows: list[dict]) -> None:
    print("| direction | strokes | K | seed | cells AdaBN → taught | share | Δ Dice | Δ Rand F |")
    print("|---" * 8 + "|")
    for row in sorted(rows, key=lambda r: r["share"]):
        flag = " **(cautioned)**" if row["share"] < MERGED else ""
        print(f"| {row['direction']} | {row['placement']} | {row['strokes']} | {row['seed']} | "
              f"{row['cells']['adabn']:.0f} → {row['cells']['taught']:.0f} | "
              f"{row['share']:.2f}{flag} | {row['delta_dice']:+.3f} | "
              f"{row['delta_rand_f']:+.3f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run_grid(load_volumes(args.data), args, run)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "strokes_cells.json").write_text(json.dumps(rows, indent=1))
    print_table(rows)


if __name__ == "__main__":
    main()
