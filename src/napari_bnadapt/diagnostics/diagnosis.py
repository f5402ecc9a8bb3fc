"""Why adaptation works or not: latents source / before / after, shifts and a reading.

One entry point, :func:`diagnose`, serves the CLI report and the napari histogram widget.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..jobs import Progress, ProgressCallback, Steps, run_steps
from ..model.checkpoint import LoadedModel
from .distances import histogram_w1, sliced_wasserstein
from .latents import (
    BOTTLENECK,
    LatentCapture,
    LatentConfig,
    can_capture,
    capture_steps,
)
from .shift import LayerShift, compare_capture, layer_scores, stats_shift
from .verdict import Verdict, judge

#: Progress units per stage, so several passes share one progress bar.
_STAGE = 100
#: Quantile levels reported per channel (in standardised frame units).
QUANTILES = (0.05, 0.5, 0.95)


@dataclass
class Diagnosis:
    """Everything the report and the histogram widget show.

    ``before``/``after``/``source`` are latent captures (None for TorchScript models, which
    refuse hooks); ``shift_before``/``shift_after`` compare them with the source;
    ``moved`` compares the stored statistics of the adapted model with the source ones.
    """

    before: LatentCapture | None
    after: LatentCapture | None
    source: LatentCapture | None
    shift_before: dict[str, LayerShift]
    shift_after: dict[str, LayerShift] | None
    moved: dict[str, LayerShift] | None
    sliced: dict[str, float]
    verdict: Verdict

    @property
    def reference_label(self) -> str:
        return "source images" if self.source is not None else "source statistics (Gaussian)"

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for report.json."""
        out: dict[str, Any] = {
            "reference": self.reference_label,
            "verdict": self.verdict.to_dict(),
            "layers_before": [s.summary() for s in self.shift_before.values()],
            "layer_ranking_before": _ranking(self.shift_before),
            "sliced_wasserstein_bottleneck": self.sliced,
        }
        if self.shift_after is not None:
            out["layers_after"] = [s.summary() for s in self.shift_after.values()]
        if self.moved is not None:
            out["statistics_moved"] = [s.summary() for s in self.moved.values()]
        captures = [c for c in (self.source, self.before, self.after) if c is not None]
        out["capture"] = [
            {"label": c.label, "patches": c.patches, "seconds": c.seconds, "bytes": c.nbytes}
            for c in captures
        ]
        return out


def diagnose(
    model: LoadedModel,
    target: Any,
    adapted: LoadedModel | None = None,
    *,
    source: Any | None = None,
    config: LatentConfig | None = None,
    quality: dict | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Diagnosis:
    """Measure latents of ``target`` under ``model`` (and ``adapted``), compare, judge.

    ``source`` (optional) is source-domain data: the empirical reference. Without it the
    reference is the Gaussian of the stored source statistics. ``quality`` (from
    :func:`napari_bnadapt.quality.compare_masks`) adds mask changes to the reading.
    """
    steps = diagnose_steps(model, target, adapted, source=source, config=config, quality=quality)
    return run_steps(steps, progress, should_stop)


def diagnose_steps(
    model: LoadedModel,
    target: Any,
    adapted: LoadedModel | None = None,
    *,
    source: Any | None = None,
    config: LatentConfig | None = None,
    quality: dict | None = None,
) -> Steps[Diagnosis]:
    """:func:`diagnose` as a generator of :class:`Progress`."""
    moved = stats_shift(model.source_stats, _current_stats(adapted)) if adapted else None
    if not can_capture(model):
        if moved is None:
            raise InputDataError(
                "a TorchScript model can only be diagnosed by comparing its stored statistics: "
                "adapt it first and pass the adapted model"
            )
        # Without hooks, the adapted statistics are the measured target moments.
        verdict = judge(moved, None, quality)
        yield Progress(1, 1, "compared stored statistics")
        return Diagnosis(None, None, None, moved, None, moved, {}, verdict)
    jobs = [("target before", model, target)]
    if adapted is not None:
        jobs.append(("target after", adapted, target))
    if source is not None:
        jobs.append(("source", model, source))
    captures: dict[str, LatentCapture] = {}
    for stage, (label, net, data) in enumerate(jobs):
        steps = capture_steps(net, data, config, label=label)
        captures[label] = yield from _staged(steps, stage, len(jobs))
    reference = captures.get("source")
    before, after = captures["target before"], captures.get("target after")
    shift_before = compare_capture(before, reference)
    shift_after = compare_capture(after, reference) if after is not None else None
    polarity = polarity_check(after, reference) if after is not None else None
    verdict = judge(shift_before, shift_after, quality, polarity)
    sliced = _sliced(before, after, reference)
    return Diagnosis(before, after, reference, shift_before, shift_after, moved, sliced, verdict)


def polarity_check(observed: LatentCapture, reference: LatentCapture | None) -> dict | None:
    """Does the first BatchNorm layer look like the source, or like its mirror image?

    Both captures are standardised by their own statistics, so after adaptation only the
    shape is left. An intensity inversion flips the sign of every first-layer response:
    the histograms then match the source's mirrored (z → −z) better than the source's.
    Needs source images; None without them.
    """
    if reference is None:
        return None
    name = next((n for n, layer in observed.layers.items() if layer.kind == "batchnorm"), None)
    if name is None or name not in reference.layers:
        return None
    layer, source = observed.layers[name], reference.layers[name]
    width = float(layer.edges[1] - layer.edges[0])
    p, q = layer.probabilities(), source.probabilities()
    direct, mirrored = histogram_w1(p, q, width), histogram_w1(p, q[:, ::-1], width)
    closer = float(np.mean(mirrored < direct))
    return {
        "layer": name,
        "direct": float(direct.mean()),
        "mirrored": float(mirrored.mean()),
        "channels_closer_to_mirror": closer,
        "inverted": closer > 0.5 and float(mirrored.mean()) < 0.5 * float(direct.mean()),
    }


def layer_overview(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """Per layer: mean standardised W2 before / after and the empirical residual."""
    before = layer_scores(diagnosis.shift_before)
    after = layer_scores(diagnosis.shift_after) if diagnosis.shift_after else {}
    residual = (
        layer_scores(diagnosis.shift_after, "wasserstein_empirical")
        if diagnosis.shift_after
        else {}
    )
    return [
        {"layer": name, "before": value, "after": after.get(name), "residual": residual.get(name)}
        for name, value in before.items()
    ]


def channel_rows(diagnosis: Diagnosis, layer: str | None = None) -> list[dict[str, Any]]:
    """One row per (layer, channel): every distance before, and after when measured."""
    rows = []
    for name, shift in diagnosis.shift_before.items():
        if layer is not None and name != layer:
            continue
        after = diagnosis.shift_after.get(name) if diagnosis.shift_after else None
        spreads = {
            label: capture.layers[name].quantiles(QUANTILES)
            for label, capture in (("before", diagnosis.before), ("after", diagnosis.after))
            if capture is not None and name in capture.layers
        }
        for channel in range(shift.channels):
            row: dict[str, Any] = {"layer": name, "channel": channel}
            row.update({k: float(v[channel]) for k, v in shift.values.items()})
            if after is not None:
                row.update({f"{k}_after": float(v[channel]) for k, v in after.values.items()})
            for label, values in spreads.items():
                for level, value in zip(QUANTILES, values[channel]):
                    row[f"q{round(level * 100):02d}_{label}"] = float(value)
            rows.append(row)
    return rows


def _staged(steps: Steps, stage: int, stages: int) -> Generator[Progress, None, Any]:
    """Re-express one stage's progress as part of the whole job."""
    while True:
        try:
            step = next(steps)
        except StopIteration as finished:
            return finished.value
        done = stage * _STAGE + int(step.fraction * _STAGE)
        yield Progress(done, stages * _STAGE, step.message)


def _sliced(
    before: LatentCapture, after: LatentCapture | None, reference: LatentCapture | None
) -> dict[str, float]:
    if before.bottleneck_samples is None:
        return {}
    if reference is not None and reference.bottleneck_samples is not None:
        ref = reference.bottleneck_samples
    else:
        ref = _rectified_gaussian_samples(before, len(before.bottleneck_samples))
    out = {"before": sliced_wasserstein(before.bottleneck_samples, ref)}
    if after is not None and after.bottleneck_samples is not None:
        out["after"] = sliced_wasserstein(after.bottleneck_samples, ref)
    return out


def _rectified_gaussian_samples(capture: LatentCapture, count: int) -> np.ndarray:
    """Bottleneck vectors as the source statistics predict them (channels independent)."""
    layer = capture.layers[BOTTLENECK]
    rng = np.random.default_rng(0)
    return np.maximum(rng.standard_normal((count, layer.channels)), layer.floor[None, :])


def _current_stats(model: LoadedModel):
    from ..model.bn_layers import read_bn_stats

    return read_bn_stats(model.module)


def _ranking(table: dict[str, LayerShift]) -> list[str]:
    scores = layer_scores(table)
    return sorted(scores, key=scores.get, reverse=True)
