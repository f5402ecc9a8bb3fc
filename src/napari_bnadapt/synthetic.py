"""Synthetic EM-like images with ground truth and a controllable domain shift.

As in the study this project grew from: a mask is fractal (Perlin-like) noise thresholded
and "looked at from above"; the mask is filled with Gaussian noise of mean μ1 and the
background with mean μ2. A target domain is the same generator with other μ1/μ2, noise,
blur, texture, contrast or gamma. Everything is vectorised with FFTs so thousands of images
take seconds, and seeded so every data set can be reproduced exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

#: Images per FFT chunk: bounds memory when generating large batches.
_CHUNK_VOXELS = 8_000_000


@dataclass(frozen=True)
class Domain:
    """The look of one imaging domain (intensities in [0, 1], 0 = black).

    Parameters
    ----------
    mu_foreground, mu_background
        μ1 and μ2: mean intensity inside and outside the mask.
    sigma
        Standard deviation of the white noise added everywhere.
    blur
        Gaussian blur (σ in pixels) of the image after noise: the microscope's resolution.
    texture
        Amplitude of a smooth random intensity variation (uneven staining/illumination).
    contrast, gamma
        Applied last: ``((x - 0.5) * contrast + 0.5) ** gamma``, clipped to [0, 1].
    """

    mu_foreground: float = 0.30
    mu_background: float = 0.55
    sigma: float = 0.08
    blur: float = 1.0
    texture: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0

    def shifted(self, **changes: float) -> Domain:
        """This domain with some parameters changed: a target domain."""
        return replace(self, **changes)


#: The source domain of the bundled demo model (chemically fixed, say).
SOURCE = Domain()
#: The demo target: brighter, with more contrast between structures and a little more noise.
TARGET = Domain(mu_foreground=0.55, mu_background=0.88, sigma=0.10, blur=1.0)

#: Named single-factor shifts of :data:`SOURCE`, for benchmarks and tests.
SHIFTS: dict[str, Domain] = {
    "none": SOURCE,
    "brightness": SOURCE.shifted(mu_foreground=0.50, mu_background=0.75),
    "contrast": SOURCE.shifted(mu_foreground=0.35, mu_background=0.45),
    "gamma": SOURCE.shifted(gamma=0.5),
    "blur": SOURCE.shifted(blur=2.5),
    "noise": SOURCE.shifted(sigma=0.20),
    "inverted": SOURCE.shifted(mu_foreground=0.55, mu_background=0.30),
}


def fractal_field(
    count: int, shape: tuple[int, ...], rng: np.random.Generator, feature_size: float = 20.0
) -> np.ndarray:
    """Smooth random fields ``(count, *shape)`` with a fractal (1/f) spectrum, unit variance.

    The spectrum falls as ``f**-1.5`` per axis beyond ``1/feature_size`` and is cut off
    with a Gaussian above it, giving blob-like structures of about ``feature_size`` pixels
    with rough, fractal borders (as Perlin noise summed over octaves).
    """
    freqs = np.meshgrid(
        *[np.fft.fftfreq(n) for n in shape[:-1]], np.fft.rfftfreq(shape[-1]), indexing="ij"
    )
    f = np.sqrt(sum(g**2 for g in freqs))
    f0 = 1.0 / feature_size
    amplitude = (f**2 + f0**2) ** -0.75 * np.exp(-((f * feature_size / 3.0) ** 2))
    amplitude.flat[0] = 0.0  # no DC: fields are zero-mean
    fields = _spectral_filter(rng.standard_normal((count, *shape), dtype=np.float32), amplitude)
    fields /= fields.std(axis=tuple(range(1, fields.ndim)), keepdims=True) + 1e-12
    return fields


def make_masks(
    count: int,
    shape: tuple[int, ...],
    seed: int = 0,
    foreground_fraction: float = 0.4,
    feature_size: float = 20.0,
) -> np.ndarray:
    """Binary masks ``(count, *shape)`` (uint8): thresholded fractal noise, 2D or 3D."""
    rng = np.random.default_rng(seed)
    level = NormalDist().inv_cdf(1.0 - foreground_fraction)
    return (fractal_field(count, shape, rng, feature_size) > level).astype(np.uint8)


def render(masks: np.ndarray, domain: Domain, seed: int = 0, dtype: str = "uint8") -> np.ndarray:
    """Images of ``masks`` (``(count, *shape)``) as seen in ``domain``.

    Returns uint8 (0–255, as most EM data) or float32 in [0, 1].
    """
    rng = np.random.default_rng(seed)
    shape = masks.shape[1:]
    out = np.empty(masks.shape, dtype=np.float32)
    step = max(1, _CHUNK_VOXELS // int(np.prod(shape)))
    for start in range(0, len(masks), step):
        chunk = masks[start : start + step].astype(np.float32)
        image = domain.mu_background + (domain.mu_foreground - domain.mu_background) * chunk
        if domain.texture:
            image += domain.texture * fractal_field(len(chunk), shape, rng, feature_size=48.0)
        image += domain.sigma * rng.standard_normal(chunk.shape, dtype=np.float32)
        if domain.blur > 0:
            image = gaussian_blur(image, domain.blur)
        image = (image - 0.5) * domain.contrast + 0.5
        np.clip(image, 0.0, 1.0, out=image)
        if domain.gamma != 1.0:
            image **= domain.gamma
        out[start : start + step] = image
    if dtype == "uint8":
        return np.round(out * 255.0).astype(np.uint8)
    return out


def make_dataset(
    count: int,
    shape: tuple[int, ...] = (128, 128),
    domain: Domain = SOURCE,
    seed: int = 0,
    foreground_fraction: float = 0.4,
    feature_size: float = 20.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` image/mask pairs of ``shape`` (2D or 3D) in ``domain``: (images, masks)."""
    masks = make_masks(count, shape, seed, foreground_fraction, feature_size)
    return render(masks, domain, seed=seed + 1), masks


def make_volume(
    shape: tuple[int, int, int] = (32, 192, 192),
    domain: Domain = SOURCE,
    seed: int = 0,
    foreground_fraction: float = 0.4,
    feature_size: float = 20.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One 3D volume and its mask: structures continuous across slices."""
    images, masks = make_dataset(1, shape, domain, seed, foreground_fraction, feature_size)
    return images[0], masks[0]


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each of ``images`` (``(count, *shape)``) with a periodic Gaussian of ``sigma``."""
    shape = images.shape[1:]
    freqs = np.meshgrid(
        *[np.fft.fftfreq(n) for n in shape[:-1]], np.fft.rfftfreq(shape[-1]), indexing="ij"
    )
    f2 = sum(g**2 for g in freqs)
    return _spectral_filter(images, np.exp(-2.0 * np.pi**2 * sigma**2 * f2))


def _spectral_filter(images: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    """Multiply each image's spectrum by ``transfer`` (real FFT over the spatial axes)."""
    axes = tuple(range(1, images.ndim))
    spectrum = np.fft.rfftn(images, axes=axes)
    spectrum *= transfer
    return np.fft.irfftn(spectrum, s=images.shape[1:], axes=axes).astype(np.float32)
