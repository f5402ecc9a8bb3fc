"""The collapse guard of the parameter cures (TENT, self-training).

Entropy minimisation and self-training can run away from the data (for membranes: all
background, or every dark structure a membrane). After a parameter cure, the probe
predictions are compared with those of the AdaBN state it started from; when the
foreground fraction moved too far or the masks agree too little, the cure is undone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .probe import Measurement

#: Largest factor by which a parameter cure may change the foreground fraction.
FOREGROUND_FACTOR = 1.25
#: Least Dice between the masks before and after a parameter cure.
MIN_AGREEMENT = 0.7


@dataclass(frozen=True)
class GuardReading:
    """Whether a parameter cure is kept, and the figures that decided it."""

    kept: bool
    foreground_ratio: float
    agreement: float
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "kept": self.kept,
            "foreground_ratio": round(self.foreground_ratio, 4),
            "agreement_with_adabn": round(self.agreement, 4),
            "reason": self.reason,
        }


def check(before: Measurement, after: Measurement) -> GuardReading:
    """Keep the cure unless the foreground fraction or the masks moved too far."""
    ratio, agreement = after.foreground_ratio(before), after.agreement(before)
    if not 1 / FOREGROUND_FACTOR <= ratio <= FOREGROUND_FACTOR:
        reason = (
            f"the foreground fraction changed {ratio:.2f}× (allowed {1 / FOREGROUND_FACTOR:.2f}"
            f"–{FOREGROUND_FACTOR:.2f}×): undone, AdaBN kept"
        )
        return GuardReading(False, ratio, agreement, reason)
    if agreement < MIN_AGREEMENT:
        reason = f"the masks agree only {agreement:.2f} with AdaBN's: undone, AdaBN kept"
        return GuardReading(False, ratio, agreement, reason)
    return GuardReading(True, ratio, agreement, "kept")
