"""``auto``: several cures tried on the target, one kept by a label-free rule.

Every candidate is applied to its own copy of the model; each is then measured on the same
probe patches (read through its own input steps): prediction entropy, foreground fraction
and the agreement of its masks with every other candidate's. The rule
(:func:`choose_cure`) is validated on the real EM pair and the synthetic shift grid in
docs/real_em.md; the figures of every candidate go into the record.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..adabn.config import AdaptConfig
from ..adabn.sampling import sample_target, to_model_scale
from ..device import resolve_device
from ..jobs import Stages, Steps
from ..model.loaded import LoadedModel
from .engine import AdaptResult, cure_steps
from .probe import Measurement, Probe

#: Cures ``auto`` tries (input-level ones only when the model carries a fingerprint).
CANDIDATES = ("adabn", "histogram+adabn", "fda+adabn", "alpha-entropy", "tent")
NEEDS_FINGERPRINT = ("histogram+adabn", "fda+adabn")


def candidates_for(model: LoadedModel) -> tuple[str, ...]:
    if model.fingerprint is None:
        return tuple(c for c in CANDIDATES if c not in NEEDS_FINGERPRINT)
    return CANDIDATES


def auto_steps(
    model: LoadedModel,
    target: Any,
    config: AdaptConfig,
    roi: Any | None = None,
    target_name: str = "target",
    voxel_size: tuple[float, ...] | None = None,
) -> Steps[AdaptResult]:
    """Try :func:`candidates_for` the model, keep the one :func:`choose_cure` picks."""
    cures = candidates_for(model)
    stages = Stages(len(cures))
    results: dict[str, AdaptResult] = {}
    # Resampled once for all candidates (it can be the slowest part on a large target).
    scaled = to_model_scale(model, target, voxel_size, config.slice_axis)
    if roi is not None:
        roi = to_model_scale(
            model, (np.asarray(roi) != 0).astype(np.uint8), voxel_size, config.slice_axis
        )
    for cure in cures:
        results[cure] = yield from stages.run(
            cure_steps(model, scaled, replace(config, cure=cure), roi=roi, target_name=target_name)
        )
    measurements = {
        cure: _measure(result.model, scaled, config, roi) for cure, result in results.items()
    }
    scores = score_candidates(measurements)
    chosen = choose_cure(scores)
    result = results[chosen]
    first = target[0] if isinstance(target, (list, tuple)) else target
    record = replace(
        result.record,
        voxel_size=tuple(voxel_size) if voxel_size else None,
        zoom=model.zoom_for(tuple(first.shape), voxel_size, config.slice_axis),
        cure="auto",
        details={**result.record.details, "auto": {"chosen": chosen, "scores": scores}},
        config={**result.record.config, "cure": "auto"},
    )
    result.model.adaptation = record
    return AdaptResult(result.model, result.stats, record)


def score_candidates(measurements: dict[str, Measurement]) -> dict[str, dict[str, float]]:
    """Per candidate: probe entropy, foreground fraction, mean agreement with the others,
    agreement with AdaBN."""
    scores = {}
    for cure, measured in measurements.items():
        others = [measured.agreement(m) for c, m in measurements.items() if c != cure]
        scores[cure] = {
            "entropy": round(measured.entropy, 5),
            "foreground": round(measured.foreground, 5),
            "consensus": round(float(np.mean(others)) if others else 1.0, 5),
            "agreement_with_adabn": round(measured.agreement(measurements["adabn"]), 5),
        }
    return scores


def choose_cure(scores: dict[str, dict[str, float]]) -> str:
    """The candidate whose masks agree most with the others' (the consensus), AdaBN on
    ties."""
    return max(scores, key=lambda cure: (scores[cure]["consensus"], cure == "adabn"))


def _measure(model: LoadedModel, target: Any, config: AdaptConfig, roi: Any) -> Measurement:
    """The candidate's predictions on the probe patches, read through its input steps."""
    targets, patches, _ = sample_target(
        model, target, config.patches, config.patch_size, config.seed, roi, config.slice_axis
    )
    probe = Probe(targets, patches, resolve_device(config.device), model.divisor, config.seed)
    return probe.measure(model.module)
