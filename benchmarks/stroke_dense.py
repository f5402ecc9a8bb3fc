"""How far can the stroke cure go when the "strokes" are whole labelled slices? A ceiling.

``python benchmarks/stroke_dense.py --data ../shared/data/real_em --out docs``

The simulated user paints at most a few hundred pixels. Here every pixel of one (or three)
of the target's training slices is labelled from its ground truth (1 = background,
2 = membrane) and given to ``adabn+strokes`` as its strokes: what no stroke budget can
exceed with this recipe. Variants: the shipped recipe, and without the anchor to the
label-free predictions (step size 10⁻³); ``--no-guard`` holds nothing out (fixed steps:
``--stroke-steps``, no stop rule, no guard). Scored on the held-out slices, 3 seeds, both
directions. Writes ``strokes_dense.json`` into ``--out``; figures are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from real_em import CPU, add_pair_options, load_volumes
from stroke_variants import nothing_held_out
from strokes import painted_slices, pairs, scores_of

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.adapt import strokes as stroke_module
from napari_bnadapt.inference import PredictConfig, predict

#: name → AdaptConfig options.
VARIANTS = {
    "shipped": {},
    "no anchor, step 1e-3": {"stroke_consistency": 0.0, "stroke_learning_rate": 1e-3},
}


def whole_slices(pair, count: int) -> tuple[list[int], np.ndarray]:
    """Every pixel of ``count`` training slices labelled: 2 = membrane, 1 = the rest."""
    target = pair.target
    slices = painted_slices(target, pair.seed, count)
    labels = np.zeros(target.train.shape, np.uint8)
    for z in slices:
        labels[z] = np.where(target.train_labels[z] > 0, 2, 1)
    return slices, labels


def run(pair, count: int, variant: str, steps: int) -> dict:
    slices, labels = whole_slices(pair, count)
    config = AdaptConfig(cure="adabn+strokes", stroke_steps=steps, **CPU, **VARIANTS[variant])
    target = pair.target
    result = adapt(pair.source, target.train, config, voxel_size=target.voxel_size,
                   strokes=labels)  # fmt: skip
    mask = predict(result.model, target.test, PredictConfig(**CPU),
                   voxel_size=target.voxel_size).mask  # fmt: skip
    details = result.record.details["strokes"]
    return {"seed": pair.seed, "slices": slices, "variant": variant,
            "kept": details["guard"]["kept"], "steps": details["steps"],
            "seconds": details["seconds"], **scores_of(mask, target.test_labels)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pair_options(parser)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 3], help="slices")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--directions", nargs="+", default=["vnc->neuroproof", "neuroproof->vnc"])
    parser.add_argument("--no-guard", action="store_true", help="hold nothing out")
    parser.add_argument("--stroke-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.no_guard:
        stroke_module.split_strokes = nothing_held_out
    rows = []
    for _, src, tgt, pair in pairs(load_volumes(args.data), args):
        if f"{src}->{tgt}" not in args.directions:
            continue
        for count in args.counts:
            for variant in args.variants:
                row = {"direction": f"{src}->{tgt}", "guard": not args.no_guard,
                       **run(pair, count, variant, args.stroke_steps)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = "strokes_dense_no_guard.json" if args.no_guard else "strokes_dense.json"
        (args.out / name).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
