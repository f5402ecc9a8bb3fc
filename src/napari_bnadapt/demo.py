"""The bundled demo: synthetic source/target volumes and the demo model, end to end."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .adabn.config import AdaptConfig
from .adapt.api import adapt
from .arrays.metrics import dice
from .inference import PredictConfig, predict
from .io.files import atomic_output
from .io.images import write_tiff
from .jobs import ProgressCallback
from .model.checkpoint import load_model, save_model
from .synthetic import SOURCE, TARGET, make_volume

VOLUME_SHAPE = (24, 192, 192)
SOURCE_SEED = 1001
TARGET_SEED = 2002
#: Voxel size (z, y, x) in nm given to the sample layers, as for a FIB-SEM stack.
VOXEL_SIZE = (10.0, 5.0, 5.0)


@dataclass(frozen=True)
class SampleVolume:
    """A synthetic EM-like volume with its ground truth."""

    name: str
    image: np.ndarray
    truth: np.ndarray


def source_volume() -> SampleVolume:
    """A volume from the source domain the demo model was trained on."""
    image, truth = make_volume(VOLUME_SHAPE, SOURCE, seed=SOURCE_SEED)
    return SampleVolume("source (synthetic)", image, truth)


def target_volume() -> SampleVolume:
    """A volume from a shifted domain: brighter, more contrast, more noise."""
    image, truth = make_volume(VOLUME_SHAPE, TARGET, seed=TARGET_SEED)
    return SampleVolume("target (synthetic, shifted)", image, truth)


@dataclass(frozen=True)
class DemoSummary:
    """Dice scores of the demo run."""

    dice_source: float
    dice_target_before: float
    dice_target_after: float
    adaptation_seconds: float
    device: str


def run_demo(
    out_dir: str | Path | None = None,
    device: str = "auto",
    progress: ProgressCallback | None = None,
) -> DemoSummary:
    """Segment the source and target samples, adapt on the target, segment again.

    With ``out_dir``, writes the target volume and its ground truth, the three masks (TIFF),
    the adapted model and ``summary.json``: every file the CLI's other commands take.
    """
    model = load_model("demo")
    cfg = PredictConfig(device=device)
    source, target = source_volume(), target_volume()
    source_mask = predict(model, source.image, cfg, progress=progress).mask
    before = predict(model, target.image, cfg, progress=progress).mask
    started = time.perf_counter()
    result = adapt(
        model, target.image, AdaptConfig(device=device), target_name=target.name, progress=progress
    )
    seconds = time.perf_counter() - started
    after = predict(result.model, target.image, cfg, progress=progress).mask
    summary = DemoSummary(
        dice_source=dice(source_mask, source.truth),
        dice_target_before=dice(before, target.truth),
        dice_target_after=dice(after, target.truth),
        adaptation_seconds=round(seconds, 3),
        device=result.record.device,
    )
    if out_dir is not None:
        _write_outputs(Path(out_dir), target, source_mask, before, after, result.model, summary)
    return summary


def _write_outputs(
    out: Path, target: SampleVolume, source_mask, before, after, adapted_model, summary
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # The target as files: what `bnadapt adapt --target`, `--strokes` (painted on its grid)
    # and `report --labels` take, to try every command on the demo.
    write_tiff(out / "target.tif", target.image, VOXEL_SIZE, "nm")
    write_tiff(out / "target_truth.tif", target.truth, VOXEL_SIZE, "nm", labels=True)
    write_tiff(out / "source_mask.tif", source_mask, VOXEL_SIZE, "nm", labels=True)
    write_tiff(out / "target_mask_before.tif", before, VOXEL_SIZE, "nm", labels=True)
    write_tiff(out / "target_mask_adapted.tif", after, VOXEL_SIZE, "nm", labels=True)
    save_model(adapted_model, out / "demo_adapted.pt")
    with atomic_output(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(asdict(summary), indent=2))
