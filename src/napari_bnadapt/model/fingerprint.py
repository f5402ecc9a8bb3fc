"""The source fingerprint: what the training data looked like, kept inside the model file.

With it, a model carries its own reference: histogram matching and Fourier amplitude cures
know the source's intensities and spectrum, rescaling knows the training voxel size, and
the diagnostics (shift tables, the polarity check, the verdict) compare a target with the
source's latent distributions without any source images at hand.

Everything is in the model's input frame (after its intensity normalisation). This module
only holds and serialises the data; :mod:`napari_bnadapt.diagnostics.fingerprinting`
computes it from images.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

#: Quantile levels of the intensity fingerprint (0, 1/256, …, 1).
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 257)


@dataclass(frozen=True)
class LatentReference:
    """One layer's per-channel feature distribution on source data (see ``diagnostics``).

    ``counts`` ``(channels, bins + 2)`` on ``edges`` in the layer's frame
    ``(x − offset) / scale``; exact ``count``/``mean``/``var`` (biased) in raw units;
    ``floor`` for the bottleneck (the frame value of a ReLU zero), else None.
    """

    kind: str
    edges: np.ndarray
    counts: np.ndarray
    count: float
    mean: np.ndarray
    var: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    floor: np.ndarray | None = None


@dataclass(frozen=True)
class Fingerprint:
    """Intensities, spectrum, scale and latent distributions of a model's training data.

    Parameters
    ----------
    quantiles
        Normalised input intensities at :data:`QUANTILE_LEVELS`.
    spectrum, frequencies
        Radially averaged Fourier amplitude (orthonormal FFT of each normalised 2D plane of
        the sampled patches) at radial frequencies in cycles per pixel.
    voxel_size
        Training voxel size in nm, ``(y, x)`` or ``(z, y, x)``; None when unknown.
    foreground_fraction
        Fraction of foreground in the training labels, when labels were given.
    latents
        Per layer: the source's feature distributions, the empirical reference of the
        shift tables and the polarity check.
    patches, source
        How many patches were sampled, from what (file or layer names).
    """

    quantiles: np.ndarray
    spectrum: np.ndarray
    frequencies: np.ndarray
    voxel_size: tuple[float, ...] | None = None
    foreground_fraction: float | None = None
    latents: dict[str, LatentReference] = field(default_factory=dict)
    patches: int = 0
    source: str = ""

    @property
    def mean(self) -> float:
        """Mean normalised intensity (from the quantile function)."""
        return float(np.mean(0.5 * (self.quantiles[1:] + self.quantiles[:-1])))

    def with_voxel_size(self, voxel_size: tuple[float, ...] | None) -> Fingerprint:
        """The same fingerprint for data of another (or a newly known) voxel size."""
        return replace(self, voxel_size=None if voxel_size is None else tuple(voxel_size))

    def summary(self) -> str:
        """A few lines for ``bnadapt info``."""
        q = np.interp([0.01, 0.5, 0.99], QUANTILE_LEVELS, self.quantiles)
        size = (
            " × ".join(f"{v:g}" for v in self.voxel_size) + " nm"
            if self.voxel_size
            else "unknown (give --voxel-size to bnadapt fingerprint)"
        )
        low = self.spectrum[self.frequencies < 0.05].mean() if self.spectrum.size else 0.0
        lines = [
            f"fingerprint:    from {self.source or 'training data'} ({self.patches} patches)",
            f"  voxel size:   {size}",
            f"  intensities:  1 % {q[0]:.3g}, median {q[1]:.3g}, 99 % {q[2]:.3g} (normalised)",
            f"  spectrum:     low-frequency amplitude {low:.3g}, "
            f"{len(self.frequencies)} radial bins to {self.frequencies[-1]:.2f} cycles/px",
            f"  latents:      {len(self.latents)} layers",
        ]
        if self.foreground_fraction is not None:
            lines.append(f"  foreground:   {self.foreground_fraction:.1%} of training labels")
        return "\n".join(lines)

    def to_document(self) -> dict[str, Any]:
        """Tensors and plain values, as ``torch.load(weights_only=True)`` reads them back."""
        return {
            "quantiles": torch.from_numpy(np.asarray(self.quantiles, np.float64)),
            "spectrum": torch.from_numpy(np.asarray(self.spectrum, np.float64)),
            "frequencies": torch.from_numpy(np.asarray(self.frequencies, np.float64)),
            "voxel_size": list(self.voxel_size) if self.voxel_size else None,
            "foreground_fraction": self.foreground_fraction,
            "patches": int(self.patches),
            "source": self.source,
            "latents": {name: _layer_document(layer) for name, layer in self.latents.items()},
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Fingerprint:
        def array(value: Any) -> np.ndarray:
            return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)

        voxel = document.get("voxel_size")
        return cls(
            quantiles=array(document["quantiles"]).astype(np.float64),
            spectrum=array(document["spectrum"]).astype(np.float64),
            frequencies=array(document["frequencies"]).astype(np.float64),
            voxel_size=tuple(float(v) for v in voxel) if voxel else None,
            foreground_fraction=document.get("foreground_fraction"),
            latents={
                name: LatentReference(
                    kind=str(layer["kind"]),
                    edges=array(layer["edges"]).astype(np.float64),
                    counts=array(layer["counts"]).astype(np.float64),
                    count=float(layer["count"]),
                    mean=array(layer["mean"]).astype(np.float64),
                    var=array(layer["var"]).astype(np.float64),
                    offset=array(layer["offset"]).astype(np.float64),
                    scale=array(layer["scale"]).astype(np.float64),
                    floor=None if layer.get("floor") is None else array(layer["floor"]),
                )
                for name, layer in (document.get("latents") or {}).items()
            },
            patches=int(document.get("patches", 0)),
            source=str(document.get("source", "")),
        )


def _layer_document(layer: LatentReference) -> dict[str, Any]:
    def tensor(values: np.ndarray, dtype=np.float64) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values, dtype=dtype))

    return {
        "kind": layer.kind,
        "edges": tensor(layer.edges),
        # Counts are whole numbers: float32 keeps them exactly below 2**24 per bin.
        "counts": tensor(layer.counts, np.float32),
        "count": float(layer.count),
        "mean": tensor(layer.mean),
        "var": tensor(layer.var),
        "offset": tensor(layer.offset),
        "scale": tensor(layer.scale),
        "floor": None if layer.floor is None else tensor(layer.floor),
    }
