"""Helpers of every ``bnadapt`` command: options given, voxel sizes, progress printing."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import numpy as np

from ..arrays.resampling import parse_voxel_size
from ..errors import InputDataError
from ..inference import PredictConfig
from ..io.images import NamedImage
from ..io.volumes import looks_like_labels
from ..jobs import Progress, ProgressCallback
from ..model.architecture import Architecture
from ..model.checkpoint import load_model
from ..model.loaded import LoadedModel


def predict_config(args: argparse.Namespace) -> PredictConfig:
    """The :class:`PredictConfig` of the prediction options the user gave."""
    options = given(args, "batch_size", "device", "amp", "precision", "threshold", "slice_axis")
    if args.tile is not None:
        options["tile_shape"] = args.tile
    return PredictConfig(**options)


def voxel_size_of(args: argparse.Namespace, image: NamedImage) -> tuple[float, ...] | None:
    """The input's voxel size (nm): ``--voxel-size``, else the file's; None with
    ``--no-rescale`` (the model then runs at the input's own pixel size)."""
    if getattr(args, "no_rescale", False):
        return None
    text = getattr(args, "voxel_size", None)
    given_size = parse_voxel_size(text, np.ndim(image.data), "--voxel-size")
    return given_size or image.voxel_size


def say_scale(args: argparse.Namespace, image: NamedImage, model: LoadedModel) -> None:
    """Say on stderr what happened to the input's scale, once the command has succeeded
    (nothing with ``--no-rescale``): see :meth:`LoadedModel.scale_note`."""
    if getattr(args, "no_rescale", False):
        return
    shape, axis = tuple(np.shape(image.data)), getattr(args, "slice_axis", None)
    size = voxel_size_of(args, image)
    text = model.scale_note(image.name, shape, size, axis)
    if text is not None:
        how = "--voxel-size, e.g. 50,4.6,4.6" if size is None else "--no-rescale turns this off"
        note(f"{text} ({how})")


def say_if_labels(images: list[NamedImage], option: str) -> None:
    """Say on stderr when an image read as ``option`` looks like labels (integer pixels of
    a few values: a mask, an annotation), not an EM image: a walkthrough segmented a
    membrane mask ("foreground 100 %") with no hint. In-memory images only (a lazy volume
    is not read whole to tell)."""
    for image in images:
        if isinstance(image.data, np.ndarray) and looks_like_labels(image.data):
            values = np.unique(image.data).size
            note(
                f"{option} {image.name} holds {values} value{'s' * (values != 1)} only: it "
                "looks like labels (a mask, an annotation), not an EM image; check the file"
            )


def note(message: str) -> None:
    """One line on stderr that the user should read, apart from the command's results."""
    print(f"bnadapt: note: {message}", file=sys.stderr)


def model_from(args: argparse.Namespace) -> LoadedModel:
    """``--model``, read as a state_dict of ``--architecture`` when one is named; a
    bioimage.io package's own network code runs only with ``--trust-code``."""
    target = getattr(args, "architecture", None)
    trust_code = bool(getattr(args, "trust_code", False))
    if not target:
        if getattr(args, "architecture_args", None):
            raise InputDataError("--architecture-args needs --architecture (the network class)")
        return load_model(args.model, trust_code=trust_code)
    return load_model(args.model, Architecture.parse(target, args.architecture_args))


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among ``names`` the user set: the rest keep their config's default."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def printer(lines: int = 20) -> ProgressCallback:
    """A progress callback printing to stderr about ``lines`` times over a job (and when
    what is being done changes)."""
    last: list[Any] = [None, None]

    def show(step: Progress) -> None:
        if not step.message:
            return  # nothing to say (a job's first tick, or a last one that names nothing)
        tick = int(step.fraction * lines)
        # What is being done, without its counters ("step 57/200"): a new line when the
        # work changes, not at every step it counts.
        kind = re.sub(r"\d+", "#", step.message)
        if (tick, kind) != tuple(last) or step.done == step.total:
            percent = f"{step.fraction:4.0%}"
            detail = f" ({step.detail})" if step.detail else ""
            print(f"  [{percent}] {step.message}{detail}", file=sys.stderr, flush=True)
            last[:] = [tick, kind]

    return show
