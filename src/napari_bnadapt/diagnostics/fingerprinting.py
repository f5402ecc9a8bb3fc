"""Computing a model's source fingerprint from source images, in one forward pass.

The sampled patches (as the network sees them: normalised, source statistics) give the
intensity quantiles, the radially averaged Fourier amplitude and, through the same pass,
the latent distributions of every BatchNorm layer and the bottleneck.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..jobs import Steps, blocking
from ..model.fingerprint import QUANTILE_LEVELS, Fingerprint, LatentReference
from ..model.input_steps import radial_frequencies
from ..model.loaded import LoadedModel
from .capture import capture_steps
from .latents import LatentCapture, LatentConfig, LayerLatents

#: Radial frequency bins of the stored spectrum, over 0–0.5 cycles per pixel.
SPECTRUM_BINS = 64
#: Intensity values kept (a seeded subsample) to compute the quantiles.
QUANTILE_SAMPLE = 1 << 21


class InputStatistics:
    """Accumulates intensity samples and the radial amplitude spectrum of input batches
    (call it with each batch, e.g. as a capture's ``on_input``)."""

    def __init__(self, batches: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.per_batch = max(1, QUANTILE_SAMPLE // max(batches, 1))
        self.values: list[np.ndarray] = []
        self.sums = np.zeros(SPECTRUM_BINS)
        self.counts = np.zeros(SPECTRUM_BINS)

    def __call__(self, batch: np.ndarray) -> None:
        flat = batch.ravel()
        take = min(self.per_batch, flat.size)
        self.values.append(flat[self.rng.choice(flat.size, take, replace=False)])
        planes = batch.reshape(-1, *batch.shape[-2:]).astype(np.float64)
        planes = planes - planes.mean(axis=(-2, -1), keepdims=True)
        amplitude = np.abs(np.fft.rfft2(planes, norm="ortho")).mean(axis=0)
        radius = radial_frequencies(batch.shape[-2:])
        cells = np.minimum((radius / 0.5 * SPECTRUM_BINS).astype(int), SPECTRUM_BINS)
        inside = (cells < SPECTRUM_BINS) & (radius > 0)  # the mean (removed) is not a frequency
        self.sums += np.bincount(cells[inside], amplitude[inside], SPECTRUM_BINS)
        self.counts += np.bincount(cells[inside], minlength=SPECTRUM_BINS)

    def quantiles(self) -> np.ndarray:
        return np.quantile(np.concatenate(self.values), QUANTILE_LEVELS)

    def spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        frequencies = (np.arange(SPECTRUM_BINS) + 0.5) * 0.5 / SPECTRUM_BINS
        seen = self.counts > 0
        return np.interp(frequencies, frequencies[seen], self.sums[seen] / self.counts[seen]), (
            frequencies
        )


def fingerprint_steps(
    model: LoadedModel,
    images: Any,
    *,
    voxel_size: tuple[float, ...] | None = None,
    labels: Any | None = None,
    config: LatentConfig | None = None,
    source_name: str = "",
) -> Steps[Fingerprint]:
    """The fingerprint of ``model``'s source data, measured on ``images`` (the training
    images or others like them) under the source statistics.

    ``voxel_size`` (nm) is the images' voxel size, which the model then expects;
    ``labels`` (same layout, nonzero = foreground) add the training foreground fraction.
    """
    cfg = config or LatentConfig()
    source = model.copy()
    source.restore_source()
    batches = -(-cfg.patches // cfg.batch_size)
    inputs = InputStatistics(batches, cfg.seed)
    capture = yield from capture_steps(source, images, cfg, label="source", on_input=inputs)
    spectrum, frequencies = inputs.spectrum()
    return Fingerprint(
        quantiles=inputs.quantiles(),
        spectrum=spectrum,
        frequencies=frequencies,
        voxel_size=tuple(float(v) for v in voxel_size) if voxel_size else None,
        foreground_fraction=_foreground_fraction(labels),
        latents={name: reference_of(layer) for name, layer in capture.layers.items()},
        patches=capture.patches,
        source=source_name,
    )


compute_fingerprint = blocking(fingerprint_steps, "compute_fingerprint")


def reference_of(layer: LayerLatents) -> LatentReference:
    """What the fingerprint keeps of a captured layer."""
    return LatentReference(
        kind=layer.kind,
        edges=layer.edges,
        counts=layer.counts,
        count=layer.moments.count,
        mean=layer.moments.mean.numpy(),
        var=layer.moments.var_biased.numpy(),
        offset=layer.offset,
        scale=layer.scale,
        floor=layer.floor,
    )


def stored_reference(model: LoadedModel, config: LatentConfig) -> LatentCapture | None:
    """The fingerprint's latents as a capture, the source reference of the diagnostics;
    None without a fingerprint, or when it was binned differently from ``config``."""
    fingerprint = model.fingerprint
    if fingerprint is None or not fingerprint.latents:
        return None
    if any(
        ref.edges.shape != config.edges.shape or not np.allclose(ref.edges, config.edges)
        for ref in fingerprint.latents.values()
    ):
        return None
    layers = {
        name: LayerLatents.of_reference(name, reference)
        for name, reference in fingerprint.latents.items()
    }
    return LatentCapture("source fingerprint", layers, None, fingerprint.patches)


def _foreground_fraction(labels: Any | None) -> float | None:
    if labels is None:
        return None
    items = labels if isinstance(labels, (list, tuple)) else [labels]
    total = sum(int(np.count_nonzero(np.asarray(item))) for item in items)
    size = sum(int(np.asarray(item).size) for item in items)
    return total / size if size else None
