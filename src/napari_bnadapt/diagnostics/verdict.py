""" "Should I adapt?": a reading of the shift profile, with its reasons.

The rules follow what docs/diagnostics.md measured on the synthetic shift grid:
adaptation repairs shifts that sit in the first layers (brightness, gamma: intensity
statistics), helps little when the shift grows with depth (blur, contrast compression,
inversion: the content the filters respond to has changed), and is not needed when the
network sees the target much as it sees the source. A reading is evidence, not a proof:
always look at the masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .polarity import PolarityCheck
from .quality import MaskComparison
from .shift import LayerShift

#: Mean standardised W2 (σ) below which the target looks like the source to the network.
SMALL_SHIFT = 0.25
#: A first-layer shift at least this much larger than the deeper layers' is "early".
EARLY_RATIO = 1.5
#: Residual empirical distance after adaptation, as a fraction of the one before.
LARGE_RESIDUAL = 0.4
#: First-layer W1 (σ) to the source images' histograms above which shapes still differ.
SHAPE_MISMATCH = 0.4
#: How much each reading expects adaptation to help, for :attr:`Verdict.predicted_benefit`.
BENEFIT_WEIGHT = {"adapt": 1.0, "uncertain": 0.5, "risky": 0.0, "not needed": 0.0}

READINGS = ("not needed", "adapt", "uncertain", "risky")


@dataclass
class Verdict:
    """The reading (one of :data:`READINGS`), its reasons and the figures behind them."""

    reading: str
    reasons: list[str]
    figures: dict[str, float] = field(default_factory=dict)
    cure: str = "adabn"

    @property
    def predicted_benefit(self) -> float:
        """A score to rank targets by expected gain: the first layer's shift (σ), weighted
        by the reading (see docs/diagnostics.md for how well it ranks real gains)."""
        return self.figures.get("first_layer_shift", 0.0) * BENEFIT_WEIGHT[self.reading]

    def to_text(self) -> str:
        return f"Should I adapt? {self.reading}\n" + "\n".join(f"- {r}" for r in self.reasons)

    def to_dict(self) -> dict:
        return {"reading": self.reading, "reasons": self.reasons, "figures": self.figures}


def judge(
    before: dict[str, LayerShift],
    after: dict[str, LayerShift] | None = None,
    quality: MaskComparison | None = None,
    polarity: PolarityCheck | None = None,
    source_foreground: float | None = None,
) -> Verdict:
    """Read the shift before (and optionally after) adaptation and the mask changes.

    ``polarity`` (from :func:`napari_bnadapt.diagnostics.polarity.polarity_check`, needs source
    images) tells whether the adapted first layer looks like the source or its mirror.
    """
    layers = [s for s in before.values() if s.kind == "batchnorm"]
    if not layers:
        return Verdict("uncertain", ["the model has no BatchNorm layer whose input was measured"])
    scores = np.array([s.score for s in layers])
    first, deeper = float(scores[0]), float(np.mean(scores[1:])) if len(scores) > 1 else 0.0
    figures = {
        "mean_shift": float(scores.mean()),
        "first_layer_shift": first,
        "deeper_layers_shift": deeper,
        "most_shifted_layer": layers[int(np.argmax(scores))].name,
    }
    reasons: list[str] = []
    if figures["mean_shift"] < SMALL_SHIFT:
        reading = "not needed"
        reasons.append(
            f"the target shifts the BatchNorm inputs by only {figures['mean_shift']:.2f} σ on "
            "average: the network sees it much as it sees its training data"
        )
    elif first >= EARLY_RATIO * deeper:
        reading = "adapt"
        reasons.append(
            f"the shift sits in the first layer ({first:.2f} σ against {deeper:.2f} σ deeper): "
            "an intensity or contrast change, which adaptation fixes well"
        )
    elif deeper >= first:
        reading = "risky"
        reasons.append(
            f"the shift grows with depth ({first:.2f} σ in the first layer, {deeper:.2f} σ "
            "deeper): the content the filters respond to has changed (blur, texture, "
            "inverted contrast); re-estimating two moments per channel may not help and can harm"
        )
    else:
        reading = "uncertain"
        reasons.append(
            f"the shift is spread over the network ({first:.2f} σ in the first layer, "
            f"{deeper:.2f} σ deeper): adaptation may help partly"
        )
    if after is not None:
        reading = _residual(before, after, reading, reasons, figures)
    if polarity is not None:
        reading = _polarity(polarity, reading, reasons, figures)
    if quality is not None:
        reading = _mask_changes(quality, reading, reasons)
        figures.update(_mask_figures(quality, source_foreground))
    return Verdict(reading, reasons, figures)


def _mask_figures(quality: MaskComparison, source_foreground: float | None) -> dict[str, float]:
    out = {
        "foreground_before": quality.before.foreground_fraction,
        "confident_before": quality.before.confident_fraction or 0.0,
    }
    if quality.after is not None:
        out.update(
            foreground_after=quality.after.foreground_fraction,
            confident_after=quality.after.confident_fraction or 0.0,
            agreement=quality.agreement_dice,
        )
    if source_foreground is not None:
        out["foreground_source"] = source_foreground
    return out


def _polarity(polarity: PolarityCheck, reading: str, reasons: list[str], figures: dict) -> str:
    figures.update(first_layer_w1_source=polarity.direct, first_layer_w1_mirrored=polarity.mirrored)
    if polarity.inverted:
        reasons.append(
            f"after adaptation the first layer's distributions are mirror images of the source "
            f"ones (W1 {polarity.mirrored:.2f} σ to the mirrored source, "
            f"{polarity.direct:.2f} σ to the source): the contrast is inverted, which two "
            "moments per channel cannot undo; invert the image and try again"
        )
        return "risky"
    if polarity.direct >= SHAPE_MISMATCH and reading != "not needed":
        reasons.append(
            f"after adaptation the first layer's distributions still differ in shape from the "
            f"source images' (W1 {polarity.direct:.2f} σ): the image content differs, "
            "not just its intensities"
        )
        return "risky"
    return reading


def _residual(
    before: dict[str, LayerShift],
    after: dict[str, LayerShift],
    reading: str,
    reasons: list[str],
    figures: dict,
) -> str:
    names = [n for n, s in before.items() if s.kind == "batchnorm" and n in after]
    key = "wasserstein_empirical"
    was = float(np.mean([before[n].values[key].mean() for n in names]))
    left = float(np.mean([after[n].values[key].mean() for n in names]))
    ratio = left / was if was > 0 else 0.0
    figures.update(empirical_before=was, empirical_after=left, residual_ratio=ratio)
    if reading == "not needed":
        return reading
    if ratio >= LARGE_RESIDUAL:
        reasons.append(
            f"after adaptation {ratio:.0%} of the empirical distance is left ({left:.2f} σ): "
            "the shapes of the distributions differ, not just their mean and spread"
        )
        return "risky" if reading != "risky" else reading
    reasons.append(
        f"after adaptation the empirical distance fell from {was:.2f} σ to {left:.2f} σ "
        f"({ratio:.0%} left)"
    )
    return reading


def _mask_changes(quality: MaskComparison, reading: str, reasons: list[str]) -> str:
    before, after = quality.before, quality.after
    if after is None:
        return reading
    fg_before, fg_after = before.foreground_fraction, after.foreground_fraction
    if max(fg_before, fg_after) > 0 and min(fg_before, fg_after) / max(fg_before, fg_after) < 0.33:
        reasons.append(
            f"the foreground fraction changed from {fg_before:.1%} to {fg_after:.1%}: compare the "
            "masks before trusting either"
        )
    agreement = quality.agreement_dice
    if agreement is not None and agreement < 0.5:
        reasons.append(f"the masks before and after agree little (Dice {agreement:.2f})")
    return reading
