"""Input steps: changes to the (normalised) input that a cure made part of the model.

A cure that works on the image rather than on the network (contrast inversion, histogram
matching, a Fourier amplitude swap) is a step stored with the adapted model, so that
``bnadapt predict`` and the widgets apply it wherever the model is used; ``reset`` drops
it. Steps act on normalised float32 regions ``(C, *spatial)`` as they are read, tile by
tile: each step is pointwise, or (the amplitude swap) works on each tile's 2D planes with
an orthonormal FFT, whose coefficients do not depend on the tile size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class InvertContrast:
    """Mirror intensities about the target's mean: dark membranes become dark again."""

    KIND: ClassVar[str] = "invert"
    center: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.float32(2.0 * self.center) - x

    def describe(self) -> str:
        return "contrast inverted"


@dataclass(frozen=True)
class MatchHistogram:
    """Map the target's intensity quantiles onto the source's (a monotone lookup)."""

    KIND: ClassVar[str] = "histogram"
    target: tuple[float, ...]
    source: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.target, self.source).astype(np.float32)

    def describe(self) -> str:
        return "histogram matched to the source"

    @classmethod
    def between(cls, target: np.ndarray, source: np.ndarray) -> MatchHistogram:
        """The lookup from target to source quantiles at the same levels.

        Integer images repeat quantile values; each repeated target value maps to the mean
        of the source quantiles it stands for, so the lookup is a function.
        """
        values, inverse = np.unique(np.asarray(target, np.float64), return_inverse=True)
        mapped = np.bincount(inverse, weights=np.asarray(source, np.float64)) / np.bincount(inverse)
        return cls(tuple(values.tolist()), tuple(mapped.tolist()))


@dataclass(frozen=True)
class SwapAmplitude:
    """Fourier domain adaptation (Yang & Soatto 2020) with the source's stored spectrum.

    In every 2D plane, the amplitude of frequencies below ``beta`` (cycles per pixel) is
    replaced by the source's radially averaged amplitude and the mean by the source's,
    keeping the phase: slow illumination and contrast changes are removed, edges are kept.
    """

    KIND: ClassVar[str] = "fda"
    beta: float
    spectrum: tuple[float, ...]
    frequencies: tuple[float, ...]
    mean: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        plane = x.shape[-2:]
        coefficients = np.fft.rfft2(x, norm="ortho")
        radius = radial_frequencies(plane)
        low = (radius < self.beta) & (radius > 0)
        amplitude = np.abs(coefficients)
        target = np.interp(radius, self.frequencies, self.spectrum)
        phase = np.exp(1j * np.angle(coefficients))
        coefficients = np.where(low, target * phase, amplitude * phase)
        coefficients[..., 0, 0] = self.mean * np.sqrt(plane[0] * plane[1])
        return np.fft.irfft2(coefficients, s=plane, norm="ortho").astype(np.float32)

    def describe(self) -> str:
        return f"low-frequency amplitude swapped with the source's (β {self.beta:g})"


InputStep = InvertContrast | MatchHistogram | SwapAmplitude
_KINDS: dict[str, type] = {
    kind.KIND: kind for kind in (InvertContrast, MatchHistogram, SwapAmplitude)
}


def radial_frequencies(plane: tuple[int, int]) -> np.ndarray:
    """|f| in cycles per pixel of every ``rfft2`` coefficient of a ``plane``-sized image."""
    fy = np.fft.fftfreq(plane[0])[:, None]
    fx = np.fft.rfftfreq(plane[1])[None, :]
    return np.sqrt(fy**2 + fx**2)


@dataclass(frozen=True)
class Pipeline:
    """``first`` (the normaliser), then every step in order; picklable, so a dask worker
    normalises its blocks exactly as the process that fitted it."""

    first: Callable[[np.ndarray], np.ndarray]
    steps: tuple[InputStep, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self.first(x)
        for step in self.steps:
            out = step(out)
        return out


def compose(
    first: Callable[[np.ndarray], np.ndarray], steps: Sequence[InputStep]
) -> Callable[[np.ndarray], np.ndarray]:
    """``first`` (the normaliser), then every step in order."""
    return Pipeline(first, tuple(steps)) if steps else first


def step_to_dict(step: InputStep) -> dict[str, Any]:
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in step.__dict__.items()}
    return {"kind": step.KIND, **values}


def step_from_dict(data: dict[str, Any]) -> InputStep:
    """Read a step back; an unknown kind is a KeyError (a file from a newer version)."""
    kind = _KINDS[data["kind"]]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "kind"}
    return kind(**values)
