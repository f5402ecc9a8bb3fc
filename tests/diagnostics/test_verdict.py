"""The "Should I adapt?" reading: what adaptation does to the masks, against the fingerprint."""

import numpy as np
import pytest

from napari_bnadapt.diagnostics.polarity import PolarityCheck
from napari_bnadapt.diagnostics.quality import MaskComparison, MaskQuality
from napari_bnadapt.diagnostics.shift import LayerShift
from napari_bnadapt.diagnostics.verdict import judge

EARLY = [1.5, 0.6, 0.4]  # a shift that sits in the first layer
DEEP = [0.3, 0.8, 1.0]  # a shift that grows with depth


def _table(scores, empirical=None):
    table = {}
    for i, score in enumerate(scores):
        values = {"wasserstein_standardised": np.full(4, score)}
        values["wasserstein_empirical"] = np.full(4, score if empirical is None else empirical[i])
        table[f"layer{i}"] = LayerShift(f"layer{i}", "batchnorm", values)
    return table


def _masks(before: float, after: float, agreement: float) -> MaskComparison:
    return MaskComparison(_quality(before), _quality(after), agreement_dice=agreement)


def _quality(foreground: float, confident: float | None = None) -> MaskQuality:
    return MaskQuality(None, confident, foreground, object_count=1)


def _polarity(direct: float, mirrored: float, inverted: bool) -> PolarityCheck:
    return PolarityCheck("encoder.0.bn1", direct, mirrored, float(inverted), inverted)


def test_small_shift_and_unchanged_masks_need_no_adaptation():
    verdict = judge(_table([0.1, 0.1, 0.05]), quality=_masks(0.4, 0.4, 0.99), source_foreground=0.4)
    assert verdict.reading == "not needed" and verdict.cure == "none"
    assert "0.08 σ" in verdict.reasons[0]


def test_masks_that_become_plausible_read_adapt_even_when_the_shift_is_deep():
    # The real NeuroProof → VNC case: a shift that grows with depth, which 0.1 read "risky",
    # while the foreground moves from 3 % to the training labels' 10 %.
    verdict = judge(_table(DEEP), quality=_masks(0.03, 0.11, 0.35), source_foreground=0.10)
    assert verdict.reading == "adapt" and verdict.cure == "adabn"
    assert verdict.predicted_benefit == pytest.approx(0.65 * (0.10 / 0.11 - 0.3))
    assert "reaches deep" in verdict.reasons[0] and "more plausible" in verdict.reasons[-1]


def test_masks_that_become_implausible_read_risky_and_keep_the_source():
    collapse = judge(_table(EARLY), quality=_masks(0.4, 0.02, 0.05), source_foreground=0.4)
    assert collapse.reading == "risky" and collapse.cure == "none"
    assert collapse.predicted_benefit < 0 and "implausible" in collapse.reasons[-1]
    worse = judge(_table(EARLY), quality=_masks(0.4, 0.2, 0.6), source_foreground=0.4)
    assert worse.reading == "risky" and "less plausible" in worse.reasons[-1]


def test_small_or_unclear_changes_read_uncertain():
    verdict = judge(_table(EARLY), quality=_masks(0.38, 0.4, 0.9), source_foreground=0.4)
    assert verdict.reading == "uncertain" and abs(verdict.predicted_benefit) < 0.05


def test_without_a_fingerprint_confidence_stands_in_for_plausibility():
    quality = MaskComparison(_quality(0.0, 0.5), _quality(0.4, 0.95), agreement_dice=0.0)
    verdict = judge(_table(EARLY), quality=quality)
    assert verdict.reading == "adapt" and verdict.predicted_benefit == pytest.approx(0.45)


def test_residual_after_adaptation_is_a_reason():
    before = _table(EARLY)
    fixed = judge(before, _table([0, 0, 0], empirical=[0.1, 0.1, 0.1]))
    assert fixed.figures["residual_ratio"] < 0.4 and "fell" in fixed.reasons[1]
    left = judge(before, _table([0, 0, 0], empirical=[1.0, 0.5, 0.4]))
    assert "left" in left.reasons[1] and left.figures["residual_ratio"] > 0.4


def test_a_suspected_inversion_reads_risky_and_says_what_to_try():
    quality = _masks(0.03, 0.11, 0.35)
    inverted = judge(_table(EARLY), quality=quality, polarity=_polarity(0.3, 0.06, True),
                     source_foreground=0.1)  # fmt: skip
    assert inverted.reading == "risky" and "--polarity invert" in inverted.reasons[-1]
    assert inverted.cure == "adabn --polarity invert"
    same = judge(_table(EARLY), quality=quality, polarity=_polarity(0.05, 0.3, False),
                 source_foreground=0.1)  # fmt: skip
    assert same.reading == "adapt"
    assert same.to_text().startswith("Should I adapt? adapt — cure: adabn (bnadapt adapt)\n")
    assert "cure: adabn (bnadapt adapt --polarity invert)" in inverted.to_text()


def test_plausible_masks_from_features_unlike_the_source_are_not_trusted():
    # Masks that change completely and end at a plausible foreground fraction, as when
    # a no-contrast target is adapted: the adapted features still do not look like the
    # source's (a large empirical distance to the fingerprint after adaptation).
    quality = _masks(0.0, 0.4, 0.0)
    alike = _table([0, 0, 0], empirical=[0.07, 0.07, 0.07])
    unlike = _table([0, 0, 0], empirical=[0.25, 0.25, 0.25])
    trusted = judge(_table(EARLY), alike, quality, source_foreground=0.4, empirical_reference=True)
    doubtful = judge(
        _table(EARLY), unlike, quality, source_foreground=0.4, empirical_reference=True
    )
    assert trusted.reading == "adapt" and trusted.figures["trust"] == 1.0
    assert doubtful.figures["trust"] == 0.0 and doubtful.predicted_benefit == 0.0
    assert doubtful.reading == "uncertain" and "differ in shape" in doubtful.reasons[-1]
    # Against the Gaussian of the source statistics the trust is not measured.
    assert judge(_table(EARLY), unlike, quality, source_foreground=0.4).reading == "adapt"


def test_a_ground_truth_decides_over_the_label_free_reading():
    """A walkthrough's report advised inverting the contrast while its own ground truth
    showed adaptation lowering Dice 0.353 → 0.265: the measured Dice decides."""
    from dataclasses import replace

    quality = _masks(0.03, 0.11, 0.35)
    worse = replace(quality, before=replace(quality.before, dice=0.353),
                    after=replace(quality.after, dice=0.265))  # fmt: skip
    inverted = judge(_table(EARLY), quality=worse, polarity=_polarity(0.3, 0.06, True),
                     source_foreground=0.1)  # fmt: skip
    assert inverted.cure == "none" and inverted.reading == "risky"
    assert "0.353 → 0.265" in inverted.reasons[-1] and "keep the source model" in inverted.to_text()
    better = replace(worse, after=replace(worse.after, dice=0.6))
    helped = judge(_table(EARLY), quality=better, polarity=_polarity(0.3, 0.06, True))
    assert helped.reading == "adapt" and helped.cure == "adabn"  # as measured: not inverted
    level = replace(worse, after=replace(worse.after, dice=0.355))
    assert judge(_table(EARLY), quality=level).figures["dice_after"] == 0.355
