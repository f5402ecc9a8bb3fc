"""The diagnostics report: segment, adapt (if needed), compare, diagnose, write files.

``bnadapt report`` writes ``report.json`` and PNG figures into a folder; the same
:func:`build_report` can be called from Python.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..adapt.engine import AdaptConfig, adapt_steps
from ..inference import PredictConfig, Prediction, predict_steps
from ..io.files import atomic_output
from ..jobs import ProgressCallback, Steps, run_steps
from ..model.checkpoint import LoadedModel
from .diagnosis import Diagnosis, channel_rows, diagnose_steps, layer_overview
from .latents import LatentConfig
from .quality import compare_masks

FIGURES = ("masks.png", "histograms.png", "heatmap.png", "layers.png")
TABLES = ("shifts.csv",)


@dataclass
class Report:
    """The numbers (``numbers`` is what report.json holds) and what the figures need."""

    numbers: dict[str, Any]
    diagnosis: Diagnosis
    image: Any
    before: Prediction
    after: Prediction
    adapted: LoadedModel
    files: list[Path] = field(default_factory=list)


def build_report(
    model: LoadedModel,
    image: Any,
    adapted: LoadedModel | None = None,
    *,
    labels: np.ndarray | None = None,
    source: Any | None = None,
    adapt_config: AdaptConfig | None = None,
    predict_config: PredictConfig | None = None,
    latent_config: LatentConfig | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Report:
    """Segment ``image`` before and after adaptation and diagnose the shift.

    Without ``adapted``, ``model`` is adapted to ``image`` with ``adapt_config`` first.
    ``labels`` (ground truth) adds Dice and IoU; ``source`` adds the empirical source
    reference. ``model`` is never modified.
    """
    steps = report_steps(
        model, image, adapted, labels=labels, source=source, adapt_config=adapt_config,
        predict_config=predict_config, latent_config=latent_config,
    )  # fmt: skip
    return run_steps(steps, progress, should_stop)


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
) -> Steps[Report]:
    """:func:`build_report` as a generator of progress steps."""
    started = time.perf_counter()
    if model.adaptation is not None:
        # The "before" model must hold the source statistics.
        from ..adapt.engine import reset

        model = model.copy()
        reset(model)
    if adapted is None:
        adapted = (yield from adapt_steps(model, image, adapt_config, target_name="input")).model
    before = yield from predict_steps(model, image, predict_config)
    after = yield from predict_steps(adapted, image, predict_config)
    multiclass = before.labels is not None
    quality = compare_masks(
        {"probabilities": before.probabilities, "mask": _mask(before), "multiclass": multiclass},
        {"probabilities": after.probabilities, "mask": _mask(after), "multiclass": multiclass},
        labels,
    )
    diagnosis = yield from diagnose_steps(
        model, image, adapted, source=source, config=latent_config, quality=quality
    )
    numbers = {
        "model": {"name": model.name, "path": model.path, "format": model.format},
        "adaptation": adapted.adaptation,
        "quality": quality,
        **diagnosis.to_dict(),
        "layer_overview": layer_overview(diagnosis),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Report(numbers, diagnosis, image, before, after, adapted)


def write_report(report: Report, out_dir: str | Path, top_channels: int = 6) -> list[Path]:
    """Write ``report.json``, the figures and ``shifts.csv`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from .figures import plot_channel_histogram, plot_layer_overview, plot_masks, plot_shift_heatmap

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json"]
    with atomic_output(paths[0]) as tmp:
        tmp.write_text(json.dumps(_plain(report.numbers), indent=2))

    before, after = _mask(report.before), _mask(report.after)
    index = _most_changed_slice(before, after)
    fig = Figure(figsize=(10, 5), constrained_layout=True)
    plot_masks(
        fig.subplots(1, 2), _plane(report.image, before.shape, index), before[index], after[index]
    )
    paths.append(_save(fig, out / "masks.png"))

    diagnosis = report.diagnosis
    if diagnosis.before is not None:
        top = _most_shifted(diagnosis, top_channels)
        cols = 3
        fig = Figure(figsize=(12, 3.2 * -(-len(top) // cols)), constrained_layout=True)
        for ax, (layer, channel) in zip(fig.subplots(-(-len(top) // cols), cols).ravel(), top):
            plot_channel_histogram(ax, diagnosis, layer, channel)
        paths.append(_save(fig, out / "histograms.png"))
    fig = Figure(figsize=(10, 5), constrained_layout=True)
    axes = fig.subplots(1, 2 if diagnosis.shift_after else 1, squeeze=False)[0]
    for ax, after_flag in zip(axes, (False, True)):
        fig.colorbar(plot_shift_heatmap(ax, diagnosis, after=after_flag), ax=ax)
    paths.append(_save(fig, out / "heatmap.png"))
    fig = Figure(figsize=(8, 4), constrained_layout=True)
    plot_layer_overview(fig.subplots(), diagnosis)
    paths.append(_save(fig, out / "layers.png"))
    paths.append(write_shift_csv(diagnosis, out / "shifts.csv"))
    report.files = paths
    return paths


def write_shift_csv(diagnosis: Diagnosis, path: str | Path, layer: str | None = None) -> Path:
    """Every per-channel distance (before, and after) as CSV, one row per layer channel."""
    import csv
    import io

    rows = channel_rows(diagnosis, layer)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["layer", "channel"])
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(buffer.getvalue())
    return path


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


def _mask(prediction: Prediction) -> np.ndarray:
    return prediction.labels if prediction.labels is not None else prediction.mask


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
