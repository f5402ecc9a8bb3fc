"""A cure's input steps inside the exported network, for tools that only run the network.

napari-bnadapt applies a cure's input steps (contrast inversion, histogram matching, the
Fourier amplitude swap; :mod:`napari_bnadapt.model.input_steps`) to the normalised input
before the network. bioimage.io has no preprocessing for them, so an export compiles them
into the network: :class:`BakedSteps` runs the same arithmetic in torch (TorchScript), then
the network. napari-bnadapt unwraps it again when it opens its own export, so that the
steps stay a reversible part of the model (Reset drops them).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..model.input_steps import InputStep, InvertContrast, MatchHistogram, SwapAmplitude


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` in torch: piecewise linear through (xp, fp), constant outside."""
    if xp.numel() == 1:
        return torch.full_like(x, float(fp[0]))
    index = torch.searchsorted(xp, x.contiguous(), right=True).clamp(1, xp.numel() - 1)
    x0, x1, y0, y1 = xp[index - 1], xp[index], fp[index - 1], fp[index]
    weight = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return y0 + weight * (y1 - y0)


class Invert(nn.Module):
    def __init__(self, step: InvertContrast) -> None:
        super().__init__()
        self.twice_center = 2.0 * float(step.center)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.twice_center - x


class Histogram(nn.Module):
    def __init__(self, step: MatchHistogram) -> None:
        super().__init__()
        self.register_buffer("target", torch.tensor(step.target, dtype=torch.float32))
        self.register_buffer("source", torch.tensor(step.source, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interp(x, self.target, self.source)


class Amplitude(nn.Module):
    def __init__(self, step: SwapAmplitude) -> None:
        super().__init__()
        self.beta = float(step.beta)
        self.mean = float(step.mean)
        self.register_buffer("spectrum", torch.tensor(step.spectrum, dtype=torch.float32))
        self.register_buffer("frequencies", torch.tensor(step.frequencies, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        coefficients = torch.fft.rfft2(x, norm="ortho")
        fy = torch.fft.fftfreq(height, device=x.device).unsqueeze(1)
        fx = torch.fft.rfftfreq(width, device=x.device).unsqueeze(0)
        radius = torch.sqrt(fy * fy + fx * fx)
        low = (radius < self.beta) & (radius > 0)
        target = interp(radius, self.frequencies, self.spectrum)
        swapped = torch.polar(target.expand(coefficients.shape), torch.angle(coefficients))
        coefficients = torch.where(low, swapped, coefficients)
        dc = torch.zeros_like(coefficients.real)
        dc[..., 0, 0] = self.mean * math.sqrt(height * width) - coefficients.real[..., 0, 0]
        coefficients = coefficients + torch.complex(dc, -_dc_imaginary(coefficients))
        return torch.fft.irfft2(coefficients, s=[height, width], norm="ortho")


def _dc_imaginary(coefficients: torch.Tensor) -> torch.Tensor:
    """The imaginary part of the DC coefficient only (zero elsewhere), to remove it."""
    out = torch.zeros_like(coefficients.imag)
    out[..., 0, 0] = coefficients.imag[..., 0, 0]
    return out


class BakedSteps(nn.Module):
    """``steps`` (after the package's normalisation), then ``net``."""

    def __init__(self, net: nn.Module, steps: tuple[InputStep, ...]) -> None:
        super().__init__()
        kinds = {InvertContrast: Invert, MatchHistogram: Histogram, SwapAmplitude: Amplitude}
        self.steps = nn.ModuleList([kinds[type(step)](step) for step in steps])
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return self.net(x)
