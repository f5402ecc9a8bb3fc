"""The ``bnadapt`` command line: info, train, predict, adapt, report, gui, demo.

Expected problems (bad files, wrong shapes, unknown devices) print one line and exit with
code 2; nothing half-written is left at an output path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import BnAdaptError, InputDataError
from ..jobs import Progress

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bnadapt`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or 0)
    except BnAdaptError as exc:
        print(f"bnadapt: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bnadapt: interrupted; nothing was written", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bnadapt",
        description="Segment EM data with a U-Net and adapt its BatchNorm statistics to new "
        "data without labels.",
    )
    parser.add_argument("--version", action="version", version=f"napari-bnadapt {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    info = commands.add_parser(
        "info", help="describe a model: dims, channels, normalisation layers"
    )
    info.add_argument("model", help="model file, or 'demo'")
    info.set_defaults(handler=cmd_info)

    train = commands.add_parser("train", help="train the built-in U-Net on image/label pairs")
    train.add_argument(
        "--images", required=True, help="TIFF file (image or stack) or folder of TIFF/PNG"
    )
    train.add_argument(
        "--labels", required=True, help="same layout as --images; nonzero = foreground"
    )
    train.add_argument("--out", required=True, help="model file to write")
    train.add_argument("--dims", type=int, choices=(2, 3), default=2)
    train.add_argument("--steps", type=int, default=400)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--patch-size", type=int, default=None)
    train.add_argument("--depth", type=int, default=3)
    train.add_argument("--base-channels", type=int, default=16)
    train.add_argument("--normalization", choices=("fixed", "percentile", "none"), default="fixed")
    train.set_defaults(handler=cmd_train)

    pred = commands.add_parser("predict", help="segment an image, stack or folder")
    pred.add_argument("--model", required=True, help="model file, or 'demo'")
    pred.add_argument("--input", required=True, help="TIFF/PNG file or folder of them")
    pred.add_argument("--out", required=True, help="mask TIFF (a folder when --input is a folder)")
    pred.add_argument(
        "--probabilities", help="also write the probability map here (a folder for folder input)"
    )
    _add_predict_options(pred)
    pred.set_defaults(handler=cmd_predict)

    adapt = commands.add_parser(
        "adapt", help="re-estimate BatchNorm statistics on unlabeled target data"
    )
    adapt.add_argument("--model", required=True, help="model file, or 'demo'")
    adapt.add_argument("--target", help="TIFF file or folder of TIFF/PNG images (unlabeled)")
    adapt.add_argument("--out", required=True, help="adapted model file to write")
    adapt.add_argument("--mode", choices=("standard", "consistent", "ema"), default=None)
    adapt.add_argument(
        "--alpha", type=float, default=1.0, help="0 = source statistics, 1 = fully adapted"
    )
    adapt.add_argument(
        "--prior-strength",
        type=float,
        default=None,
        help="N of Schneider et al. (overrides --alpha)",
    )
    adapt.add_argument(
        "--patches", type=int, default=None, help="number of patches sampled from the target"
    )
    adapt.add_argument("--patch-size", type=int, default=None)
    adapt.add_argument(
        "--layers", default="all", help="all, encoder, decoder, bottleneck, first:K, or names"
    )
    adapt.add_argument("--statistics", choices=("both", "mean", "variance"), default="both")
    adapt.add_argument("--momentum", type=float, default=0.1, help="for --mode ema")
    adapt.add_argument(
        "--roi", help="TIFF mask, same shape as the target: sample only where nonzero"
    )
    adapt.add_argument("--batch-size", type=int, default=8)
    adapt.add_argument("--seed", type=int, default=0)
    adapt.add_argument("--device", default="auto")
    adapt.add_argument(
        "--reset", action="store_true", help="write the model back with its source statistics"
    )
    adapt.set_defaults(handler=cmd_adapt)

    report = commands.add_parser(
        "report", help="diagnose a shift: latent distances, mask quality, figures, a reading"
    )
    report.add_argument("--model", required=True, help="model file (source statistics), or 'demo'")
    report.add_argument(
        "--adapted", help="the adapted model; without it the model is adapted with defaults first"
    )
    report.add_argument("--input", required=True, help="target image or volume (TIFF/PNG)")
    report.add_argument("--labels", help="ground truth for --input: adds Dice and IoU")
    report.add_argument(
        "--source", help="source-domain image/volume: the empirical reference for the latents"
    )
    report.add_argument("--out", required=True, help="folder for report.json and the figures")
    report.add_argument("--patches", type=int, default=None, help="patches sampled per capture")
    report.add_argument("--device", default="auto")
    report.set_defaults(handler=cmd_report)

    gui = commands.add_parser(
        "gui", help="open napari with the sample volumes and the plugin's widgets docked"
    )
    gui.add_argument("--no-samples", action="store_true", help="do not open the sample data")
    gui.set_defaults(handler=cmd_gui)

    demo = commands.add_parser("demo", help="run the whole workflow on bundled synthetic data")
    demo.add_argument(
        "--out", default=None, help="folder for masks, adapted model and summary.json"
    )
    demo.add_argument("--device", default="auto")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _add_predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--tile", type=int, default=None, help="tile size in pixels")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--amp", choices=("bf16", "fp16"), default=None, help="mixed precision on GPU"
    )
    parser.add_argument(
        "--slice-axis", type=int, default=None, help="axis a 2D model cuts volumes across"
    )


def cmd_info(args: argparse.Namespace) -> int:
    from ..model.checkpoint import load_model
    from ..model.description import describe

    print(describe(load_model(args.model)).to_text())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..io.images import read_image_set
    from ..model.checkpoint import save_model
    from ..training import TrainConfig, train

    images, labels = read_image_set(args.images), read_image_set(args.labels)
    if len(images) != len(labels):
        raise InputDataError(
            f"{len(images)} images but {len(labels)} label files: give one label file per image"
        )
    config = TrainConfig(
        dims=args.dims, steps=args.steps, seed=args.seed, device=args.device,
        batch_size=args.batch_size, patch_size=args.patch_size, depth=args.depth,
        base_channels=args.base_channels, normalization=args.normalization,
        validate_every=max(1, args.steps // 4),
    )  # fmt: skip
    result = train(
        [i.data for i in images], [lbl.data for lbl in labels], config,
        progress=_printer(every=max(1, args.steps // 20)), names=[i.name for i in images],
    )  # fmt: skip
    save_model(result.model, args.out)
    last = result.history[-1] if result.history else {}
    print(
        f"wrote {args.out} (final loss {last.get('loss', float('nan')):.4f}, validation Dice {last.get('val_dice', float('nan')):.3f})"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..inference import PredictConfig, predict
    from ..io.images import read_image_set, write_tiff
    from ..model.checkpoint import load_model

    model = load_model(args.model)
    config = PredictConfig(
        tile_shape=args.tile, batch_size=args.batch_size, device=args.device,
        amp=args.amp, threshold=args.threshold, slice_axis=args.slice_axis,
    )  # fmt: skip
    folder = Path(args.input).is_dir()
    images = read_image_set(args.input)
    out, probs = Path(args.out), Path(args.probabilities) if args.probabilities else None
    if folder:
        for path in (out, probs):
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
    for image in images:
        prediction = predict(model, image.data, config)
        mask = prediction.labels if prediction.labels is not None else prediction.mask
        write_tiff(out / f"{image.name}.tif" if folder else out, mask)
        if probs is not None:
            write_tiff(
                probs / f"{image.name}.tif" if folder else probs,
                prediction.probabilities.astype(np.float32),
            )
        fraction = float(np.mean(prediction.mask))
        print(
            f"{image.name}: {mask.shape} foreground {fraction:.1%} → {out / (image.name + '.tif') if folder else out}"
        )
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from ..adapt.engine import AdaptConfig, adapt, reset
    from ..io.images import read_image, read_image_set
    from ..model.checkpoint import load_model, save_model

    model = load_model(args.model)
    if args.reset:
        reset(model)
        save_model(model, args.out)
        print(f"wrote {args.out} with the source statistics restored")
        return 0
    if not args.target:
        raise InputDataError("give --target (unlabeled images to adapt to), or --reset")
    targets = read_image_set(args.target)
    data = [t.data for t in targets] if len(targets) > 1 else targets[0].data
    defaults = AdaptConfig()
    config = AdaptConfig(
        mode=args.mode or defaults.mode, alpha=args.alpha, prior_strength=args.prior_strength,
        layers=args.layers, statistics=args.statistics,
        patches=args.patches or defaults.patches, patch_size=args.patch_size,
        batch_size=args.batch_size, momentum=args.momentum, seed=args.seed, device=args.device,
    )  # fmt: skip
    roi = read_image(args.roi) if args.roi else None
    result = adapt(
        model, data, config, roi=roi, target_name=Path(args.target).name, progress=_printer(every=5)
    )
    save_model(result.model, args.out)
    record = result.record
    print(
        f"adapted {len(record['layers'])} BatchNorm layers ({record['mode']}, alpha {record['alpha']:.2f}) "
        f"on {record['patches']} patches in {record['seconds']:.2f} s on {record['device']} → {args.out}"
    )
    if record["convergence"]:
        print(
            f"statistics still moved {record['convergence'][-1]['change']:.4f} σ with the last batch"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..adapt.engine import AdaptConfig
    from ..diagnostics.latents import LatentConfig
    from ..diagnostics.report import build_report, write_report
    from ..inference import PredictConfig
    from ..io.images import read_image
    from ..model.checkpoint import load_model

    model = load_model(args.model)
    adapted = load_model(args.adapted) if args.adapted else None
    image = read_image(args.input)
    labels = read_image(args.labels) if args.labels else None
    source = read_image(args.source) if args.source else None
    patches = {"patches": args.patches} if args.patches else {}
    report = build_report(
        model, image, adapted, labels=labels, source=source,
        adapt_config=AdaptConfig(device=args.device, **patches),
        predict_config=PredictConfig(device=args.device),
        latent_config=LatentConfig(device=args.device, **patches),
        progress=_printer(every=10),
    )  # fmt: skip
    paths = write_report(report, args.out)
    quality = report.numbers["quality"]
    print(report.diagnosis.verdict.to_text())
    for key in ("before", "after"):
        q = quality[key]
        dice_text = f", Dice {q['dice']:.3f}, IoU {q['iou']:.3f}" if "dice" in q else ""
        print(
            f"{key:>6}: foreground {q['foreground_fraction']:.1%}, {q['object_count']} objects, "
            f"entropy {q['entropy']:.3f}{dice_text}"
        )
    print(f"agreement Dice before/after: {quality['agreement_dice']:.3f}")
    print(f"wrote {', '.join(p.name for p in paths)} to {args.out}")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from .._widgets.launch import run_gui
    except ImportError as exc:
        raise InputDataError(
            f"the GUI needs napari with a Qt binding ({exc}): pip install 'napari[pyqt6]'"
        ) from None
    run_gui(samples=not args.no_samples)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    summary = run_demo(args.out, args.device)
    print(f"Dice on the source volume:            {summary.dice_source:.3f}")
    print(f"Dice on the shifted target, before:   {summary.dice_target_before:.3f}")
    print(f"Dice on the shifted target, adapted:  {summary.dice_target_after:.3f}")
    print(f"adaptation took {summary.adaptation_seconds:.2f} s on {summary.device}")
    if args.out:
        print(f"masks, adapted model and summary.json written to {args.out}")
    return 0


def _printer(every: int = 1):
    """A progress callback printing every ``every`` steps to stderr."""

    def show(step: Progress) -> None:
        if step.done % every == 0 or step.done == step.total:
            print(f"  [{step.done}/{step.total}] {step.message}", file=sys.stderr, flush=True)

    return show


if __name__ == "__main__":
    raise SystemExit(main())
