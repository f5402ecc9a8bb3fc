"""Input-level cures: the target's intensities brought towards the source fingerprint.

Each returns an input step (see :mod:`napari_bnadapt.model.input_steps`) measured on the
sampled target patches as the network would read them (after the normalisation and any
earlier step). They need the model's fingerprint, except the contrast inversion.
"""

from __future__ import annotations

import numpy as np

from ..adabn.sampling import Patch, TargetSet, read_patches
from ..errors import NotAdaptableError
from ..model.fingerprint import QUANTILE_LEVELS, Fingerprint
from ..model.input_steps import InvertContrast, MatchHistogram, SwapAmplitude

#: Patches read to measure the target's intensities (all of them when fewer).
INTENSITY_PATCHES = 64


def needs_fingerprint(fingerprint: Fingerprint | None, cure: str) -> Fingerprint:
    if fingerprint is None:
        raise NotAdaptableError(
            f"the {cure} cure compares the target with the source's intensities, which this "
            "model does not carry: add its fingerprint with 'bnadapt fingerprint --model M "
            "--source source_images.tif --out M2', or choose --cure adabn"
        )
    return fingerprint


def target_values(targets: TargetSet, patches: list[Patch]) -> np.ndarray:
    """Network-input intensities of (up to :data:`INTENSITY_PATCHES`) sampled patches."""
    step = max(1, len(patches) // INTENSITY_PATCHES)
    return read_patches(targets, patches[::step]).ravel()


def match_histogram(
    targets: TargetSet, patches: list[Patch], fingerprint: Fingerprint | None
) -> MatchHistogram:
    """The monotone map of the target's intensity quantiles onto the source's."""
    source = needs_fingerprint(fingerprint, "histogram")
    quantiles = np.quantile(target_values(targets, patches), QUANTILE_LEVELS)
    return MatchHistogram.between(quantiles, source.quantiles)


def swap_amplitude(fingerprint: Fingerprint | None, beta: float) -> SwapAmplitude:
    """FDA with the source's stored radial amplitude below ``beta`` cycles per pixel."""
    source = needs_fingerprint(fingerprint, "fda")
    return SwapAmplitude(
        beta, tuple(source.spectrum.tolist()), tuple(source.frequencies.tolist()), source.mean
    )


def invert_contrast(targets: TargetSet, patches: list[Patch]) -> InvertContrast:
    """Mirror the target's intensities about their mean."""
    return InvertContrast(float(np.mean(target_values(targets, patches))))
