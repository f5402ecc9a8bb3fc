"""Why adaptation works or not: latents source / before / after, shifts and a reading.

One entry point, :func:`diagnose`, serves the CLI report and the napari histogram widget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cluster import ClusterConfig, dask_client
from ..errors import InputDataError
from ..jobs import Progress, Stages, Steps, blocking
from ..model.bn_layers import read_bn_stats
from ..model.loaded import LoadedModel
from .capture import can_capture, capture_steps
from .distances import sliced_wasserstein
from .fingerprinting import InputStatistics, stored_reference
from .latents import BOTTLENECK, LatentCapture, LatentConfig
from .polarity import polarity_check
from .quality import MaskComparison, compare_masks
from .shift import LayerShift, compare_capture, layer_scores, stats_shift
from .verdict import Verdict, judge


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
    intensities: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def intensity_shift(self) -> float | None:
        """W1 between the target's network-input intensities and the fingerprint's (in the
        normalised units), None without a fingerprint."""
        if "target" not in self.intensities or "source" not in self.intensities:
            return None
        return float(np.mean(np.abs(self.intensities["target"] - self.intensities["source"])))

    @property
    def reference_label(self) -> str:
        if self.source is None:
            return "source statistics (Gaussian)"
        return "source images" if self.source.label == "source" else self.source.label

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for report.json."""
        out: dict[str, Any] = {
            "reference": self.reference_label,
            "verdict": self.verdict.to_dict(),
            "layers_before": [s.summary() for s in self.shift_before.values()],
            "layer_ranking_before": _ranking(self.shift_before),
            "sliced_wasserstein_bottleneck": self.sliced,
            "intensity_shift": self.intensity_shift,
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


def diagnose_steps(
    model: LoadedModel,
    target: Any,
    adapted: LoadedModel | None = None,
    *,
    source: Any | None = None,
    config: LatentConfig | None = None,
    quality: MaskComparison | None = None,
    voxel_size: tuple[float, ...] | None = None,
    cluster: ClusterConfig | None = None,
) -> Steps[Diagnosis]:
    """Measure latents of ``target`` under ``model`` (and ``adapted``), compare, judge.

    ``source`` (optional) is source-domain data: the empirical reference. Without it the
    reference is the model's fingerprint (the source's stored latent distributions), and
    without one the Gaussian of the stored source statistics. ``quality`` (from
    :func:`napari_bnadapt.diagnostics.quality.compare_masks`) adds mask changes to the
    reading. ``voxel_size`` (nm) resamples the target to the model's scale; ``cluster``
    runs the captures' batches on dask.distributed workers (same result). Yields a
    :class:`Progress` after every batch, all captures on one scale.
    """
    moved = stats_shift(model.source_stats, read_bn_stats(adapted.module)) if adapted else None
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
    jobs = [("target before", model, target, voxel_size)]
    if adapted is not None:
        jobs.append(("target after", adapted, target, voxel_size))
    if source is not None:
        jobs.append(("source", model, source, None))  # source data is at the model's scale
    captures: dict[str, LatentCapture] = {}
    stages = Stages(len(jobs))
    cfg = config or LatentConfig()
    inputs = InputStatistics(-(-cfg.patches // cfg.batch_size), cfg.seed)
    with dask_client(cluster or ClusterConfig()) as client:
        for label, net, data, size in jobs:
            watch = inputs if label == "target before" else None
            captures[label] = yield from stages.run(
                capture_steps(
                    net, data, cfg, label=label, voxel_size=size, on_input=watch, client=client
                )
            )
    intensities = {"target": inputs.quantiles()}
    if model.fingerprint is not None:
        intensities["source"] = model.fingerprint.quantiles
    reference = captures.get("source") or stored_reference(model, cfg)
    if quality is None and adapted is not None:
        quality = _patch_quality(captures["target before"], captures["target after"])
    before, after = captures["target before"], captures.get("target after")
    shift_before = compare_capture(before, reference)
    shift_after = compare_capture(after, reference) if after is not None else None
    polarity = polarity_check(after, reference) if after is not None else None
    source_foreground = model.fingerprint.foreground_fraction if model.fingerprint else None
    verdict = judge(
        shift_before, shift_after, quality, polarity, source_foreground, reference is not None
    )
    sliced = _sliced(before, after, reference)
    return Diagnosis(
        before, after, reference, shift_before, shift_after, moved, sliced, verdict, intensities
    )


diagnose = blocking(diagnose_steps, "diagnose")


def _patch_quality(before: LatentCapture, after: LatentCapture) -> MaskComparison | None:
    """Masks before and after on the captured patches (the same patches for both): what
    the reading needs when no full segmentation was compared."""
    if before.outputs is None or after.outputs is None:
        return None
    return compare_masks(before.outputs, after.outputs)


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


def _ranking(table: dict[str, LayerShift]) -> list[str]:
    scores = layer_scores(table)
    return sorted(scores, key=scores.get, reverse=True)
