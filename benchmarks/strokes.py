"""Strokes benchmark: a simulated user paints a few strokes on the real pair; what they buy.

``python benchmarks/strokes.py --data ../shared/data/real_em --out docs [--seeds 0 1 2]``

For each seed and direction (the source and target-trained models of benchmarks/real_em.py,
cached in ``--cache``), a simulated user (benchmarks/stroke_user.py) paints K = 2, 5, 10,
20, 50 strokes from the target's ground truth on one training slice (and K = 20, 50 over
three slices), placed at random, where the label-free model is unsure, or only where its
mask is wrong (``corrections``, what the napari section asks for); every method
learns from the same strokes and is scored on the target's held-out slices with Dice and
the ISBI 2012 scores (Rand F, VI split/merge, boundary F1):

- ``adabn+strokes``: the stroke cure after AdaBN (the product);
- ``strokes``: the same fine-tuning without AdaBN first;
- ``forest``: a random forest on an ilastik-like filter bank of the target's own pixels;
- ``forest+network``: the same forest, with the label-free network's probability map (and
  its smoothing) among its features;
- ``scratch``: the same U-Net trained from scratch on the strokes alone (then AdaBN).

Writes ``strokes_results.json`` (and ``strokes_masks.png``) into ``--out`` and prints the
tables of docs/strokes.md. ``--explore`` runs the recipe variants instead. Figures are
reported, never asserted; seconds are wall time with two torch threads on a shared machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from real_em import CPU, Volume, add_pair_options, load_volumes, trained
from scipy import ndimage
from stroke_baselines import forest, scratch
from stroke_tables import DIRECTIONS, KEYS, print_exploration, print_goals, print_tables
from stroke_user import simulate
from stroke_variants import VARIANTS

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.arrays.scores import boundary_scores
from napari_bnadapt.diagnostics.uncertainty import uncertainty_map
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model, save_model

COUNTS = (2, 5, 10, 20, 50)
#: The simulated user's stroke length (target pixels) and brush width (target pixels).
USER = {"length": 30, "width": 3}
#: The brush follows what each lab means by a membrane: VNC's membranes are thick
#: (glia included), NeuroProof's boundaries one pixel wide; a 3-px brush on NeuroProof says
#: "thicker" where its ground truth says "thin" (measured: docs/strokes.md, "brush").
BRUSH = {"vnc": 3, "neuroproof": 1}


def user_for(pair: Pair, **changes) -> dict:
    """The simulated user's stroke settings on ``pair``'s target."""
    return {**USER, "width": BRUSH.get(pair.target.name, USER["width"]), **changes}


#: Window of the "next most uncertain region" (target pixels, about 0.6 µm on either volume).
WINDOW = {"vnc": 128, "neuroproof": 64}


@dataclass
class Pair:
    """One seed and direction: the models, the target and the references' scores."""

    seed: int
    source_name: str
    target: Volume
    source: object
    target_model: object
    adabn: object
    references: dict


def scores_of(mask: np.ndarray, truth: np.ndarray) -> dict:
    found = {"dice": dice(mask, truth), **boundary_scores(mask, truth)}
    return {k: round(float(found[k]), 4) for k in KEYS}


def test_mask(model, target: Volume, rescale: bool = True) -> np.ndarray:
    voxel = target.voxel_size if rescale else None
    return predict(model, target.test, PredictConfig(**CPU), voxel_size=voxel).mask


def make_pair(volumes, src: str, tgt: str, seed: int, steps: int, cache: Path) -> Pair:
    """The models of one seed and direction, the AdaBN model and the references' scores
    (AdaBN and the scores cached beside the models: every mode of this script needs them)."""
    source = trained(volumes[src], seed, steps, cache)
    target_model, target = trained(volumes[tgt], seed, steps, cache), volumes[tgt]
    stem = cache / f"strokes_{src}_to_{tgt}_seed{seed}_steps{steps}"
    if stem.with_suffix(".pt").exists():
        adabn = load_model(stem.with_suffix(".pt"))
        references = json.loads(stem.with_suffix(".json").read_text())
    else:
        adabn = adapt(source, target.train, AdaptConfig(**CPU), voxel_size=target.voxel_size).model
        references = {
            "source_only": scores_of(test_mask(source, target, rescale=False), target.test_labels),
            "adabn": scores_of(test_mask(adabn, target), target.test_labels),
            "target_trained": scores_of(test_mask(target_model, target), target.test_labels),
        }
        save_model(adabn, stem.with_suffix(".pt"))
        stem.with_suffix(".json").write_text(json.dumps(references))
    return Pair(seed, src, target, source, target_model, adabn, references)


def painted_slices(target: Volume, seed: int, count: int) -> list[int]:
    """``count`` training slices, seeded, spread over the volume."""
    rng = np.random.default_rng(seed + 101)
    n = target.train.shape[0]
    if count == 1:
        return [int(rng.integers(n))]
    edges = np.linspace(0, n, count + 1).astype(int)
    return [int(rng.integers(a, b)) for a, b in itertools.pairwise(edges)]


def draw(pair: Pair, count: int, slices: list[int], placement: str, user: dict) -> np.ndarray:
    uncertainty = mask = None
    if placement == "corrections":
        mask = np.zeros(pair.target.train.shape, np.uint8)
        plane = pair.target.voxel_size
        mask[slices] = predict(pair.adabn, pair.target.train[slices], PredictConfig(**CPU),
                               voxel_size=plane).mask  # fmt: skip
    if placement == "uncertain":
        uncertainty = np.zeros(pair.target.train.shape, np.float32)
        plane = pair.target.voxel_size
        picked = uncertainty_map(pair.adabn, pair.target.train[slices], "entropy",
                                 PredictConfig(**CPU), voxel_size=plane)  # fmt: skip
        uncertainty[slices] = picked
    rng = np.random.default_rng(1000 * pair.seed + 17)
    return simulate(
        pair.target.train_labels, slices, count, placement=placement, rng=rng,
        uncertainty=uncertainty, mask=mask, window=WINDOW[pair.target.name], **user,
    )  # fmt: skip


def run_cure(
    pair: Pair,
    strokes: np.ndarray,
    cure: str = "adabn+strokes",
    reestimate: bool = False,
    **options,
) -> dict:
    started = time.perf_counter()
    result = adapt(pair.source, pair.target.train, AdaptConfig(cure=cure, **CPU, **options),
                   voxel_size=pair.target.voxel_size, strokes=strokes)  # fmt: skip
    if reestimate:
        statistics_again(result.model, pair.target)
    seconds = time.perf_counter() - started
    details = result.record.details["strokes"]
    row = scores_of(test_mask(result.model, pair.target), pair.target.test_labels)
    brief = {k: details[k] for k in ("steps", "best_step", "stopped", "patches", "guard")}
    brief["held_out"] = [details["held_out_before"], details["held_out_after"]]
    brief["cells"] = details.get("cells")  # the painted slices' cells, for a merge guard
    return {**row, "seconds": round(seconds, 2), "cure_seconds": details["seconds"], **brief}


def statistics_again(model, target: Volume) -> None:
    """AdaBN once more, on the fine-tuned weights (as self-training does)."""
    from napari_bnadapt.adabn.estimation import estimate_steps
    from napari_bnadapt.adabn.sampling import sample_target
    from napari_bnadapt.jobs import run_steps
    from napari_bnadapt.model.bn_layers import write_bn_stats

    config = AdaptConfig(**CPU)
    targets, patches, _ = sample_target(
        model, target.train, config.patches, None, 0, None, None, target.voxel_size
    )
    found = run_steps(estimate_steps(model, targets, patches, config, torch.device("cpu")))
    write_bn_stats(model.module, found.stats(model.source_stats))


def run_method(pair: Pair, method: str, strokes: np.ndarray, options: dict) -> dict:
    if method in ("adabn+strokes", "strokes"):
        return run_cure(pair, strokes, method, **options)
    started = time.perf_counter()
    if method == "forest":
        mask = forest(pair.target, strokes, pair.seed)
    elif method == "forest+network":
        mask = forest(pair.target, strokes, pair.seed, pair.adabn)
    else:
        mask = scratch(pair.source, pair.target, strokes, pair.seed)
    row = scores_of(mask, pair.target.test_labels)
    return {**row, "seconds": round(time.perf_counter() - started, 2)}


def labelled(strokes: np.ndarray, pair: Pair) -> dict:
    return {
        "labelled_pixels": int((strokes > 0).sum()),
        "labelled_fraction": float((strokes > 0).mean()),
    }


#: The main grid: (strokes, slices, placement) → methods.
def plan(counts, placements=("random", "uncertain", "corrections"), slices=(1, 3)) -> list:
    runs = []
    for k in counts:
        # Fine-tuning without AdaBN and the U-Net from scratch at K = 20 only (CPU time).
        forests = ("forest", "forest+network")
        methods = ("adabn+strokes", *forests) + (("strokes", "scratch") if k == 20 else ())
        runs.append((k, 1, "random", methods))
        runs.append((k, 1, "uncertain", ("adabn+strokes",)))
        runs.append((k, 1, "corrections", ("adabn+strokes", *forests)))
    runs += [(k, 3, "random", ("adabn+strokes", "forest")) for k in (20, 50) if k in counts]
    return [r for r in runs if r[2] in placements and r[1] in slices]


def pairs(volumes, args) -> Iterator[tuple[int, str, str, Pair]]:
    """Each seed and direction: its pair (models trained once, cached), the references'
    scores printed."""
    for seed in args.seeds:
        for src, tgt in DIRECTIONS:
            pair = make_pair(volumes, src, tgt, seed, args.steps, args.cache)
            print(
                json.dumps({"seed": seed, "direction": f"{src}->{tgt}", **pair.references}),
                flush=True,
            )
            yield seed, src, tgt, pair


def main_grid(volumes, args) -> list[dict]:
    rows = []
    for seed, src, tgt, pair in pairs(volumes, args):
        for count, n_slices, placement, methods in plan(args.counts, args.placements,
                                                        args.slices):  # fmt: skip
            slices = painted_slices(pair.target, seed, n_slices)
            strokes = draw(pair, count, slices, placement, user_for(pair))
            for method in [m for m in methods if not args.methods or m in args.methods]:
                row = {"seed": seed, "direction": f"{src}->{tgt}", "strokes": count,
                       "slices": slices, "placement": placement, "method": method,
                       **labelled(strokes, pair),
                       **run_method(pair, method, strokes, {})}  # fmt: skip
                row["references"] = pair.references
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "references"}), flush=True)
    return rows


def patched(replacements: dict) -> list:
    """Replace ``module.attr`` of napari_bnadapt.adapt; returns what to put back."""
    import importlib

    undo = []
    for key, value in replacements.items():
        module, name = key.rsplit(".", 1)
        target = importlib.import_module(f"napari_bnadapt.adapt.{module}")
        undo.append((target, name, getattr(target, name)))
        setattr(target, name, value)
    return undo


def explore(volumes, args) -> list[dict]:
    rows = []
    for seed, src, tgt, pair in pairs(volumes, args):
        for name in args.variants:
            options, user, replacements = VARIANTS[name]
            for count in args.counts:
                slices = painted_slices(pair.target, seed, 1)
                strokes = draw(pair, count, slices, args.placement, user_for(pair, **user))
                undo = patched(replacements)
                try:
                    result = run_cure(pair, strokes, **options)
                finally:
                    for target, attribute, value in undo:
                        setattr(target, attribute, value)
                row = {"seed": seed, "direction": f"{src}->{tgt}", "variant": name,
                       "strokes": count, "placement": args.placement, **labelled(strokes, pair), **result}  # fmt: skip
                row["references"] = pair.references
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "references"}), flush=True)
    return rows


def rounds(volumes, args) -> list[dict]:
    """Paint more and run again: K = 10, then the same 10 and 10 more. The second run
    restarts from the source (what ``adapt`` does) or continues from the first run's
    network (anchored to the same label-free predictions, guarded against the first run)."""
    rows = []
    for seed, src, tgt, pair in pairs(volumes, args):
        slices = painted_slices(pair.target, seed, 1)
        first, second = (draw(pair, k, slices, "random", user_for(pair)) for k in (10, 20))
        base = {"seed": seed, "direction": f"{src}->{tgt}", "references": pair.references}
        started = time.perf_counter()
        result = adapt(pair.source, pair.target.train,
                       AdaptConfig(cure="adabn+strokes", **CPU),
                       voxel_size=pair.target.voxel_size, strokes=first)  # fmt: skip
        one = {**scores_of(test_mask(result.model, pair.target), pair.target.test_labels),
               "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
        rows.append({**base, "run": "first (10 strokes)", **one})
        rows.append({**base, "run": "restart (20 strokes)", **run_cure(pair, second)})
        rows.append({**base, "run": "continue (20 strokes)",
                     **continue_from(pair, result.model, second)})  # fmt: skip
        for row in rows[-3:]:
            print(json.dumps({k: v for k, v in row.items() if k != "references"}), flush=True)
    return rows


def continue_from(pair: Pair, previous, strokes: np.ndarray) -> dict:
    """Fine-tune ``previous`` (a stroke-cured model) further on ``strokes``."""
    from napari_bnadapt.adabn.sampling import sample_target
    from napari_bnadapt.adapt.stroke_cure import read_stroke_batch
    from napari_bnadapt.adapt.stroke_training import anchor_of, stroke_training_steps
    from napari_bnadapt.adapt.strokes import prepare_strokes
    from napari_bnadapt.jobs import run_steps

    started = time.perf_counter()
    model, config, cpu = previous.copy(), AdaptConfig(**CPU), torch.device("cpu")
    target, voxel = pair.target.train, pair.target.voxel_size
    painted = prepare_strokes(model, strokes, target, voxel, None, config.seed)
    targets = sample_target(model, target, 8, None, config.seed, None, None, voxel)[0]
    batch = read_stroke_batch(model, targets, painted, config, cpu)
    batch.anchor = anchor_of(pair.adabn.module, batch.inputs, pair.adabn, cpu)
    outcome = run_steps(stroke_training_steps(
        model, batch, steps=config.stroke_steps, learning_rate=config.stroke_learning_rate,
        parameters=config.stroke_parameters, consistency=config.stroke_consistency,
        batch_size=config.batch_size, device=cpu, seed=config.seed,
    ))  # fmt: skip
    row = scores_of(test_mask(model, pair.target), pair.target.test_labels)
    return {**row, "seconds": round(time.perf_counter() - started, 2), "steps": outcome["steps"],
            "guard": outcome["guard"]}  # fmt: skip


def masks_figure(volumes, args) -> Path:
    """Seed 0, K = 20 random strokes: the painted slice, and a held-out slice's masks."""
    from matplotlib.figure import Figure

    panels = ("painted slice", "held-out image", "ground truth", "source only", "AdaBN",
              "forest", "AdaBN + strokes", "target-trained")  # fmt: skip
    figure = Figure(figsize=(2.1 * len(panels), 4.8), constrained_layout=True)
    axes = figure.subplots(2, len(panels))
    for row, (src, tgt) in enumerate(DIRECTIONS):
        pair = make_pair(volumes, src, tgt, 0, args.steps, args.cache)
        target, slices = pair.target, painted_slices(pair.target, 0, 1)
        strokes = draw(pair, 20, slices, "random", user_for(pair))
        cured = adapt(pair.source, target.train, AdaptConfig(cure="adabn+strokes", **CPU),
                      voxel_size=target.voxel_size, strokes=strokes).model  # fmt: skip
        masks = [test_mask(pair.source, target, rescale=False), test_mask(pair.adabn, target),
                 forest(target, strokes, 0), test_mask(cured, target),
                 test_mask(pair.target_model, target)]  # fmt: skip
        z = 0 if tgt == "vnc" else 10
        crop = (slice(0, 512), slice(0, 512)) if tgt == "vnc" else (slice(None), slice(None))
        painted = _overlay(target.train[slices[0]][crop], strokes[slices[0]][crop])
        pictures = [painted, target.test[z][crop], target.test_labels[z][crop],
                    *(m[z][crop] for m in masks)]  # fmt: skip
        for col, (ax, picture, title) in enumerate(zip(axes[row], pictures, panels)):
            ax.imshow(picture, cmap="gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            extra = ""
            if col >= 3:
                found = scores_of(masks[col - 3], target.test_labels)
                extra = f"\nDice {found['dice']:.2f}, Rand F {found['rand_f']:.2f}"
            ax.set_title(f"{title}{extra}", fontsize=7)
        axes[row][0].set_ylabel(f"{src} → {tgt}", fontsize=8)
    path = (args.out or Path(".")) / "strokes_masks.png"
    figure.savefig(path, dpi=110)
    return path


def _overlay(image: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """The grey image in RGB with foreground strokes red and background strokes blue."""
    from napari_bnadapt.adapt.strokes import BACKGROUND, FOREGROUND

    rgb = np.repeat((image.astype(np.float32) / 255.0)[..., None], 3, axis=-1)
    grown = {c: ndimage.binary_dilation(strokes == c, iterations=2) for c in (1, 2)}
    rgb[grown[FOREGROUND]] = (1.0, 0.1, 0.1)
    rgb[grown[BACKGROUND]] = (0.1, 0.5, 1.0)
    return rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pair_options(parser)
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    parser.add_argument("--explore", action="store_true", help="run the recipe variants")
    parser.add_argument("--rounds", action="store_true", help="paint more: restart or continue")
    parser.add_argument("--figure-only", action="store_true", help="only draw the masks figure")
    parser.add_argument("--tables", type=Path, help="print the tables of a results JSON")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--placements", nargs="+", default=["random", "uncertain",
                        "corrections"], help="the main grid's placements")  # fmt: skip
    parser.add_argument("--slices", type=int, nargs="+", default=[1, 3],
                        help="the main grid's numbers of painted slices")  # fmt: skip
    parser.add_argument("--placement", default="random", choices=("random", "uncertain",
                        "corrections"), help="the simulated user's placement (--explore)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", help="only these methods of the main grid")
    args = parser.parse_args()
    if args.tables:
        rows = json.loads(args.tables.read_text())
        if "variant" in rows[0]:
            print_exploration(rows)
        else:
            print_tables(rows)
            print_goals(rows)
        return
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    volumes = load_volumes(args.data)
    if args.figure_only:
        print(f"wrote {masks_figure(volumes, args)}")
        return
    mode = "explore" if args.explore else "rounds" if args.rounds else "results"
    job = {"explore": explore, "rounds": rounds, "results": main_grid}[mode]
    rows = job(volumes, args)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"strokes_{mode}.json").write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
