"""How far can the stroke cure go when the "strokes" are whole labelled slices? A ceiling.

``python benchmarks/stroke_dense.py --data ../shared/data/real_em --out docs``

The simulated user paints at most a few hundred pixels. Here every pixel of one (or three)
of the target's training slices is labelled from its ground truth (1 = background,
2 = membrane) and given to ``adabn+strokes`` as its strokes: what no stroke budget can
exceed with this recipe. Variants: the shipped recipe, and without the anchor to the
label-free predictions (step size 10⁻³); ``--no-guard`` holds nothing out (fixed steps:
``--stroke-steps``, no stop rule, no guard). ``--scratch`` asks what the same slices'
labels carry for any learner: the target-trained recipe (a U-Net from scratch, ``--steps``
steps, as ``bnadapt train``) on those slices alone instead of all 200. Scored on the held-out slices, 3 seeds, both
directions. Writes ``strokes_dense.json`` into ``--out``; figures are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from real_em import CPU, add_pair_options, load_volumes
from stroke_variants import nothing_held_out
from strokes import painted_slices, pairs, scores_of

from napari_bnadapt.adapt import AdaptConfig, adapt, stroke_cure, stroke_training
from napari_bnadapt.adapt import strokes as stroke_module
from napari_bnadapt.arrays.resampling import resample
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.training import TrainConfig, train

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


def pixel_loss(logits, labels, where):
    """Cross-entropy over the labelled pixels, each pixel weighing the same (the
    target-trained recipe's weighting), not each class (binary models)."""
    values = logits[:, 0][where]
    wanted = (labels[where] == 2).float()
    return F.binary_cross_entropy_with_logits(values, wanted) if len(values) else logits.sum() * 0


def batch_statistics(run_padded):
    """``run_padded`` in BatchNorm's training mode while gradients flow (statistics of each
    batch, as when training from scratch), in eval mode for the held-out checks."""

    def run(module, x, divisor):
        if not torch.is_grad_enabled():
            return run_padded(module, x, divisor)
        module.train()
        try:
            return run_padded(module, x, divisor)
        finally:
            module.eval()

    return run


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


def from_scratch(pair, count: int, steps: int, scale: str = "target") -> dict:
    """The target-trained recipe on ``count`` labelled slices instead of every training slice,
    at the target's voxel size, or (``scale="source"``) resampled in the plane to the source
    model's, where the stroke cure learns."""
    slices, labels = whole_slices(pair, count)
    target = pair.target
    images, truth, voxel = target.train[slices], labels[slices] == 2, target.voxel_size
    if scale == "source":
        voxel = (target.voxel_size[0], *pair.source.voxel_size[-2:])
        factors = [t / v for t, v in zip(target.voxel_size, voxel)]
        images, truth = resample(images, factors), resample(truth, factors, order=0)
    config = TrainConfig(steps=steps, seed=pair.seed, validate_every=max(1, steps // 4), **CPU)
    start = time.perf_counter()
    result = train([images], [truth], config, names=[target.name], voxel_size=voxel)
    mask = predict(result.model, target.test, PredictConfig(**CPU),
                   voxel_size=target.voxel_size).mask  # fmt: skip
    return {"seed": pair.seed, "slices": slices, "variant": f"from scratch, {steps} steps, {scale}'s scale",
            "seconds": round(time.perf_counter() - start, 1),
            **scores_of(mask, target.test_labels)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pair_options(parser)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 3], help="slices")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--directions", nargs="+", default=["vnc->neuroproof", "neuroproof->vnc"])
    parser.add_argument("--no-guard", action="store_true", help="hold nothing out")
    parser.add_argument("--stroke-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scratch", action="store_true", help="a U-Net from scratch on the slices")
    parser.add_argument("--loss", choices=["balanced", "pixel"], default="balanced",
                        help="pixel: every labelled pixel weighs the same")  # fmt: skip
    parser.add_argument("--batch-statistics", action="store_true",
                        help="BatchNorm in training mode while fine-tuning")  # fmt: skip
    parser.add_argument("--scratch-scale", choices=["target", "source"], default="target")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.no_guard:  # neither the held-out strokes nor the merged cells undo a run
        stroke_module.split_strokes = nothing_held_out
        stroke_cure.cells_merged = lambda *_: False
    if args.loss == "pixel":
        stroke_training.stroke_loss = pixel_loss
    if args.batch_statistics:
        stroke_training.run_padded = batch_statistics(stroke_training.run_padded)
    rows = []
    for _, src, tgt, pair in pairs(load_volumes(args.data), args):
        if f"{src}->{tgt}" not in args.directions:
            continue
        for count in args.counts:
            if args.scratch:
                row = {
                    "direction": f"{src}->{tgt}",
                    **from_scratch(pair, count, args.steps, args.scratch_scale),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            for variant in args.variants:
                row = {"direction": f"{src}->{tgt}", "guard": not args.no_guard,
                       "loss": args.loss, "batch_statistics": args.batch_statistics,
                       **run(pair, count, variant, args.stroke_steps)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = "strokes_dense_no_guard.json" if args.no_guard else "strokes_dense.json"
        if args.loss != "balanced" or args.batch_statistics:
            extra = "_pixel_loss" * (args.loss == "pixel") + "_bn_train" * args.batch_statistics
            name = name.replace(".json", f"{extra}.json")
        name = f"strokes_dense_scratch_{args.scratch_scale}.json" if args.scratch else name
        (args.out / name).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
