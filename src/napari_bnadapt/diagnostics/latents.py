"""Per-channel distributions of a network's latent features: what a capture holds.

For every BatchNorm layer the *input* (before normalisation) is captured, and for the
built-in U-Net also the bottleneck output (the latent space of the source paper). Nothing
but per-channel histograms on fixed bins, exact moments and a bounded sample of bottleneck
vectors is kept, so memory is bounded by layers × channels × bins whatever the data size
(:mod:`.capture` streams them).

Frames
------
Histograms live in a per-channel *frame* ``z = (x − offset) / scale`` with fixed bins on
``[-span, span]`` (plus an underflow and an overflow bin):

- a BatchNorm input is standardised by the layer's own running statistics (those of the
  model being captured). That is what the layer passes on: under source data it is
  close to N(0, 1); a shift shows as a displaced or widened histogram. Source, target
  before and target after adaptation are therefore directly comparable.
- the bottleneck output is standardised by the affine terms (β, |γ|) of the bottleneck's
  last BatchNorm, which adaptation never changes. With the source statistics its
  distribution is a rectified N(0, 1): ``max(n, −β/|γ|)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtr

from ..adabn.moments import Moments
from ..inference import Prediction
from ..model.fingerprint import LatentReference
from .distances import histogram_quantiles
from .latent_config import LatentConfig as LatentConfig  # re-exported

BOTTLENECK = "bottleneck"


@dataclass
class LayerLatents:
    """Per-channel distribution of one layer's features in its frame.

    ``counts`` has shape ``(channels, bins + 2)``: underflow, the bins, overflow.
    ``moments`` are exact, in raw (unstandardised) units. ``floor`` is, for the
    bottleneck, the frame value of a zero output (ReLU), else None.
    """

    name: str
    kind: str
    edges: np.ndarray
    counts: np.ndarray
    moments: Moments
    offset: np.ndarray
    scale: np.ndarray
    floor: np.ndarray | None = None

    @classmethod
    def of_reference(cls, name: str, reference: LatentReference) -> LayerLatents:
        """A layer of a stored fingerprint, as if it had just been captured."""
        moments = Moments.from_biased(
            reference.count, torch.from_numpy(reference.mean), torch.from_numpy(reference.var)
        )
        return cls(
            name, reference.kind, reference.edges, reference.counts, moments,
            reference.offset, reference.scale, reference.floor,
        )  # fmt: skip

    @property
    def channels(self) -> int:
        return int(self.counts.shape[0])

    @property
    def frame_mean(self) -> np.ndarray:
        """Mean per channel in frame units."""
        return (self.moments.mean.numpy() - self.offset) / self.scale

    @property
    def frame_var(self) -> np.ndarray:
        """Variance (biased) per channel in frame units."""
        return self.moments.var_biased.numpy() / self.scale**2

    def quantiles(self, levels=(0.05, 0.25, 0.5, 0.75, 0.95)) -> np.ndarray:
        """Per-channel quantiles in frame units ``(channels, levels)``, from the histogram
        (exact to a bin width)."""
        return histogram_quantiles(self.counts, self.edges, levels)

    def probabilities(self) -> np.ndarray:
        """Counts normalised per channel (rows sum to 1)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        return self.counts / np.maximum(totals, 1.0)


@dataclass
class LatentCapture:
    """The latents of one model on one dataset (``label`` says which, e.g. 'target before'),
    and its predictions on the captured patches (``outputs``: patches stacked on the first
    axis), which let a diagnosis compare masks before and after on the very same patches."""

    label: str
    layers: dict[str, LayerLatents]
    bottleneck_samples: np.ndarray | None = None
    patches: int = 0
    seconds: float = 0.0
    outputs: Prediction | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the capture (histograms, moments, samples)."""
        total = sum(layer.counts.nbytes + 4 * layer.channels * 8 for layer in self.layers.values())
        if self.bottleneck_samples is not None:
            total += self.bottleneck_samples.nbytes
        return total


def gaussian_reference(layer: LayerLatents) -> np.ndarray:
    """Bin probabilities ``(channels, bins + 2)`` under the source statistics' Gaussian.

    N(0, 1) in the frame of a BatchNorm input; for the bottleneck, N(0, 1) rectified at
    its floor (the ReLU), i.e. the output the network expects when the bottleneck's last
    BatchNorm sees exactly its running statistics.
    """
    lower = np.concatenate([[-np.inf], layer.edges])
    upper = np.concatenate([layer.edges, [np.inf]])
    floor = np.full(layer.channels, -np.inf) if layer.floor is None else layer.floor
    # Mass below the floor (the ReLU's zeros) piles up in the floor's cell.
    lower = np.maximum(lower[None, :], floor[:, None])
    probs = np.clip(_normal_cdf(upper)[None, :] - _normal_cdf(lower), 0.0, None)
    if layer.floor is not None:
        cells = _bin_index(layer.floor, layer.edges)
        probs[np.arange(layer.channels), cells] += _normal_cdf(layer.floor)
    return probs


def gaussian_reference_moments(layer: LayerLatents) -> tuple[np.ndarray, np.ndarray]:
    """Frame mean and variance of :func:`gaussian_reference` (exact, not binned)."""
    if layer.floor is None:
        return np.zeros(layer.channels), np.ones(layer.channels)
    # Moments of max(n, c) for n ~ N(0, 1).
    c = layer.floor
    phi = np.exp(-0.5 * c**2) / math.sqrt(2 * math.pi)
    big_phi = _normal_cdf(c)
    mean = c * big_phi + phi
    second = c**2 * big_phi + c * phi + (1 - big_phi)
    return mean, second - mean**2


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return ndtr(np.asarray(x, dtype=np.float64))


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Index in the ``bins + 2`` cells (underflow, bins, overflow) of each value."""
    return np.searchsorted(edges, values, side="right")
