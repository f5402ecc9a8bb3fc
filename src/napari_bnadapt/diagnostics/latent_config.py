"""What a latent capture measures and from how much data (:class:`LatentConfig`), in a
module that imports no network library: the command line's help reads it before torch
loads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..adabn.config import DEFAULT_PATCHES
from ..errors import require, require_finite


@dataclass(frozen=True)
class LatentConfig:
    """What to capture and from how much data.

    Parameters
    ----------
    bins, span
        Histogram bins over ``[-span, span]`` in the frame's units (σ of the reference).
    patches, patch_size, batch_size, seed
        Patch sampling, as for adaptation: with the same values the same patches are seen.
    bottleneck_samples
        How many bottleneck feature vectors (all channels) to keep for sliced Wasserstein.
    device, slice_axis
        As for :class:`napari_bnadapt.adapt.AdaptConfig`.
    """

    bins: int = 160
    span: float = 8.0
    patches: int = DEFAULT_PATCHES
    patch_size: int | tuple[int, ...] | None = None
    batch_size: int = 8
    seed: int = 0
    bottleneck_samples: int = 4096
    device: str = "auto"
    slice_axis: int | None = None

    def __post_init__(self) -> None:
        require_finite(self)
        require(
            self.bins >= 2 and self.span > 0, "histograms need at least 2 bins and a positive span"
        )
        require(
            self.patches >= 1 and self.batch_size >= 1, "patches and batch size must be at least 1"
        )
        require(
            0 <= self.seed < 2**32,
            f"the seed must be a whole number from 0 to 2^32 - 1, got {self.seed}",
        )
        require(self.bottleneck_samples >= 0, "bottleneck samples must be ≥ 0")

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-self.span, self.span, self.bins + 1)
