"""Adaptation: the chosen cure, applied to a copy of the model, recorded, reversible.

A cure is a plan of up to four parts, run in this order on a copy that starts from the
source (so adapting an adapted model starts afresh, and the user's model never changes):

1. input steps: a contrast inversion when the polarity check asks for it, then histogram
   matching or the Fourier amplitude swap towards the fingerprint;
2. statistics: AdaBN (``mode``: standard, consistent or ema) on the target as the input
   steps present it, blended with the source statistics by α (or by the α of least
   prediction entropy);
3. parameters: TENT on the BatchNorm affine terms, self-training of every weight, or
   fine-tuning on painted strokes (:mod:`.stroke_cure`), each guarded, their source values
   kept for ``reset``;
4. the record: what was done, chosen and measured.

``auto`` (:mod:`.auto`) runs several plans and keeps one by a label-free rule.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from .. import __version__
from ..adabn.config import AdaptConfig
from ..adabn.estimation import Estimate, estimate_steps, prior_alpha
from ..adabn.sampling import Patch, TargetSet, sample_target
from ..cluster import ClusterConfig, dask_client
from ..device import resolve_device
from ..diagnostics.latents import LatentConfig
from ..errors import NotAdaptableError
from ..jobs import Progress, Stages, Steps
from ..model.bn_layers import (
    BNStats,
    adaptability_verdict,
    batchnorm_modules,
    list_norm_layers,
    read_bn_stats,
    write_bn_stats,
)
from ..model.input_steps import InputStep
from ..model.loaded import LoadedModel
from ..model.record import AdaptationRecord
from .alpha import ALPHAS, choose_alpha_steps
from .input_cures import invert_contrast, match_histogram, swap_amplitude
from .polarity import check_polarity_steps
from .probe import PROBE_PATCHES, Probe, TrainingData
from .self_training import self_training_steps
from .stroke_cure import stroke_cure_steps
from .stroke_training import trainable_names
from .strokes import StrokeSet, prepare_strokes
from .tent import affine_names, tent_steps


@dataclass(frozen=True)
class CurePlan:
    """Which parts a cure runs (see the module docstring)."""

    inputs: tuple[str, ...] = ()
    statistics: bool = True
    alpha_entropy: bool = False
    tent: bool = False
    self_training: bool = False
    strokes: bool = False

    @property
    def changes_parameters(self) -> bool:
        return self.tent or self.self_training or self.strokes


PLANS = {
    "adabn": CurePlan(),
    "histogram": CurePlan(("histogram",), statistics=False),
    "histogram+adabn": CurePlan(("histogram",)),
    "fda": CurePlan(("fda",), statistics=False),
    "fda+adabn": CurePlan(("fda",)),
    "alpha-entropy": CurePlan(alpha_entropy=True),
    "tent": CurePlan(tent=True),
    "self-training": CurePlan(self_training=True),
    "strokes": CurePlan(statistics=False, strokes=True),
    "adabn+strokes": CurePlan(strokes=True),
}


@dataclass
class AdaptResult:
    """The adapted copy of the model, its new statistics and the record of the run."""

    model: LoadedModel
    stats: dict[str, BNStats]
    record: AdaptationRecord


def cure_steps(
    model: LoadedModel,
    target: Any,
    config: AdaptConfig | None = None,
    *,
    roi: Any | None = None,
    target_name: str = "target",
    voxel_size: tuple[float, ...] | None = None,
    cluster: ClusterConfig | None = None,
    strokes: Any | None = None,
    strokes_name: str | None = None,
) -> Steps[AdaptResult]:
    """Apply one cure (not ``auto``) to a copy of ``model``: see
    :func:`napari_bnadapt.adapt.api.adapt_steps`."""
    cfg = config or AdaptConfig()
    started = time.perf_counter()
    adapted = model.copy()
    adapted.restore_source()
    painted = None
    if PLANS[cfg.cure].strokes:
        painted = prepare_strokes(adapted, strokes, target, voxel_size, cfg.slice_axis, cfg.seed)
        # Kept with the taught model (and its file), guard or not: to be painted on again.
        adapted.strokes = replace(painted.painted, target=target_name)
    targets, patches, patch = sample_target(
        adapted, target, cfg.patches, cfg.patch_size, cfg.seed, roi, cfg.slice_axis, voxel_size
    )
    with dask_client(cluster or ClusterConfig()) as client:
        run = _CureRun(adapted, targets, patches, cfg, client, painted)
        yield from run.steps()
    if "strokes" in run.details:
        run.details["strokes"]["from"] = strokes_name
    first = target[0] if isinstance(target, (list, tuple)) else target
    adapted.adaptation = AdaptationRecord(
        target=target_name,
        target_shape=tuple(tuple(s) for s in targets.shapes),
        mode=cfg.mode,
        alpha=run.alpha if run.alpha is not None else 0.0,
        layers=run.estimate.layers if run.estimate else (),
        statistics=cfg.statistics,
        patches=len(patches),
        patch_size=tuple(patch),
        passes=run.estimate.passes if run.estimate else 0,
        fixed_point_changes=run.estimate.changes if run.estimate else (),
        convergence=run.estimate.convergence if run.estimate else (),
        config=asdict(cfg),
        device=str(run.device),
        seconds=round(time.perf_counter() - started, 3),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        software=f"napari-bnadapt {__version__}",
        cure=cfg.cure,
        input_steps=tuple(step.describe() for step in adapted.input_steps),
        details=run.details,
        voxel_size=tuple(voxel_size) if voxel_size else None,
        zoom=adapted.zoom_for(tuple(first.shape), voxel_size, cfg.slice_axis),
    )
    stats = read_bn_stats(adapted.module)
    chosen = {name: stats[name] for name in adapted.adaptation.layers}
    return AdaptResult(adapted, chosen, adapted.adaptation)


class _CureRun:
    """One cure applied to ``model`` (a source-state copy) in place, stage by stage."""

    def __init__(
        self,
        model: LoadedModel,
        targets: TargetSet,
        patches: list[Patch],
        cfg: AdaptConfig,
        client: Any = None,
        strokes: StrokeSet | None = None,
    ) -> None:
        self.model, self.targets, self.patches, self.cfg = model, targets, patches, cfg
        self.client = client  # dask.distributed: where the statistics' batches run
        self.strokes = strokes
        self.plan = PLANS[cfg.cure]
        self.device = resolve_device(cfg.device)
        self.estimate: Estimate | None = None
        self.alpha: float | None = None
        self.details: dict[str, Any] = {}
        self.has_batchnorm = bool(batchnorm_modules(model.module))
        needs_batchnorm = self.plan.statistics or self.plan.changes_parameters
        if needs_batchnorm and not self.has_batchnorm:
            raise NotAdaptableError(adaptability_verdict(list_norm_layers(model.module)))
        self.checks_polarity = (
            cfg.polarity == "auto" and self.has_batchnorm and model.fingerprint is not None
        )
        batches = -(-len(patches) // cfg.batch_size)
        passes = cfg.max_passes if cfg.mode == "consistent" else 1
        probe = -(-PROBE_PATCHES // cfg.batch_size)
        self.stages = Stages(
            weights=[
                passes * batches if self.checks_polarity else 0,  # statistics for the check
                batches if self.checks_polarity else 0,  # the check's capture
                passes * batches if self.plan.statistics else 0,  # statistics
                len(ALPHAS) * probe if self.plan.alpha_entropy else 0,
                3 * cfg.tent_steps if self.plan.tent else 0,
                4 * cfg.self_training_steps if self.plan.self_training else 0,
                passes * batches if self.plan.self_training else 0,  # statistics again
                2 * cfg.stroke_steps if self.plan.strokes else 0,
            ]
        )

    def steps(self) -> Steps[None]:
        steps = yield from self._input_steps()
        self.model.input_steps = tuple(steps)
        self.targets = self.targets.with_steps(steps)
        if self.plan.statistics:
            yield from self._statistics()
        else:
            yield self.stages.skip()
            yield self.stages.skip()
        if self.plan.changes_parameters:
            yield from self._parameters()
        yield Progress(self.stages.total, self.stages.total, "done")

    def _input_steps(self) -> Steps[list[InputStep]]:
        steps: list[InputStep] = []
        if self.cfg.polarity == "invert":
            steps.append(invert_contrast(self.targets, self.patches))
            yield self.stages.skip()
            yield self.stages.skip()
        elif self.checks_polarity:
            self.estimate = yield from self.stages.run(self._estimate())
            write_bn_stats(self.model.module, self.estimate.stats(self.model.source_stats))
            check = yield from self.stages.run(
                check_polarity_steps(
                    self.model, self.targets, self.patches, LatentConfig(device=self.cfg.device)
                )
            )
            self.details["polarity"] = asdict(check) if check is not None else None
            if check is not None and check.inverted:
                steps.append(invert_contrast(self.targets, self.patches))
        else:
            yield self.stages.skip()
            yield self.stages.skip()
        for kind in self.plan.inputs:
            current = self.targets.with_steps(steps)
            if kind == "histogram":
                steps.append(match_histogram(current, self.patches, self.model.fingerprint))
            else:
                steps.append(swap_amplitude(self.model.fingerprint, self.cfg.fda_beta))
        if steps:
            self.estimate = None  # the input changed: the statistics must be measured again
            self.model.restore_source()
        return steps

    def _estimate(self) -> Steps[Estimate]:
        return estimate_steps(
            self.model, self.targets, self.patches, self.cfg, self.device, self.client
        )

    def _statistics(self) -> Steps[None]:
        if self.estimate is None:
            self.estimate = yield from self.stages.run(self._estimate())
        else:
            yield self.stages.skip()
        self.alpha = prior_alpha(self.cfg, len(self.patches))
        source = self.model.source_stats
        write_bn_stats(
            self.model.module, self.estimate.stats(source, self.alpha, self.cfg.statistics)
        )
        if self.plan.alpha_entropy:
            self.alpha, entropies = yield from self.stages.run(
                choose_alpha_steps(self.model, self.estimate, self._probe(), self.cfg.statistics)
            )
            self.details["alpha_entropies"] = entropies
        else:
            yield self.stages.skip()

    def _parameters(self) -> Steps[None]:
        cfg = self.cfg
        parameters = dict(self.model.module.named_parameters())
        if self.plan.strokes:
            names = trainable_names(self.model, cfg.stroke_parameters)
        else:
            names = affine_names(self.model) if self.plan.tent else list(parameters)
        source = {n: parameters[n].detach().clone() for n in names}
        if self.plan.strokes:
            yield self.stages.skip()  # tent
            yield self.stages.skip()  # self-training
            yield self.stages.skip()  # its statistics
            outcome = yield from self.stages.run(
                stroke_cure_steps(self.model, self.targets, self.strokes, cfg, self.device)
            )
            self.details["strokes"] = outcome
            if outcome["guard"]["kept"]:
                self.model.source_weights = {n: v.cpu() for n, v in source.items()}
            return
        data = TrainingData(
            self.targets, self.patches, self._probe(), self.device, cfg.batch_size, cfg.seed
        )
        if self.plan.tent:
            training = tent_steps(
                self.model, data, steps=cfg.tent_steps, learning_rate=cfg.tent_learning_rate
            )
        else:
            yield self.stages.skip()
            training = self_training_steps(
                self.model, data, steps=cfg.self_training_steps,
                learning_rate=cfg.self_training_learning_rate,
            )  # fmt: skip
        outcome = yield from self.stages.run(training)
        self.details.update(outcome)
        if not outcome["guard"]["kept"]:
            return
        self.model.source_weights = {n: v.cpu() for n, v in source.items()}
        if self.plan.self_training:
            # The weights moved: measure the statistics of the features they now give.
            self.estimate = yield from self.stages.run(self._estimate())
            stats = self.estimate.stats(self.model.source_stats, self.alpha or 1.0, cfg.statistics)
            write_bn_stats(self.model.module, stats)

    def _probe(self) -> Probe:
        return Probe(
            self.targets, self.patches, self.device, self.model.divisor, seed=self.cfg.seed
        )
