"""What each ``bnadapt`` command does: read the files, call one core function, write, report."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np

from ..adabn.config import AdaptConfig
from ..adapt.api import adapt, reset
from ..adapt.stroke_cure import stroke_summary
from ..arrays.resampling import parse_voxel_size
from ..cluster import ClusterConfig
from ..demo import run_demo
from ..diagnostics.fingerprinting import compute_fingerprint
from ..diagnostics.latents import LatentConfig
from ..errors import InputDataError, OutputPathError
from ..export.bioimageio import ExportConfig
from ..export.formats import export_model
from ..export.test_tensors import check_test_tensors
from ..inference import PredictConfig, predict
from ..io.images import is_image_folder, read_image, read_image_set, read_named_image, write_tiff
from ..io.volumes import PREDICTED_MASK, PREDICTED_PROBABILITIES
from ..model.checkpoint import load_model, save_model
from ..model.description import describe
from ..model.loaded import LoadedModel
from ..replacing import (
    model_kept_back,
    prediction_kept_back,
    refuse_to_replace,
    report_kept_back,
)
from ..report import FIGURES, TABLES, build_report, write_report
from ..training import TrainConfig, train
from .common import (
    given,
    model_from,
    predict_config,
    printer,
    say_if_labels,
    say_scale,
    voxel_size_of,
)
from .streaming import stream_prediction


def cmd_info(args: argparse.Namespace) -> int:
    args.model = args.model or args.model_option
    model = model_from(args)
    print(describe(model).to_text())
    check = check_test_tensors(model)
    if check is not None:
        print(check.summary())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    model = model_from(args)
    check_model_out(args, model)
    sample = (
        read_named_image(args.sample, args.key, args.missing_chunks).data if args.sample else None
    )
    config = ExportConfig(
        name=args.name or "", authors=tuple(args.authors or ()), license=args.license or "",
        test=not args.no_test,
    )  # fmt: skip
    # The image stays lazy: only the crop that becomes the test input is read.
    result = export_model(model, args.out, args.format, sample, config)
    print(f"wrote {result.path} ({args.format}, {model.state} statistics)")
    if result.test_passed is not None:
        print(result.test_message)
    return 0 if result.test_passed is not False else 1


def cmd_train(args: argparse.Namespace) -> int:
    options = given(
        args, "dims", "steps", "seed", "device", "batch_size", "patch_size", "depth",
        "base_channels", "learning_rate", "normalization",
    )  # fmt: skip
    steps = options.get("steps", TrainConfig.steps)
    config = TrainConfig(**options, validate_every=max(1, steps // 4))
    check_model_out(args, None)  # a network trained anew replaces no model file
    images, labels = read_image_set(args.images), read_image_set(args.labels)
    if len(images) != len(labels):
        raise InputDataError(
            f"{len(images)} images but {len(labels)} label files: give one label file per image"
        )
    voxel_size = (
        parse_voxel_size(args.voxel_size, np.ndim(images[0].data), "--voxel-size")
        or images[0].voxel_size
    )
    result = train(
        [i.data for i in images], [lbl.data for lbl in labels], config,
        names=[i.name for i in images], voxel_size=voxel_size, progress=printer(),
    )  # fmt: skip
    save_model(result.model, args.out)
    last = result.history[-1] if result.history else {}
    print(
        f"wrote {args.out} (final loss {last.get('loss', float('nan')):.4f}, validation Dice {last.get('val_dice', float('nan')):.3f})"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    config = predict_config(args)
    model = model_from(args)
    if str(args.out).rstrip("/").endswith(".zarr"):
        return stream_prediction(args, model, config)
    if args.workers or args.scheduler or args.resume:
        raise InputDataError(
            "--workers, --scheduler and --resume apply to block-by-block prediction: "
            "write the mask as OME-Zarr (--out mask.zarr)"
        )
    folder = is_image_folder(args.input)
    images = read_image_set(args.input, args.key, args.missing_chunks)
    out, probs = Path(args.out), Path(args.probabilities) if args.probabilities else None
    check_predictions_out(args, images, folder)
    if folder:
        for path in (out, probs):
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
    for image in images:
        voxel_size = voxel_size_of(args, image)
        prediction = predict(model, image.data, config, voxel_size=voxel_size)
        mask_path = out / f"{image.name}.tif" if folder else out
        # The image's voxel size goes with its mask, which then overlays it in napari.
        size = voxel_size or image.voxel_size  # with --no-rescale too
        scale = size if size and len(size) == prediction.mask.ndim else None
        unit = "nm" if scale else None
        # Opened as labels; a later prediction may replace it (PREDICTED_MASK).
        write_tiff(mask_path, prediction.segmentation, scale, unit, software=PREDICTED_MASK)
        if probs is not None:
            write_tiff(
                probs / f"{image.name}.tif" if folder else probs,
                prediction.probabilities.astype(np.float32),
                *((scale, unit) if prediction.probabilities.ndim == prediction.mask.ndim else ()),
                software=PREDICTED_PROBABILITIES,
            )
        fraction = float(np.mean(prediction.mask))
        print(f"{image.name}: {prediction.mask.shape} foreground {fraction:.1%} → {mask_path}")
    say_if_labels(images, "--input")
    say_scale(args, images[0], model)  # the images of a folder share one scale
    return 0


def check_predictions_out(args: argparse.Namespace, images: list, folder: bool) -> None:
    """Refuse, before any prediction, to replace a file that ``bnadapt predict`` did not
    write (a ground truth, a mask corrected by hand), unless ``--force``."""
    if args.force:
        return
    for label, value in (("--out", args.out), ("--probabilities", args.probabilities)):
        if not value:
            continue
        paths = [Path(value) / f"{i.name}.tif" for i in images] if folder else [Path(value)]
        for path in paths:
            refuse_to_replace(label, path, prediction_kept_back(path), "add --force to replace it")


def cmd_adapt(args: argparse.Namespace) -> int:
    model = model_from(args)
    check_model_out(args, model)
    if args.reset:
        weights = " and weights" if model.source_weights else ""
        strokes, adapted = model.strokes, model.adaptation is not None
        reset(model)
        save_model(model, args.out)
        if adapted:
            print(f"wrote {args.out} with the source statistics{weights} restored")
        else:
            print(f"wrote {args.out}: {args.model} was not adapted, so it is unchanged")
        if strokes is not None:  # they stay in the input file, not in the reset one
            print(
                f"the strokes it was taught with ({strokes.describe()}) are not in "
                f"{args.out}; bnadapt strokes --model {shlex.quote(args.model)} --out "
                "strokes.tif writes them"
            )
        return 0
    if not args.target:
        raise InputDataError("give --target (unlabeled images to adapt to), or --reset")
    config = AdaptConfig(
        **given(
            args, "mode", "alpha", "prior_strength", "layers", "statistics", "patches",
            "patch_size", "batch_size", "momentum", "seed", "device", "cure", "polarity",
            "fda_beta", "tent_steps", "self_training_steps", "stroke_steps",
        )
    )  # fmt: skip
    targets = read_image_set(args.target, args.key, args.missing_chunks)
    data = [t.data for t in targets] if len(targets) > 1 else targets[0].data
    roi = read_image(args.roi, missing_chunks=args.missing_chunks) if args.roi else None
    strokes = (
        np.asarray(read_image(args.strokes, missing_chunks=args.missing_chunks))
        if args.strokes
        else None
    )
    voxel_size = voxel_size_of(args, targets[0])
    cluster = ClusterConfig(workers=args.workers, scheduler=args.scheduler)
    result = adapt(
        model, data, config, roi=roi, target_name=Path(args.target).name,
        voxel_size=voxel_size, cluster=cluster, progress=printer(), strokes=strokes,
        strokes_name=str(args.strokes) if args.strokes else None,
    )  # fmt: skip
    save_model(result.model, args.out)
    record = result.record
    print(f"{record.summary()} → {args.out}")
    if record.last_change is not None:
        print(settling(record.last_change, record.patches))
    if "strokes" in record.details:
        print(stroke_summary(record.details["strokes"]))
    say_if_labels(targets, "--target")
    say_scale(args, targets[0], model)
    return 0


#: Below this movement with the last batch (source σ), the statistics have settled.
SETTLED = 0.05


def settling(change: float, patches: int) -> str:
    """How much the statistics still moved with the last batch, and what that means."""
    said = f"statistics moved {change:.3f} σ with the last batch"
    if change < SETTLED:
        return f"{said}: settled (more --patches would change little)"
    return f"{said}: still moving; --patches {2 * patches} would steady them"


def check_model_out(args: argparse.Namespace, network: LoadedModel | None) -> None:
    """Refuse, before any work, a model ``--out`` that would replace another network, a
    taught model's strokes or a file that is no model (:mod:`..replacing`), unless
    ``--force``."""
    if not args.force:
        lost = model_kept_back(args.out, network)
        refuse_to_replace("--out", args.out, lost, "add --force to replace it")


def cmd_strokes(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise InputDataError(
            f"--out {args.out!r}: the strokes are written as a labels TIFF, which "
            "bnadapt adapt --strokes reads: give a name ending in .tif (nothing was written)"
        )
    if out.exists() and not args.force:
        raise OutputPathError(
            f"--out {args.out!r} exists, and may hold an image or strokes painted since: "
            "choose a new name, or add --force to replace it (nothing was written)"
        )
    model = load_model(args.model)
    if model.strokes is None:
        raise InputDataError(
            f"{args.model} carries no strokes: only a model taught with --cure strokes or "
            "adabn+strokes does, until it is reset (bnadapt info says how a model was adapted)"
        )
    record = model.adaptation
    voxel_size = record.voxel_size if record is not None else None
    fits = voxel_size is not None and len(voxel_size) == len(model.strokes.shape)
    write_tiff(
        out, model.strokes.to_array(), scale=voxel_size if fits else None,
        unit="nm" if fits else None, labels=True, painted_on=model.strokes.target,
    )  # fmt: skip
    print(f"wrote {out}: {model.strokes.describe()}.")
    print(f"napari takes it as the strokes of {Path(model.strokes.target).stem}, by any name.")
    print(
        "Paint more where the mask is still wrong, then: bnadapt adapt --cure adabn+strokes "
        f"--strokes {shlex.quote(str(out))} …"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if not args.force:  # before any work: the folder may hold a user's own files
        lost = report_kept_back(args.out, ["report.json", *FIGURES, *TABLES])
        refuse_to_replace("--out", args.out, lost, "add --force to replace them")
    sampling = given(args, "patches", "device")
    adapt_config, latent_config = AdaptConfig(**sampling), LatentConfig(**sampling)
    model = model_from(args)
    adapted = load_model(args.adapted) if args.adapted else None
    image = read_named_image(args.input, args.key, args.missing_chunks)
    labels = read_image(args.labels, missing_chunks=args.missing_chunks) if args.labels else None
    source = read_image(args.source, missing_chunks=args.missing_chunks) if args.source else None
    report = build_report(
        model, image.data, adapted, labels=labels, source=source, adapt_config=adapt_config,
        predict_config=PredictConfig(**given(args, "device")), latent_config=latent_config,
        voxel_size=voxel_size_of(args, image), progress=printer(),
        cluster=ClusterConfig(workers=args.workers, scheduler=args.scheduler),
    )  # fmt: skip
    paths = write_report(report, args.out)
    quality = report.quality
    print(report.diagnosis.verdict.to_text())
    for key, q in (("before", quality.before), ("after", quality.after)):
        if q is None:
            continue
        dice_text = f", Dice {q.dice:.3f}, IoU {q.iou:.3f}" if q.dice is not None else ""
        objects = f"{q.object_count} object{'s' * (q.object_count != 1)}"
        print(
            f"{key:>6}: foreground {q.foreground_fraction:.1%}, {objects}, "
            f"entropy {q.entropy:.3f}{dice_text}"
        )
    print(f"agreement Dice before/after: {quality.agreement_dice:.3f}")
    print(f"wrote {', '.join(p.name for p in paths)} to {args.out}")
    say_if_labels([image], "--input")
    say_scale(args, image, model)
    return 0


def cmd_fingerprint(args: argparse.Namespace) -> int:
    model = model_from(args)
    check_model_out(args, model)
    source = read_named_image(args.source, args.key, args.missing_chunks)
    labels = read_image(args.labels, missing_chunks=args.missing_chunks) if args.labels else None
    voxel_size = (
        parse_voxel_size(args.voxel_size, source.data.ndim, "--voxel-size") or source.voxel_size
    )
    model.fingerprint = compute_fingerprint(
        model, source.data, voxel_size=voxel_size, labels=labels, source_name=source.name,
        config=LatentConfig(**given(args, "patches", "device")), progress=printer(),
    )  # fmt: skip
    save_model(model, args.out)
    print(model.fingerprint.summary())
    print(f"wrote {args.out}")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    # Imported here: napari and Qt are only needed (and only installed) for the GUI.
    try:
        from .._widgets.launch import run_gui
    except ImportError as exc:
        raise InputDataError(
            f"the GUI needs napari with a Qt binding ({exc}): pip install 'napari[pyqt6]'"
        ) from None
    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        raise InputDataError(f"{missing[0]} not found: check the path")
    model = model_from(args) if args.model else None  # a bad file fails before napari opens
    run_gui(samples=not args.no_samples and not args.files, files=args.files, model=model)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    summary = run_demo(args.out, args.device)
    print(f"Dice on the source volume:            {summary.dice_source:.3f}")
    print(f"Dice on the shifted target, before:   {summary.dice_target_before:.3f}")
    print(f"Dice on the shifted target, adapted:  {summary.dice_target_after:.3f}")
    print(f"adaptation took {summary.adaptation_seconds:.2f} s on {summary.device}")
    if args.out:
        print(
            f"written to {args.out}: the target (target.tif) and its ground truth "
            "(target_truth.tif), the masks, the adapted model (demo_adapted.pt) and summary.json"
        )
    return 0


HANDLERS = {
    "info": cmd_info, "train": cmd_train, "predict": cmd_predict, "adapt": cmd_adapt,
    "report": cmd_report, "fingerprint": cmd_fingerprint, "export": cmd_export,
    "gui": cmd_gui, "demo": cmd_demo, "strokes": cmd_strokes,
}  # fmt: skip
