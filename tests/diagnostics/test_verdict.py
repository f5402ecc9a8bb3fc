"""The "should I adapt?" reading on hand-made shift profiles."""

import numpy as np

from napari_bnadapt.diagnostics.polarity import PolarityCheck
from napari_bnadapt.diagnostics.quality import MaskComparison, MaskQuality
from napari_bnadapt.diagnostics.shift import LayerShift
from napari_bnadapt.diagnostics.verdict import judge


def _table(scores, empirical=None):
    table = {}
    for i, score in enumerate(scores):
        values = {"wasserstein_standardised": np.full(4, score)}
        values["wasserstein_empirical"] = np.full(4, score if empirical is None else empirical[i])
        table[f"layer{i}"] = LayerShift(f"layer{i}", "batchnorm", values)
    return table


def test_small_shift_needs_no_adaptation():
    verdict = judge(_table([0.1, 0.1, 0.05]))
    assert verdict.reading == "not needed"
    assert "0.08 σ" in verdict.reasons[0]


def test_early_shift_reads_adapt_and_deep_shift_reads_risky():
    assert judge(_table([1.5, 0.6, 0.4])).reading == "adapt"
    assert judge(_table([0.3, 0.8, 1.0])).reading == "risky"
    assert judge(_table([0.9, 0.8, 0.7])).reading == "uncertain"
    assert judge(_table([1.5, 0.6, 0.4])).predicted_benefit == 1.5


def test_large_residual_after_adaptation_reads_risky():
    before = _table([1.5, 0.6, 0.4])
    fixed = judge(before, _table([0, 0, 0], empirical=[0.1, 0.1, 0.1]))
    assert fixed.reading == "adapt" and fixed.figures["residual_ratio"] < 0.4
    left = judge(before, _table([0, 0, 0], empirical=[1.0, 0.5, 0.4]))
    assert left.reading == "risky" and "left" in left.reasons[-1]


def test_mask_changes_are_reasons():
    quality = MaskComparison(_quality(0.01), _quality(0.4), agreement_dice=0.1)
    verdict = judge(_table([1.5, 0.6, 0.4]), quality=quality)
    assert any("foreground fraction" in r for r in verdict.reasons)
    assert any("agree little" in r for r in verdict.reasons)
    assert "Should I adapt? adapt" in verdict.to_text()


def test_polarity_inversion_reads_risky_and_says_what_to_do():
    inverted = _polarity(direct=0.3, mirrored=0.06, inverted=True)
    verdict = judge(_table([1.5, 0.6, 0.4]), polarity=inverted)
    assert verdict.reading == "risky" and "invert the image" in verdict.reasons[-1]
    assert verdict.predicted_benefit == 0.0
    same = _polarity(direct=0.05, mirrored=0.3, inverted=False)
    assert judge(_table([1.5, 0.6, 0.4]), polarity=same).reading == "adapt"
    different = _polarity(direct=0.6, mirrored=0.6, inverted=False)
    assert judge(_table([1.5, 0.6, 0.4]), polarity=different).reading == "risky"


def _quality(foreground: float) -> MaskQuality:
    return MaskQuality(None, None, foreground, object_count=1)


def _polarity(direct: float, mirrored: float, inverted: bool) -> PolarityCheck:
    return PolarityCheck("encoder.0.bn1", direct, mirrored, float(inverted), inverted)
