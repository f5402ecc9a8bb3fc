"""Estimating BatchNorm statistics on unlabeled target data (AdaBN and variants).

Only ``running_mean`` and ``running_var`` of the chosen BatchNorm layers are measured;
every weight, affine parameter and ``num_batches_tracked`` stays bit for bit. The work is
done on a copy of the network, so cancelling or an error leaves the user's model as it
was.

Modes
-----
``standard``
    AdaBN: one pass with the chosen BN layers in train mode (each batch normalised by its
    own statistics), per-batch statistics pooled exactly (Chan, float64).
``consistent``
    The statistics of the features each layer sees *at inference*: after the standard
    pass, passes in eval mode with the current estimates, re-measuring every layer's
    input, until the statistics stop moving (fixed point; layer k is exact once the
    layers before it are). TorchScript modules refuse hooks, so there it runs layer by
    layer instead (one pass per layer).
``ema``
    PyTorch's moving average with ``momentum``, starting from the source statistics, as
    in the original paper's code (order-dependent; for reproduction only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import NotAdaptableError
from ..jobs import Progress, Steps
from ..model.bn_layers import (
    BNStats,
    adaptability_verdict,
    batchnorm_modules,
    list_norm_layers,
    write_bn_stats,
)
from ..model.loaded import LoadedModel
from ..model.record import ConvergenceStep
from .config import AdaptConfig
from .layer_selection import select_layers
from .moments import Moments, pool
from .passes import PassRunner, as_stats
from .sampling import Patch, TargetSet


@dataclass
class Estimate:
    """Target moments measured by one AdaBN estimation, per chosen BatchNorm layer.

    :meth:`stats` blends them with the source statistics into what the layers store.
    """

    moments: dict[str, Moments]
    layers: tuple[str, ...]
    patches: int
    passes: int = 1
    changes: tuple[float, ...] = ()
    convergence: tuple[ConvergenceStep, ...] = ()

    def stats(
        self, source: dict[str, BNStats], alpha: float = 1.0, statistics: str = "both"
    ) -> dict[str, BNStats]:
        return blend(source, self.moments, alpha, statistics)


def estimate_steps(
    model: LoadedModel,
    targets: TargetSet,
    patches: list[Patch],
    config: AdaptConfig,
    device: torch.device,
    client: Any = None,
) -> Steps[Estimate]:
    """Measure the chosen BatchNorm layers' input statistics on the sampled target patches.

    Works on a throw-away copy of ``model.module``, so nothing the user holds changes;
    yields a :class:`Progress` after every batch. With ``client`` (dask.distributed) the
    batches run on the cluster's workers; the result is the same.
    """
    cfg = config
    names = list(batchnorm_modules(model.module))
    if not names:
        raise NotAdaptableError(adaptability_verdict(list_norm_layers(model.module)))
    selected = select_layers(names, cfg.layers)
    work = copy.deepcopy(model.module).to(device).eval()
    write_bn_stats(work, model.source_stats)
    runner = PassRunner(
        work, targets, patches, cfg.batch_size, device, divisor=model.divisor, client=client
    )
    passes_expected = {"standard": 1, "ema": 1, "consistent": cfg.max_passes}[cfg.mode]
    runner.total = passes_expected * runner.batch_count

    per_batch = yield from runner.standard_pass(selected)
    convergence = _convergence(per_batch, model.source_stats)
    if cfg.mode == "ema":
        estimates = _ema(per_batch, model.source_stats, cfg.momentum)
    else:
        estimates = {name: pool(moments) for name, moments in per_batch.items()}
    passes, changes = 1, []
    if cfg.mode == "consistent":
        estimates, passes, changes = yield from _consistent(runner, selected, estimates, model, cfg)
    yield Progress(runner.total, runner.total, "statistics measured")
    return Estimate(estimates, tuple(selected), len(patches), passes, tuple(changes), convergence)


def prior_alpha(config: AdaptConfig, n_patches: int) -> float:
    """The blend weight of the target statistics: α, or n / (N + n) with a prior strength."""
    if config.prior_strength is None:
        return config.alpha
    return n_patches / (config.prior_strength + n_patches)


def blend(
    source: dict[str, BNStats], target: dict[str, Moments], alpha: float, statistics: str = "both"
) -> dict[str, BNStats]:
    """``alpha·target + (1 − alpha)·source`` for each layer's mean and (unbiased) variance."""
    out = {}
    for name, moments in target.items():
        src_mean = source[name]["running_mean"].to(torch.float64)
        src_var = source[name]["running_var"].to(torch.float64)
        mean = alpha * moments.mean + (1 - alpha) * src_mean
        var = alpha * moments.var_unbiased + (1 - alpha) * src_var
        if statistics == "variance":
            mean = src_mean
        elif statistics == "mean":
            var = src_var
        dtype = source[name]["running_mean"].dtype
        out[name] = {"running_mean": mean.to(dtype), "running_var": var.to(dtype)}
    return out


def _consistent(
    runner: PassRunner,
    selected: list[str],
    estimates: dict[str, Moments],
    model: LoadedModel,
    cfg: AdaptConfig,
) -> Steps[tuple[dict[str, Moments], int, list[float]]]:
    """Eval-mode passes with the current estimates until they stop moving."""
    changes: list[float] = []
    passes = 1
    if not runner.hooks_supported:
        estimates = yield from runner.layerwise_passes(selected)
        return estimates, len(selected), changes
    while passes < cfg.max_passes:
        write_bn_stats(runner.module, {n: as_stats(m) for n, m in estimates.items()})
        measured = yield from runner.eval_pass(selected)
        passes += 1
        change = _max_change(estimates, measured, model.source_stats)
        changes.append(change)
        estimates = measured
        if change < cfg.tolerance:
            break
    runner.total = runner.done  # finished early: let progress reach 100 %
    return estimates, passes, changes


def _max_change(
    old: dict[str, Moments], new: dict[str, Moments], source: dict[str, BNStats]
) -> float:
    """Largest change of a mean or standard deviation, in units of the source σ."""
    worst = 0.0
    for name in new:
        sigma = source[name]["running_var"].double().clamp_min(1e-12).sqrt()
        d_mean = ((new[name].mean - old[name].mean).abs() / sigma).max().item()
        d_std = (
            ((new[name].var_unbiased.sqrt() - old[name].var_unbiased.sqrt()).abs() / sigma)
            .max()
            .item()
        )
        worst = max(worst, d_mean, d_std)
    return worst


def _ema(
    per_batch: dict[str, list[Moments]], source: dict[str, BNStats], momentum: float
) -> dict[str, Moments]:
    """The moving average of PyTorch's train mode, from the source statistics."""
    out = {}
    for name, moments in per_batch.items():
        mean = source[name]["running_mean"].double()
        var = source[name]["running_var"].double()
        for m in moments:
            mean = (1 - momentum) * mean + momentum * m.mean
            var = (1 - momentum) * var + momentum * m.var_unbiased
        count = sum(m.count for m in moments)
        out[name] = Moments(count, mean, var * max(count - 1.0, 1.0))
    return out


def _convergence(
    per_batch: dict[str, list[Moments]], source: dict[str, BNStats]
) -> tuple[ConvergenceStep, ...]:
    """How far the pooled statistics still move as patches are added (in source σ units)."""
    record = []
    running: dict[str, Moments] = {}
    previous: dict[str, Moments] = {}
    batch_count = len(next(iter(per_batch.values())))
    for index in range(batch_count):
        for name, moments in per_batch.items():
            running[name] = moments[index] if index == 0 else running[name].merge(moments[index])
        if previous:
            record.append(ConvergenceStep(index + 1, _max_change(previous, running, source)))
        previous = dict(running)
    return tuple(record)
