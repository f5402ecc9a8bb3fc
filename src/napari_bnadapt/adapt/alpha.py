"""Entropy-guided blending of source and target statistics (the ``alpha-entropy`` cure).

AdaBN replaces the source statistics with the target's (α = 1); on a small or unusual
target a blend can be better. Without labels, the blend is chosen among a few candidates
as the one whose predictions on the probe patches are the least uncertain (lowest mean
entropy), the criterion of InTEnt (Dong et al. 2024) used for a choice rather than a
weighted ensemble, so the adapted model stays one network.
"""

from __future__ import annotations

from ..adabn.estimation import Estimate
from ..jobs import Progress, Steps
from ..model.bn_layers import write_bn_stats
from ..model.loaded import LoadedModel
from .probe import Probe

#: Candidate blends: 0 = source statistics, 1 = AdaBN.
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose_alpha_steps(
    model: LoadedModel, estimate: Estimate, probe: Probe, statistics: str = "both"
) -> Steps[tuple[float, dict[str, float]]]:
    """Write each candidate blend into ``model`` and measure its probe entropy; leave the
    least uncertain one in place. Returns it and every candidate's entropy."""
    entropies: dict[str, float] = {}
    for done, alpha in enumerate(ALPHAS, start=1):
        write_bn_stats(model.module, estimate.stats(model.source_stats, alpha, statistics))
        entropies[f"{alpha:g}"] = probe.measure(model.module).entropy
        yield Progress(done, len(ALPHAS), f"entropy with alpha {alpha:g}")
    best = min(ALPHAS, key=lambda a: (entropies[f"{a:g}"], -a))
    write_bn_stats(model.module, estimate.stats(model.source_stats, best, statistics))
    return best, entropies
