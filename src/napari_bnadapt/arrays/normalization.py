"""Input intensity normalisation, computed once over a whole input and applied per tile.

Three modes, stored in every model file so inference uses what training used:

``fixed``
    ``(x - mean) / std`` with the mean and std of the *training* data. Brightness and
    contrast shifts of new data reach the network unchanged: this is the covariate shift
    that BatchNorm adaptation corrects, and the default for models trained here.
``percentile``
    ``(x - p_low) / (p_high - p_low)`` with percentiles of the input being processed
    (computed over the whole input, never per tile, so tiles agree).
``zscore``
    ``(x - mean) / std`` with the mean and std of the input being processed (whole input);
    bioimage.io's ``zero_mean_unit_variance``.
``none``
    Cast to float32 only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import InputDataError, ModelFileError

#: Largest number of voxels read to estimate whole-input statistics of a large (e.g. dask)
#: array: a regular strided subsample, deterministic and cheap.
SAMPLE_VOXELS = 4_000_000

MODES = ("fixed", "percentile", "zscore", "none")


@dataclass(frozen=True)
class NormalizationSpec:
    """How raw intensities become network input."""

    mode: str = "fixed"
    mean: float = 0.0
    std: float = 1.0
    low_percentile: float = 1.0
    high_percentile: float = 99.8

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ModelFileError(f"unknown normalisation mode {self.mode!r}; use one of {MODES}")
        if self.mode == "fixed" and not (np.isfinite(self.std) and self.std > 0):
            raise ModelFileError(f"fixed normalisation needs a positive std, got {self.std}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalizationSpec:
        return cls(**data)

    def describe(self) -> str:
        if self.mode == "fixed":
            return f"fixed z-score (training mean {self.mean:.4g}, std {self.std:.4g})"
        if self.mode == "zscore":
            return "per-input mean and std → 0 ± 1"
        if self.mode == "percentile":
            return f"per-input percentiles {self.low_percentile:g}–{self.high_percentile:g} → 0–1"
        return "none (raw intensities as float)"


@dataclass(frozen=True)
class Normalizer:
    """An affine map ``(x - offset) / scale`` fixed for one whole input."""

    offset: float
    scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype == np.float64:  # scaled first: its values may not fit in float32
            with np.errstate(over="ignore"):
                out = ((x - self.offset) / self.scale).astype(np.float32)
            if np.isinf(out).any() and np.isfinite(x).all():
                raise InputDataError(
                    "the input's intensities overflow the network's float32 range after "
                    "normalisation: check the image's intensity scale (e.g. rescale it)"
                )
            return out
        out = np.asarray(x, dtype=np.float32) - np.float32(self.offset)
        out /= np.float32(self.scale)
        return out


def fit_normalizer(spec: NormalizationSpec, data: Any) -> Normalizer:
    """Compute the normaliser for ``data`` (numpy or dask) once, over all of it."""
    if spec.mode == "fixed":
        return Normalizer(spec.mean, spec.std)
    if spec.mode == "none":
        return Normalizer(0.0, 1.0)
    sample = sample_voxels(data)
    if spec.mode == "zscore":
        std = float(sample.std())
        return Normalizer(float(sample.mean()), std if std > 0 else 1.0)
    low, high = np.percentile(sample, [spec.low_percentile, spec.high_percentile])
    if not high > low:
        # A constant image: keep intensities, avoid dividing by zero.
        high = low + 1.0
    return Normalizer(float(low), float(high - low))


def sample_voxels(data: Any, max_voxels: int = SAMPLE_VOXELS) -> np.ndarray:
    """A deterministic strided subsample of ``data`` as float64, all of it when small.

    Raises :class:`InputDataError` for empty data or data with NaN/inf in the sample.
    """
    size = int(np.prod(data.shape)) if len(data.shape) else 0
    if size == 0:
        raise InputDataError("the input is empty (a zero-sized array): choose another image")
    step = 1
    while size / step**data.ndim > max_voxels:
        step += 1
    index = tuple(slice(None, None, step) for _ in range(data.ndim))
    sample = np.asarray(data[index], dtype=np.float64).ravel()
    check_finite(sample)
    return sample


def fit_fixed_spec(images: list[np.ndarray]) -> NormalizationSpec:
    """The ``fixed`` spec of a training set: mean and std over all its voxels."""
    total = 0
    mean_acc = 0.0
    m2_acc = 0.0
    for image in images:
        values = sample_voxels(image)
        n = values.size
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        # Chan's merge: exact pooled moments over images of different sizes.
        delta = mean - mean_acc
        merged = total + n
        mean_acc += delta * n / merged
        m2_acc += m2 + delta**2 * total * n / merged
        total = merged
    std = (m2_acc / total) ** 0.5
    return NormalizationSpec(mode="fixed", mean=mean_acc, std=std if std > 0 else 1.0)


def check_finite(values: np.ndarray) -> None:
    """Raise :class:`InputDataError` when ``values`` holds NaN or inf."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise InputDataError(
            "the input contains NaN or infinite values: replace them (e.g. with "
            "numpy.nan_to_num) or crop them away before segmenting"
        )
