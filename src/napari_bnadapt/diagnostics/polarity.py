"""Is the target's contrast inverted? The first layer's histograms against the mirrored source.

A linear first layer's means and variances cannot see an inverted contrast (means move with
the filter sums, variances scale by b²); the *shape* of its responses flips. So after
adaptation, the first BatchNorm layer's histograms match the mirrored source histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distances import histogram_w1
from .latents import LatentCapture

#: First-layer W1 (σ) to the source below which the shapes already match: not an inversion,
#: however the mirror compares (real EM pairs sit at 0.07–0.11 σ, inversions at 0.2–0.3 σ;
#: docs/real_em.md).
MIN_MISMATCH = 0.15


@dataclass(frozen=True)
class PolarityCheck:
    """First-layer W1 (σ, mean over channels) to the source and to its mirror image.

    ``channels_closer_to_mirror`` is the fraction of channels nearer the mirror; the
    contrast reads as ``inverted`` when most are, the mirror is at least twice as near, and
    the shapes differ at all (:data:`MIN_MISMATCH`).
    """

    layer: str
    direct: float
    mirrored: float
    channels_closer_to_mirror: float
    inverted: bool


def polarity_check(
    observed: LatentCapture, reference: LatentCapture | None
) -> PolarityCheck | None:
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
    return PolarityCheck(
        layer=name,
        direct=float(direct.mean()),
        mirrored=float(mirrored.mean()),
        channels_closer_to_mirror=closer,
        inverted=closer > 0.5
        and float(mirrored.mean()) < 0.5 * float(direct.mean())
        and float(direct.mean()) >= MIN_MISMATCH,
    )
