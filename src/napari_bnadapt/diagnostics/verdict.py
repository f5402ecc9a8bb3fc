""" "Should I adapt?": a reading of what adaptation changed, with its reasons and a cure.

The first reading (0.1) was built on the shift profile over depth: it read a shift that grows
with depth as "risky", and on the real EM pair it read "risky" exactly where adaptation
helped most (docs/real_em.md). The reading is now built on what adaptation does to the
masks, measured without labels against the model's fingerprint:

- how much the masks change (1 − the Dice of the masks before and after),
- whether they become more plausible: the foreground fraction against the fraction in the
  source's training labels (the fingerprint), as ``min(f, f_s) / max(f, f_s)``, and
- whether the adapted features can be trusted: after AdaBN their means and variances match
  the source's by construction; what is left, the empirical distance to the source's
  latent distributions (the fingerprint's), says whether they have the source's *shape*.

The predicted benefit is ``change × (plausibility after × trust − plausibility before)``
(negative when the polarity check suspects an inversion); its rank correlation with the
real Dice gain over the synthetic grid and the real cases is in docs/real_em.md. The shift profile, the
residual after adaptation and the polarity check are kept as reasons. Without a fingerprint
(no source foreground fraction), the plausibility falls back to prediction confidence.
A reading is evidence, not a proof: always look at the masks.
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
#: Masks agreeing at least this much before and after: adaptation changes little.
SAME_MASKS = 0.95
#: Predicted benefit (Dice-like units) beyond which a change reads as a gain or a loss.
CLEAR_BENEFIT = 0.05
#: Plausibility of the adapted masks below which they are not believable whatever changed.
IMPLAUSIBLE = 0.33
#: Empirical latent distance (σ) to the source's distributions after adaptation: up to
#: FLOOR the adapted features have the source's shape (sampling noise sits at 0.05–0.09);
#: the trust in the adapted masks falls to 0 over SPAN beyond it (docs/real_em.md: a plateau
#: of ρ 0.78–0.85 for FLOOR 0.06–0.12, SPAN 0.10–0.20).
TRUST_FLOOR = 0.10
TRUST_SPAN = 0.15

READINGS = ("not needed", "adapt", "uncertain", "risky")


@dataclass
class Verdict:
    """The reading (one of :data:`READINGS`), the cure it recommends, its reasons and the
    figures behind them; ``predicted_benefit`` ranks targets by expected Dice gain."""

    reading: str
    reasons: list[str]
    figures: dict[str, float] = field(default_factory=dict)
    cure: str = "adabn"
    predicted_benefit: float = 0.0

    def to_text(self) -> str:
        """The reading and the cure in one line (each said once), then the reasons."""
        head = f"Should I adapt? {self.reading} — {self.advice()}"
        return head + "\n" + "\n".join(f"- {r}" for r in self.reasons)

    def advice(self) -> str:
        """What to do: keep the source model, or the cure and its command."""
        if self.cure == "none":
            return "keep the source model"
        cure, _, options = self.cure.partition(" ")
        command = "bnadapt adapt" + ("" if cure == "adabn" else f" --cure {cure}")
        command += f" {options}" if options else ""
        return f"cure: {cure} ({command})"

    def to_dict(self) -> dict:
        return {
            "reading": self.reading,
            "cure": self.cure,
            "predicted_benefit": self.predicted_benefit,
            "reasons": self.reasons,
            "figures": self.figures,
        }


def judge(
    before: dict[str, LayerShift],
    after: dict[str, LayerShift] | None = None,
    quality: MaskComparison | None = None,
    polarity: PolarityCheck | None = None,
    source_foreground: float | None = None,
    empirical_reference: bool = False,
) -> Verdict:
    """Read what adaptation changed (``quality``: masks before/after), and why.

    ``before``/``after`` are the latent shift tables; ``polarity`` (see
    :func:`napari_bnadapt.diagnostics.polarity.polarity_check`) whether the adapted first
    layer looks like the source's mirror image; ``source_foreground`` the foreground
    fraction of the training labels (from the fingerprint); ``empirical_reference``
    whether the latent distances compare with source distributions (fingerprint or
    images) rather than the Gaussian of the source statistics: only then is the trust in
    the adapted features measured.
    """
    layers = [s for s in before.values() if s.kind == "batchnorm"]
    if not layers:
        return Verdict("uncertain", ["the model has no BatchNorm layer whose input was measured"])
    figures = _profile(layers)
    reasons = [_profile_reason(figures)]
    if after is not None:
        reasons.append(_residual(before, after, figures))
    if quality is None or quality.after is None:
        reading = "not needed" if figures["mean_shift"] < SMALL_SHIFT else "uncertain"
        return Verdict(reading, reasons, figures, "adabn" if reading == "uncertain" else "none")
    trust = _trust(figures) if empirical_reference and after is not None else 1.0
    benefit = _benefit(quality, source_foreground, trust, figures)
    reading, cure = _read(figures, benefit, reasons)
    if polarity is not None:
        reading, cure = _polarity(polarity, reading, cure, reasons, figures)
        if polarity.inverted:
            benefit = -figures["mask_change"] * figures["plausibility_after"]
    reading, cure = _measured(quality, reading, cure, reasons, figures)
    return Verdict(reading, reasons, figures, cure, benefit)


#: A Dice change against the ground truth below this is no change.
MEASURED_CHANGE = 0.01


def _measured(
    quality: MaskComparison, reading: str, cure: str, reasons: list[str], figures: dict
) -> tuple[str, str]:
    """With a ground truth, its Dice before and after decides: the readings above are
    label-free guesses (a walkthrough was told to invert the contrast while its labels
    showed adaptation lowering Dice 0.353 → 0.265)."""
    before, after = quality.before.dice, quality.after.dice
    if before is None or after is None:
        return reading, cure
    figures.update(dice_before=before, dice_after=after)
    said = f"with the ground truth, adaptation changes Dice {before:.3f} → {after:.3f}"
    if after < before - MEASURED_CHANGE:
        reasons.append(f"{said}: it makes the masks worse; keep the source model")
        return "risky", "none"
    if after > before + MEASURED_CHANGE:  # what was measured: the contrast as it is
        reasons.append(f"{said}: it helps as it is")
        return "adapt", "adabn" if cure == "none" or "--polarity" in cure else cure
    reasons.append(f"{said}: no measurable change")
    return reading, cure


def _trust(figures: dict) -> float:
    """1 when the adapted features have the source's shape, falling to 0 as they do not."""
    trust = 1.0 - (figures["empirical_after"] - TRUST_FLOOR) / TRUST_SPAN
    figures["trust"] = float(np.clip(trust, 0.0, 1.0))
    return figures["trust"]


def _profile(layers: list[LayerShift]) -> dict[str, float]:
    scores = np.array([s.score for s in layers])
    return {
        "mean_shift": float(scores.mean()),
        "first_layer_shift": float(scores[0]),
        "deeper_layers_shift": float(np.mean(scores[1:])) if len(scores) > 1 else 0.0,
        "most_shifted_layer": layers[int(np.argmax(scores))].name,
    }


def _profile_reason(figures: dict) -> str:
    first, deeper = figures["first_layer_shift"], figures["deeper_layers_shift"]
    if figures["mean_shift"] < SMALL_SHIFT:
        return (
            f"the target shifts the BatchNorm inputs by only {figures['mean_shift']:.2f} σ on "
            "average: the network sees it much as it sees its training data"
        )
    if first >= EARLY_RATIO * deeper:
        return (
            f"the shift sits in the first layer ({first:.2f} σ against {deeper:.2f} σ deeper): "
            "an intensity or contrast change, what re-estimated statistics fix best"
        )
    return (
        f"the shift reaches deep into the network ({first:.2f} σ in the first layer, "
        f"{deeper:.2f} σ deeper): the image content differs too (texture, resolution, "
        "structures), so the statistics alone may not repair everything"
    )


def _plausibility(foreground: float, confident: float | None, source: float | None) -> float:
    """How believable a mask is without labels: its foreground fraction against the source
    labels' (1 = the same), or, without a fingerprint, its confident fraction."""
    if source is None or source <= 0:
        return float(confident or 0.0)
    return min(foreground, source) / max(foreground, source)


def _benefit(quality: MaskComparison, source: float | None, trust: float, figures: dict) -> float:
    before, after = quality.before, quality.after
    plausible_before = _plausibility(before.foreground_fraction, before.confident_fraction, source)
    plausible_after = _plausibility(after.foreground_fraction, after.confident_fraction, source)
    change = 1.0 - float(quality.agreement_dice)
    figures.update(
        foreground_before=before.foreground_fraction,
        foreground_after=after.foreground_fraction,
        plausibility_before=plausible_before,
        plausibility_after=plausible_after,
        mask_change=change,
    )
    if source is not None:
        figures["foreground_source"] = source
    return change * (plausible_after * trust - plausible_before)


def _read(figures: dict, benefit: float, reasons: list[str]) -> tuple[str, str]:
    change, after = figures["mask_change"], figures["plausibility_after"]
    basis = f"foreground {figures['foreground_before']:.1%} → {figures['foreground_after']:.1%}" + (
        f" against {figures['foreground_source']:.1%} in the training labels"
        if "foreground_source" in figures
        else ""
    )
    if after < IMPLAUSIBLE:
        reasons.append(
            f"the adapted masks are implausible ({basis}): adaptation cannot be trusted here; "
            "look at them, and try another cure (bnadapt adapt --cure auto) or keep the source"
        )
        return "risky", "none"
    if benefit <= -CLEAR_BENEFIT:
        reasons.append(
            f"adaptation changes {change:.0%} of the masks and makes them less plausible "
            f"({basis}): keep the source model"
        )
        return "risky", "none"
    if benefit >= CLEAR_BENEFIT:
        reasons.append(
            f"adaptation changes {change:.0%} of the masks and makes them more plausible "
            f"({basis}): adapt"
        )
        return "adapt", "adabn"
    if figures.get("trust", 1.0) < 0.5 and change > 1.0 - SAME_MASKS:
        reasons.append(
            f"adaptation changes {change:.0%} of the masks ({basis}), but the adapted features "
            f"still differ in shape from the source's ({figures['empirical_after']:.2f} σ): "
            "the masks may look plausible and still be wrong; compare them before choosing"
        )
        return "uncertain", "adabn"
    if 1.0 - change >= SAME_MASKS and figures["mean_shift"] < SMALL_SHIFT:
        reasons.append(f"adaptation changes only {change:.0%} of the masks: not needed")
        return "not needed", "none"
    reasons.append(
        f"adaptation changes {change:.0%} of the masks without making them clearly more "
        f"plausible ({basis}): compare the masks before choosing"
    )
    return "uncertain", "adabn"


def _polarity(
    polarity: PolarityCheck, reading: str, cure: str, reasons: list[str], figures: dict
) -> tuple[str, str]:
    figures.update(first_layer_w1_source=polarity.direct, first_layer_w1_mirrored=polarity.mirrored)
    if polarity.inverted:
        reasons.append(
            f"after adaptation the first layer's distributions look like mirror images of the "
            f"source's (W1 {polarity.mirrored:.2f} σ to the mirrored source, "
            f"{polarity.direct:.2f} σ to the source): the contrast may be inverted, which two "
            "moments per channel cannot undo; try the contrast inverted (bnadapt adapt "
            "--polarity invert; in napari, contrast: invert under more options) and keep "
            "whichever masks look right (this check has misfired on real EM)"
        )
        return "risky", "adabn --polarity invert"
    return reading, cure


def _residual(before: dict[str, LayerShift], after: dict[str, LayerShift], figures: dict) -> str:
    names = [n for n, s in before.items() if s.kind == "batchnorm" and n in after]
    key = "wasserstein_empirical"
    was = float(np.mean([before[n].values[key].mean() for n in names]))
    left = float(np.mean([after[n].values[key].mean() for n in names]))
    ratio = left / was if was > 0 else 0.0
    figures.update(empirical_before=was, empirical_after=left, residual_ratio=ratio)
    if ratio >= LARGE_RESIDUAL:
        return (
            f"after adaptation {ratio:.0%} of the empirical latent distance is left "
            f"({left:.2f} σ): the shapes of the distributions differ, not just their mean "
            "and spread"
        )
    return (
        f"after adaptation the empirical latent distance fell from {was:.2f} σ to {left:.2f} σ "
        f"({ratio:.0%} left)"
    )
