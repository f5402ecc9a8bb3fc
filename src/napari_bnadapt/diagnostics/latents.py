"""Streaming per-channel distributions of a network's latent features.

For every BatchNorm layer the *input* (before normalisation) is captured, and for the
built-in U-Net also the bottleneck output (the latent space of the source paper). Nothing
but per-channel histograms on fixed bins, exact moments and a bounded sample of bottleneck
vectors is kept, so memory is bounded by layers × channels × bins whatever the data size.

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

TorchScript modules refuse hooks, so latents cannot be captured from them; their stored
statistics can still be compared (:func:`napari_bnadapt.distances.stats_shift`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..adapt.moments import Moments, pool
from ..adapt.sampling import batches, read_patches, sample_target
from ..device import resolve_device
from ..errors import NotAdaptableError
from ..jobs import Progress, ProgressCallback, Steps, run_steps
from ..model.bn_layers import batchnorm_modules
from ..model.checkpoint import LoadedModel
from ..model.unet import pad_to_multiple

BOTTLENECK = "bottleneck"


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
        As for :class:`napari_bnadapt.adaptation.AdaptConfig`.
    """

    bins: int = 160
    span: float = 8.0
    patches: int = 64
    patch_size: int | tuple[int, ...] | None = None
    batch_size: int = 8
    seed: int = 0
    bottleneck_samples: int = 4096
    device: str = "auto"
    slice_axis: int | None = None

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-self.span, self.span, self.bins + 1)


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
        from .distances import histogram_quantiles

        return histogram_quantiles(self.counts, self.edges, levels)

    def probabilities(self) -> np.ndarray:
        """Counts normalised per channel (rows sum to 1)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        return self.counts / np.maximum(totals, 1.0)


@dataclass
class LatentCapture:
    """The latents of one model on one dataset (``label`` says which, e.g. 'target before')."""

    label: str
    layers: dict[str, LayerLatents]
    bottleneck_samples: np.ndarray | None = None
    patches: int = 0
    seconds: float = 0.0

    @property
    def nbytes(self) -> int:
        """Memory held by the capture (histograms, moments, samples)."""
        total = sum(layer.counts.nbytes + 4 * layer.channels * 8 for layer in self.layers.values())
        if self.bottleneck_samples is not None:
            total += self.bottleneck_samples.nbytes
        return total


def latent_layers(model: LoadedModel) -> list[str]:
    """Names of the layers whose latents can be captured, in network order."""
    names = list(batchnorm_modules(model.module))
    if _bottleneck(model.module) is not None:
        names.append(BOTTLENECK)
    return names


def can_capture(model: LoadedModel) -> bool:
    """Latent capture needs forward hooks, which TorchScript modules refuse."""
    return not isinstance(model.module, torch.jit.ScriptModule)


def capture_latents(
    model: LoadedModel,
    data: Any,
    config: LatentConfig | None = None,
    *,
    label: str = "target",
    roi: Any | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LatentCapture:
    """One eval-mode forward pass over sampled patches of ``data``, measuring every layer."""
    steps = capture_steps(model, data, config, label=label, roi=roi)
    return run_steps(steps, progress, should_stop)


def capture_steps(
    model: LoadedModel,
    data: Any,
    config: LatentConfig | None = None,
    *,
    label: str = "target",
    roi: Any | None = None,
) -> Steps[LatentCapture]:
    """:func:`capture_latents` as a generator of :class:`Progress`."""
    import time

    cfg = config or LatentConfig()
    if not can_capture(model):
        raise NotAdaptableError(
            "latent histograms need forward hooks, which TorchScript models refuse: "
            "only the stored statistics can be compared for this model"
        )
    started = time.perf_counter()
    targets, patches, _ = sample_target(
        model, data, cfg.patches, cfg.patch_size, cfg.seed, roi, cfg.slice_axis
    )
    device = resolve_device(cfg.device)
    module = model.module.to(device).eval()
    groups = list(batches(patches, cfg.batch_size))
    recorders = _recorders(module, cfg, len(groups))
    handles = [r.attach() for r in recorders]
    try:
        for done, group in enumerate(groups, start=1):
            x = torch.from_numpy(read_patches(targets, group)).to(device)
            with torch.inference_mode():
                module(pad_to_multiple(x, model.divisor))
            yield Progress(done, len(groups), f"measuring latents ({label})")
    finally:
        for handle in handles:
            handle.remove()
    layers = {r.name: r.result(cfg) for r in recorders}
    samples = next((r.samples() for r in recorders if r.kind == BOTTLENECK), None)
    return LatentCapture(
        label, layers, samples, len(patches), round(time.perf_counter() - started, 3)
    )


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


class _Recorder:
    """Hooks one module and accumulates histograms, moments (and samples)."""

    def __init__(
        self,
        name: str,
        kind: str,
        module: nn.Module,
        offset: torch.Tensor,
        scale: torch.Tensor,
        floor: torch.Tensor | None,
        cfg: LatentConfig,
        batch_count: int,
    ) -> None:
        self.name, self.kind, self.module = name, kind, module
        self.offset, self.scale, self.floor = offset, scale, floor
        self.bins, self.span = cfg.bins, cfg.span
        self.counts: torch.Tensor | None = None
        self.moments: list[Moments] = []
        self.sample_rows = -(-cfg.bottleneck_samples // max(batch_count, 1))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.kept: list[np.ndarray] = []

    def attach(self):
        if self.kind == BOTTLENECK:
            return self.module.register_forward_hook(lambda _m, _i, out: self.record(out))
        return self.module.register_forward_pre_hook(lambda _m, inputs: self.record(inputs[0]))

    def record(self, x: torch.Tensor) -> None:
        x = x.detach().float()
        self.moments.append(Moments.of_batch(x))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        offset = self.offset.view(shape).to(x.device)
        scale = self.scale.view(shape).to(x.device)
        counts = histogram_channels(x, self.bins, self.span, offset, scale)
        self.counts = counts if self.counts is None else self.counts + counts
        if self.kind == BOTTLENECK and self.sample_rows > 0:
            z = (x - offset) / scale
            rows = z.transpose(0, 1).reshape(z.shape[1], -1).T
            pick = torch.randperm(rows.shape[0], generator=self.generator)[: self.sample_rows]
            self.kept.append(rows[pick.to(rows.device)].cpu().numpy())

    def result(self, cfg: LatentConfig) -> LayerLatents:
        if self.counts is None:
            raise RuntimeError(f"layer {self.name} was never reached by the forward pass")
        return LayerLatents(
            name=self.name,
            kind=self.kind,
            edges=cfg.edges,
            counts=self.counts.cpu().numpy(),
            moments=pool(self.moments),
            offset=self.offset.double().cpu().numpy(),
            scale=self.scale.double().cpu().numpy(),
            floor=None if self.floor is None else self.floor.double().cpu().numpy(),
        )

    def samples(self) -> np.ndarray | None:
        return np.concatenate(self.kept).astype(np.float32) if self.kept else None


def histogram_channels(
    x: torch.Tensor,
    bins: int,
    span: float,
    offset: torch.Tensor | float = 0.0,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Per-channel histogram of ``z = (x − offset) / scale`` for ``x`` ``(N, C, *spatial)``,
    on ``bins`` bins over ``[-span, span]``: float64 ``(C, bins + 2)``.

    Column 0 counts values below ``-span``, column ``bins + 1`` those above ``span``. The
    standardisation and binning are one fused multiply-add, then one ``bincount`` over
    (channel, bin) codes; ``x`` is never transposed or copied more than once.
    """
    channels = x.shape[1]
    per_bin = bins / (2 * span)
    gain = per_bin / scale
    bias = (span - offset / scale) * per_bin + 1.0
    if not isinstance(gain, torch.Tensor):
        gain = torch.tensor(gain, device=x.device)
    index = torch.addcmul(torch.as_tensor(bias, device=x.device), x, gain)
    # After clamping at 0, truncation towards zero is the floor.
    index = index.clamp_(0, bins + 1)
    codes = index.to(torch.int32 if index.numel() < 2**31 else torch.int64)
    shape = (1, channels) + (1,) * (x.ndim - 2)
    codes += (torch.arange(channels, device=x.device, dtype=codes.dtype) * (bins + 2)).view(shape)
    flat = torch.bincount(codes.reshape(-1), minlength=channels * (bins + 2))
    return flat.view(channels, bins + 2).to("cpu", torch.float64)


def _recorders(module: nn.Module, cfg: LatentConfig, batch_count: int) -> list[_Recorder]:
    recorders = []
    for name, bn in batchnorm_modules(module).items():
        offset = bn.running_mean.detach().clone()
        scale = torch.sqrt(bn.running_var.detach() + bn.eps)
        recorders.append(_Recorder(name, "batchnorm", bn, offset, scale, None, cfg, 0))
    bottleneck = _bottleneck(module)
    if bottleneck is not None:
        last_bn = list(batchnorm_modules(bottleneck).values())[-1]
        gamma = last_bn.weight.detach().abs().clamp_min(1e-6)
        beta = last_bn.bias.detach().clone()
        recorders.append(
            _Recorder(
                BOTTLENECK, BOTTLENECK, bottleneck, beta, gamma, -beta / gamma, cfg, batch_count
            )
        )
    return recorders


def _bottleneck(module: nn.Module) -> nn.Module | None:
    """The built-in U-Net's bottleneck block (ends in BatchNorm → ReLU), if there is one."""
    from ..model.unet import ConvBlock

    block = getattr(module, BOTTLENECK, None)
    if isinstance(block, ConvBlock) and batchnorm_modules(block):
        return block
    return None


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(np.asarray(x, dtype=np.float64))


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Index in the ``bins + 2`` cells (underflow, bins, overflow) of each value."""
    return np.searchsorted(edges, values, side="right")
