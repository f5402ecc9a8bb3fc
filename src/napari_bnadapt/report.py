"""The diagnostics report: segment, adapt (if needed), compare, diagnose, write files.

``bnadapt report`` writes ``report.json`` and PNG figures into a folder; the same
:func:`build_report` can be called from Python.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from . import __version__
from .adabn.config import AdaptConfig
from .adapt.api import adapt_steps, reset
from .cluster import ClusterConfig
from .diagnostics.diagnosis import Diagnosis, diagnose_steps
from .diagnostics.figures import (
    plot_channel_histogram,
    plot_intensities,
    plot_layer_overview,
    plot_masks,
    plot_shift_heatmap,
)
from .diagnostics.latents import LatentConfig
from .diagnostics.quality import MaskComparison, compare_masks, structure_of
from .diagnostics.tables import layer_overview, write_shift_csv
from .inference import PredictConfig, Prediction, predict_steps
from .io.files import atomic_output, write_json
from .jobs import Stages, Steps, blocking
from .model.loaded import LoadedModel


@dataclass
class Report:
    """The numbers (``numbers`` is what report.json holds) and what the figures need."""

    numbers: dict[str, Any]
    diagnosis: Diagnosis
    quality: MaskComparison
    image: Any
    before: Prediction
    after: Prediction
    adapted: LoadedModel
    files: list[Path] = field(default_factory=list)


def report_steps(
    model: LoadedModel,
    image: Any,
    adapted: LoadedModel | None = None,
    *,
    labels: np.ndarray | None = None,
    source: Any | None = None,
    adapt_config: AdaptConfig | None = None,
    predict_config: PredictConfig | None = None,
    latent_config: LatentConfig | None = None,
    voxel_size: tuple[float, ...] | None = None,
    cluster: ClusterConfig | None = None,
) -> Steps[Report]:
    """Segment ``image`` before and after adaptation and diagnose the shift.

    Without ``adapted``, ``model`` is adapted to ``image`` with ``adapt_config`` first.
    ``labels`` (ground truth) adds Dice, IoU and the field's scores (for what the model
    segments: :func:`~napari_bnadapt.diagnostics.quality.structure_of`); ``source`` adds
    the empirical source reference. ``voxel_size`` (nm) resamples ``image`` to the model's
    scale wherever the model runs. ``cluster``: the adaptation's statistics and the latent
    captures run on dask.distributed workers (same results). ``model`` is never modified.
    Every sub-job reports on one progress scale.
    """
    started = time.perf_counter()
    if model.adaptation is not None:
        # The "before" model must hold the source statistics.
        model = model.copy()
        reset(model)
    stages = Stages(4 if adapted is None else 3)
    if adapted is None:
        adapting = adapt_steps(
            model, image, adapt_config, target_name="input", voxel_size=voxel_size,
            cluster=cluster,
        )  # fmt: skip
        adapted = (yield from stages.run(adapting)).model
    before = yield from stages.run(
        predict_steps(model, image, predict_config, voxel_size=voxel_size)
    )
    after = yield from stages.run(
        predict_steps(adapted, image, predict_config, voxel_size=voxel_size)
    )
    quality = compare_masks(before, after, labels, structure_of(model))
    diagnosing = diagnose_steps(
        model, image, adapted, source=source, config=latent_config, quality=quality,
        voxel_size=voxel_size, cluster=cluster,
    )  # fmt: skip
    diagnosis = yield from stages.run(diagnosing)
    numbers = {
        # What wrote it: a later report may replace this folder's files (replacing.py).
        "software": f"napari-bnadapt {__version__}",
        "model": {"name": model.name, "path": model.path, "format": model.format},
        "adaptation": adapted.adaptation.to_dict() if adapted.adaptation else None,
        "quality": quality.to_dict(),
        **diagnosis.to_dict(),
        "layer_overview": layer_overview(diagnosis),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Report(numbers, diagnosis, quality, image, before, after, adapted)


build_report = blocking(report_steps, "build_report")


def write_report(report: Report, out_dir: str | Path, top_channels: int = 6) -> list[Path]:
    """Write ``report.json``, the :data:`FIGURES` and the :data:`TABLES` into ``out_dir``.

    ``top_channels``: how many of the most shifted channels ``histograms.png`` shows.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Everything is drawn into a staging folder first and moved in only once complete: a
    # figure that fails leaves no half-written report behind.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staged = [write_json(report.numbers, staging / "report.json")]
        for name, draw in FIGURES.items():
            figure = draw(report, top_channels)
            if figure is not None:
                staged.append(_save(figure, staging / name))
        for name, write in TABLES.items():
            staged.append(write(report.diagnosis, staging / name))
        out.mkdir(exist_ok=True)
        paths = [out / p.name for p in staged]
        for done, path in zip(staged, paths):
            os.replace(done, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.files = paths
    return paths


def draw_masks(report: Report, _top: int = 0) -> Figure:
    """The slice where the masks before and after differ most, each over the image."""
    before, after = report.before.segmentation, report.after.segmentation
    index = _most_changed_slice(before, after)
    figure = Figure(figsize=(10, 5), constrained_layout=True)
    plane = _plane(report.image, before.shape, index)
    plot_masks(figure.subplots(1, 2), plane, before[index], after[index])
    return figure


def draw_histograms(report: Report, top_channels: int = 6) -> Figure | None:
    """The most shifted channels' histograms (None when no latents could be captured)."""
    diagnosis = report.diagnosis
    if diagnosis.before is None:
        return None
    top = _most_shifted(diagnosis, top_channels)
    cols, rows = 3, -(-len(top) // 3)
    figure = Figure(figsize=(12, 3.2 * rows), constrained_layout=True)
    for ax, (layer, channel) in zip(figure.subplots(rows, cols).ravel(), top):
        plot_channel_histogram(ax, diagnosis, layer, channel)
    return figure


def draw_heatmap(report: Report, _top: int = 0) -> Figure:
    """Layer × channel shift before (and after) adaptation, on one colour scale."""
    diagnosis = report.diagnosis
    figure = Figure(figsize=(10, 5), constrained_layout=True)
    axes = figure.subplots(1, 2 if diagnosis.shift_after else 1, squeeze=False)[0]
    for ax, after in zip(axes, (False, True)):
        figure.colorbar(plot_shift_heatmap(ax, diagnosis, after=after), ax=ax)
    return figure


def draw_intensities(report: Report, _top: int = 0) -> Figure:
    """The target's input intensities against the fingerprint's."""
    figure = Figure(figsize=(6, 4), constrained_layout=True)
    plot_intensities(figure.subplots(), report.diagnosis)
    return figure


def draw_layers(report: Report, _top: int = 0) -> Figure:
    """Which layers shifted most, before and after."""
    figure = Figure(figsize=(8, 4), constrained_layout=True)
    plot_layer_overview(figure.subplots(), report.diagnosis)
    return figure


#: The report's figures, in the order they are written: file name → drawing.
FIGURES: dict[str, Callable[[Report, int], Figure | None]] = {
    "masks.png": draw_masks,
    "histograms.png": draw_histograms,
    "heatmap.png": draw_heatmap,
    "layers.png": draw_layers,
    "intensities.png": draw_intensities,
}
#: The report's tables: file name → writer.
TABLES: dict[str, Callable[[Diagnosis, Path], Path]] = {"shifts.csv": write_shift_csv}


def _most_shifted(diagnosis: Diagnosis, count: int) -> list[tuple[str, int]]:
    """(layer, channel) pairs with the largest standardised W2 before adaptation.

    BatchNorm inputs and the bottleneck output are standardised differently, so they are
    ranked separately: two thirds of the panels go to BatchNorm channels.
    """
    pairs = {"batchnorm": [], "bottleneck": []}
    for name, shift in diagnosis.shift_before.items():
        for channel, value in enumerate(shift.values["wasserstein_standardised"]):
            pairs[shift.kind].append((float(value), name, channel))
    bn_count = count - min(len(pairs["bottleneck"]), count // 3)
    chosen = sorted(pairs["batchnorm"], reverse=True)[:bn_count]
    chosen += sorted(pairs["bottleneck"], reverse=True)[: count - len(chosen)]
    return [(name, channel) for _, name, channel in chosen]


def _most_changed_slice(before: np.ndarray, after: np.ndarray) -> tuple:
    """The 2D slice (index tuple) where the two masks differ most (the middle if none)."""
    if before.ndim == 2:
        return (slice(None), slice(None))
    flat = before.reshape(before.shape[0], -1) != after.reshape(after.shape[0], -1)
    changed = flat.sum(axis=1)
    z = int(np.argmax(changed)) if changed.any() else before.shape[0] // 2
    return (z, slice(None), slice(None))


def _plane(image: Any, mask_shape: tuple[int, ...], index: tuple) -> np.ndarray:
    """The image plane under ``index``; of a multichannel image, the first channel."""
    image = np.asarray(image)
    if image.shape != mask_shape:
        if image.shape[:-1] == mask_shape:
            image = image[..., 0]
        elif image.shape[1:] == mask_shape:
            image = image[0]
        else:  # (Z, C, Y, X)
            image = image[:, 0]
    return image[index]


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
