"""The ``bnadapt`` argument parser: every command and option, with help and defaults.

Options that set a config field default to None here, so that the config dataclass's own
default applies (written once, shown in the help from the dataclass).
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..adabn.config import CURES, MODES, POLARITY, STATISTICS, STROKE_CURES, AdaptConfig
from ..adabn.layer_selection import GROUPS
from ..arrays.normalization import MODES as NORMALIZATION_MODES
from ..diagnostics.latent_config import LatentConfig
from ..export.format_names import EXPORT_FORMATS
from ..memory import SHARE
from ..training_config import TrainConfig
from .mistakes import Parser
from .options import (
    DEVICE_HELP,
    add_architecture_options,
    add_cluster_options,
    add_key_option,
    add_predict_options,
    add_scale_options,
    add_stream_options,
    finite_float,
)

ADAPT, TRAIN, LATENT = AdaptConfig(), TrainConfig(), LatentConfig()
MODEL_HELP = (
    "model file (native .pt or TorchScript), a bioimage.io package (.zip, or a folder with "
    "rdf.yaml), or a bundled model: 'demo' (synthetic) or 'membranes-fibsem' (2D "
    "membranes, FIB-SEM at 10 nm)"
)
IMAGE_HELP = (
    "TIFF/MRC file (2D image or 3D stack/volume), PNG, a folder of 2D images, or a zarr/"
    "OME-Zarr, N5 or HDF5 container (choose its array with --key)"
)


def make_parser() -> argparse.ArgumentParser:
    """The parser; each command sets ``command`` to its name (see ``cli.commands.HANDLERS``)."""
    parser = Parser(
        prog="bnadapt",
        description="Segment EM data with a U-Net and adapt its BatchNorm statistics to new "
        "data without labels.",
    )
    parser.add_argument("--version", action="version", version=f"napari-bnadapt {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    builders = {
        "info": _info, "train": _train, "predict": _predict, "adapt": _adapt,
        "report": _report, "fingerprint": _fingerprint, "export": _export, "gui": _gui,
        "demo": _demo, "strokes": _strokes,
    }  # fmt: skip
    for name, build in builders.items():
        command = build(commands)
        command.add_argument(
            "--max-memory",
            help="refuse any step planned to take more memory than this, e.g. 8G or 512M "
            f"(default: {SHARE * 100:.0f}%% of what the machine has free)",
        )
        command.set_defaults(command=name)
        parser.commands[name] = command
    return parser


def _info(commands) -> argparse.ArgumentParser:
    info = commands.add_parser(
        "info", help="describe a model: dims, channels, normalisation layers, what can adapt"
    )
    which = info.add_mutually_exclusive_group(required=True)
    which.add_argument("model", nargs="?", help=MODEL_HELP)
    # Every other command names its model with --model: accept it here too.
    which.add_argument("--model", dest="model_option", metavar="MODEL", help="same as MODEL")
    add_architecture_options(info)
    return info


def _export(commands) -> argparse.ArgumentParser:
    export = commands.add_parser(
        "export", help="write a model for other tools: a bioimage.io package or TorchScript"
    )
    export.add_argument("--model", required=True, help=MODEL_HELP)
    add_architecture_options(export)
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, default="bioimageio",
        help="bioimageio: a model-zoo package (.zip, spec 0.5) for deepImageJ, ilastik, "
        "bioimageio.core...; torchscript: the network for torch.jit.load (default: bioimageio)",
    )  # fmt: skip
    export.add_argument("--out", required=True, help="file to write (.zip for bioimageio)")
    export.add_argument(
        "--sample", help=f"an image to cut the package's test input and cover from: {IMAGE_HELP} "
        "(default: the adaptation's target is not stored, so a synthetic EM-like image)",
    )  # fmt: skip
    add_key_option(export)
    export.add_argument("--name", help="the package's name (default: the model's)")
    export.add_argument(
        "--author", action="append", dest="authors",
        help="a person to credit; repeat for several (default: the original package's authors)",
    )  # fmt: skip
    export.add_argument(
        "--license", help="SPDX license id (default: the original package's, else CC-BY-4.0)"
    )
    export.add_argument(
        "--no-test", action="store_true",
        help="skip bioimageio.core's test_model on the written package (a few seconds)",
    )  # fmt: skip
    add_force_option(export, MODEL_REPLACED)
    return export


#: What --force lets a model output replace.
MODEL_REPLACED = (
    "replace --out even when it holds another network, a model taught with strokes or a "
    "file that is no model (default: refuse; an earlier copy of the same network is replaced)"
)


def add_force_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--force``: replace what the output path holds, which is refused by default."""
    parser.add_argument("--force", action="store_true", help=help_text)


def _train(commands) -> argparse.ArgumentParser:
    train = commands.add_parser("train", help="train the built-in U-Net on image/label pairs")
    train.add_argument("--images", required=True, help=IMAGE_HELP)
    train.add_argument(
        "--labels", required=True, help="same layout as --images; nonzero = foreground"
    )
    train.add_argument("--out", required=True, help="model file to write")
    train.add_argument(
        "--dims", type=int, choices=(2, 3),
        help=f"2: a 2D U-Net (a stack is a set of slices); 3: a 3D U-Net (default: {TRAIN.dims})",
    )  # fmt: skip
    train.add_argument(
        "--steps", type=int, help=f"optimisation steps, one batch each (default: {TRAIN.steps})"
    )
    train.add_argument(
        "--seed",
        type=int,
        help=f"seed of weights, patches and augmentation (default: {TRAIN.seed})",
    )
    train.add_argument("--device", help=DEVICE_HELP)
    train.add_argument(
        "--batch-size", type=int, help=f"patches per step (default: {TRAIN.batch_size})"
    )
    train.add_argument(
        "--patch-size", type=int,
        help="edge of the training patches in pixels, a multiple of 2^depth "
        f"(default: {TRAIN.patch} for 2D, {TrainConfig(dims=3).patch} for 3D)",
    )  # fmt: skip
    train.add_argument(
        "--depth", type=int,
        help=f"number of 2× down-samplings; inputs are padded to a multiple of 2^depth "
        f"(default: {TRAIN.depth})",
    )  # fmt: skip
    train.add_argument(
        "--base-channels", type=int,
        help=f"feature channels of the first level, doubled at each level "
        f"(default: {TRAIN.base_channels})",
    )  # fmt: skip
    train.add_argument(
        "--learning-rate",
        type=finite_float,
        help=f"Adam's step size (default: {TRAIN.learning_rate:g})",
    )
    train.add_argument(
        "--normalization", choices=NORMALIZATION_MODES,
        help="input intensities: fixed = z-score with the training set's mean and std (what "
        "adaptation corrects), percentile = each input's own 1–99.8 %% range, none = raw "
        f"(default: {TRAIN.normalization})",
    )  # fmt: skip
    train.add_argument(
        "--voxel-size",
        help="the training images' voxel size in nm (z,y,x or y,x, or one value), stored in "
        "the model so that other data is resampled to it (default: from the file's metadata)",
    )
    add_force_option(train, MODEL_REPLACED)
    return train


def _predict(commands) -> argparse.ArgumentParser:
    pred = commands.add_parser("predict", help="segment an image, stack or folder")
    pred.add_argument("--model", required=True, help=MODEL_HELP)
    add_architecture_options(pred)
    pred.add_argument("--input", required=True, help=IMAGE_HELP)
    add_key_option(pred)
    pred.add_argument(
        "--out", required=True,
        help="mask TIFF (a folder when --input is a folder), or an OME-Zarr image (name.zarr) "
        "written block by block: for volumes of any size",
    )  # fmt: skip
    pred.add_argument(
        "--probabilities",
        help="also write the probability map here (a folder for folder input; .zarr to stream)",
    )
    add_predict_options(pred)
    add_stream_options(pred)
    add_force_option(
        pred,
        "replace a TIFF --out or --probabilities that bnadapt predict did not write (a ground "
        "truth, a mask corrected by hand?; default: refuse; an earlier prediction is replaced)",
    )
    return pred


def _adapt(commands) -> argparse.ArgumentParser:
    adapt = commands.add_parser(
        "adapt", help="re-estimate BatchNorm statistics on unlabeled target data"
    )
    adapt.add_argument("--model", required=True, help=MODEL_HELP)
    add_architecture_options(adapt)
    adapt.add_argument("--target", help=f"unlabeled target data: {IMAGE_HELP}")
    add_key_option(adapt)
    adapt.add_argument("--out", required=True, help="adapted model file to write")
    add_force_option(adapt, MODEL_REPLACED)
    adapt.add_argument(
        "--cure", choices=(*CURES, *STROKE_CURES),
        help="what to change: adabn = re-estimate the BatchNorm statistics; histogram, fda = "
        "bring the input's intensities / low frequencies to the source fingerprint's (alone or "
        "+adabn); alpha-entropy = the source/target blend of least prediction entropy; tent = "
        "then tune the BatchNorm affine terms (guarded); self-training = fine-tune on confident "
        "pseudo-labels (minutes); auto = choose without labels; strokes, adabn+strokes = "
        f"fine-tune on painted --strokes (after AdaBN) (default: {ADAPT.cure})",
    )  # fmt: skip
    adapt.add_argument(
        "--strokes",
        help="for the stroke cures: a labels TIFF of the target's shape, 0 = not labelled, "
        "1 = background, 2 = foreground (multi-class models: class index + 1)",
    )
    adapt.add_argument(
        "--stroke-steps", type=int,
        help=f"for the stroke cures: at most this many steps (default: {ADAPT.stroke_steps})",
    )  # fmt: skip
    adapt.add_argument(
        "--polarity", choices=POLARITY,
        help="auto = invert the input when its contrast reads as inverted against the model's "
        f"fingerprint; keep; invert (default: {ADAPT.polarity})",
    )  # fmt: skip
    adapt.add_argument(
        "--fda-beta", type=finite_float,
        help=f"for fda: frequencies below this (cycles/pixel) take the source's amplitude "
        f"(default: {ADAPT.fda_beta:g})",
    )  # fmt: skip
    adapt.add_argument(
        "--tent-steps", type=int, help=f"for tent: optimisation steps (default: {ADAPT.tent_steps})"
    )
    adapt.add_argument(
        "--self-training-steps", type=int,
        help=f"for self-training: at most this many steps (default: {ADAPT.self_training_steps})",
    )  # fmt: skip
    add_scale_options(adapt)
    adapt.add_argument(
        "--mode", choices=MODES,
        help="standard = AdaBN, one pass with exactly pooled batch statistics; consistent = "
        "the statistics each layer sees at inference (fixed-point passes); ema = PyTorch's "
        f"moving average, as in the original paper's code (default: {ADAPT.mode})",
    )  # fmt: skip
    adapt.add_argument(
        "--alpha", type=finite_float,
        help=f"blend with the source statistics: 0 = source, 1 = fully adapted (default: {ADAPT.alpha:g})",
    )  # fmt: skip
    adapt.add_argument(
        "--prior-strength", type=finite_float,
        help="N of Schneider et al.: alpha = n / (N + n) with n the patches used; overrides --alpha",
    )  # fmt: skip
    adapt.add_argument(
        "--patches", type=int,
        help=f"patches sampled from the target; all of it when it holds fewer (default: {ADAPT.patches})",
    )  # fmt: skip
    adapt.add_argument(
        "--patch-size", type=int,
        help="patch edge in pixels (default: the model's training patch, at least 128 in 2D, 64 in 3D)",
    )  # fmt: skip
    adapt.add_argument(
        "--layers",
        help=f"which BatchNorm layers: {', '.join(GROUPS)}, first:K, or comma-separated layer "
        f"names/prefixes (default: {ADAPT.layers})",
    )
    adapt.add_argument(
        "--statistics", choices=STATISTICS,
        help=f"both, mean (keep source variances) or variance (keep source means) (default: {ADAPT.statistics})",
    )  # fmt: skip
    adapt.add_argument(
        "--momentum", type=finite_float, help=f"for --mode ema (default: {ADAPT.momentum:g})"
    )
    adapt.add_argument(
        "--roi", help="TIFF mask, same shape as the target: sample only where nonzero"
    )
    adapt.add_argument(
        "--batch-size", type=int, help=f"patches per forward pass (default: {ADAPT.batch_size})"
    )
    adapt.add_argument(
        "--seed", type=int, help=f"seed of the patch sampling (default: {ADAPT.seed})"
    )
    adapt.add_argument("--device", help=DEVICE_HELP)
    add_cluster_options(adapt, "measure the statistics' batches")
    adapt.add_argument(
        "--reset", action="store_true", help="write the model back with its source statistics"
    )
    return adapt


def _report(commands) -> argparse.ArgumentParser:
    report = commands.add_parser(
        "report", help="diagnose a shift: latent distances, mask quality, figures, a reading"
    )
    report.add_argument("--model", required=True, help=f"{MODEL_HELP} (its source statistics)")
    add_architecture_options(report)
    report.add_argument(
        "--adapted", help="the adapted model; without it the model is adapted with defaults first"
    )
    report.add_argument("--input", required=True, help=f"target image or volume: {IMAGE_HELP}")
    add_key_option(report)
    report.add_argument("--labels", help="ground truth for --input: adds Dice and IoU")
    report.add_argument(
        "--source", help="source-domain image/volume: the empirical reference for the latents"
    )
    report.add_argument("--out", required=True, help="folder for report.json and the figures")
    add_force_option(
        report, "replace report.json, the figures and tables in --out even when bnadapt report "
        "did not write them (default: refuse; an earlier report is replaced)",
    )  # fmt: skip
    report.add_argument(
        "--patches", type=int,
        help=f"patches sampled for adaptation and each latent capture (default: {LATENT.patches})",
    )  # fmt: skip
    report.add_argument("--device", help=DEVICE_HELP)
    add_scale_options(report)
    add_cluster_options(report, "measure the statistics and latent histograms")
    return report


def _fingerprint(commands) -> argparse.ArgumentParser:
    fingerprint = commands.add_parser(
        "fingerprint",
        help="add the source fingerprint (intensities, spectrum, voxel size, latent "
        "distributions) to a model trained elsewhere",
    )
    fingerprint.add_argument("--model", required=True, help=MODEL_HELP)
    add_architecture_options(fingerprint)
    fingerprint.add_argument(
        "--source", required=True, help=f"images like the model's training data: {IMAGE_HELP}"
    )
    add_key_option(fingerprint)
    fingerprint.add_argument(
        "--labels", help="their labels (nonzero = foreground): adds the foreground fraction"
    )
    fingerprint.add_argument("--out", required=True, help="model file to write")
    fingerprint.add_argument(
        "--voxel-size",
        help="the source images' voxel size in nm (z,y,x or y,x, or one value); the model "
        "then resamples other data to it (default: from the file's metadata)",
    )
    fingerprint.add_argument(
        "--patches", type=int, help=f"patches sampled from the source (default: {LATENT.patches})"
    )
    fingerprint.add_argument("--device", help=DEVICE_HELP)
    add_force_option(fingerprint, MODEL_REPLACED)
    return fingerprint


def _strokes(commands) -> argparse.ArgumentParser:
    strokes = commands.add_parser(
        "strokes",
        help="write the strokes a model was taught with (--cure strokes, adabn+strokes) as a "
        "labels TIFF: paint more on it, then adapt again with --strokes",
    )
    strokes.add_argument("--model", required=True, help=MODEL_HELP)
    strokes.add_argument(
        "--out", required=True,
        help="labels TIFF to write, on the target's grid (0 = not labelled, 1 = background, "
        "2 = foreground; multi-class models: class index + 1)",
    )  # fmt: skip
    add_force_option(strokes, "replace --out when it exists (default: refuse)")
    return strokes


def _gui(commands) -> argparse.ArgumentParser:
    gui = commands.add_parser(
        "gui", help="open napari with the sample volumes and the plugin's widgets docked"
    )
    gui.add_argument(
        "files", nargs="*",
        help="your images or volumes to open (TIFF, MRC, zarr/OME-Zarr, N5, HDF5); the "
        "synthetic sample volumes are then not opened",
    )  # fmt: skip
    gui.add_argument("--model", help=f"{MODEL_HELP}, loaded at start (default: demo)")
    gui.add_argument("--no-samples", action="store_true", help="do not open the sample data")
    return gui


def _demo(commands) -> argparse.ArgumentParser:
    demo = commands.add_parser("demo", help="run the whole workflow on bundled synthetic data")
    demo.add_argument("--out", help="folder for masks, adapted model and summary.json")
    demo.add_argument("--device", default="auto", help=DEVICE_HELP)
    return demo
