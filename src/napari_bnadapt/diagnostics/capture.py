"""Capturing latents: one eval-mode pass with hooks that stream per-channel histograms.

Hooks sit on every BatchNorm layer's input and on the built-in U-Net's bottleneck output;
each batch is binned on the device (one fused multiply-add and one ``bincount`` per layer)
and only the counts, exact moments and a bounded sample of bottleneck vectors are kept.
TorchScript modules refuse hooks, so latents cannot be captured from them; their stored
statistics can still be compared (:func:`napari_bnadapt.diagnostics.shift.stats_shift`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..adabn.moments import Moments, pool
from ..adabn.sampling import Patch, TargetSet, batches, read_patches, sample_target
from ..cluster import run_tasks
from ..device import resolve_device
from ..errors import NotAdaptableError
from ..inference import segment_probabilities
from ..jobs import Progress, Steps, blocking
from ..model.bn_layers import batchnorm_modules
from ..model.loaded import LoadedModel
from ..model.parcel import Parcel
from ..model.unet import ConvBlock, run_padded, to_probabilities
from .latents import BOTTLENECK, LatentCapture, LatentConfig, LayerLatents


def latent_layers(model: LoadedModel) -> list[str]:
    """Names of the layers whose latents can be captured, in network order."""
    names = list(batchnorm_modules(model.module))
    if _bottleneck(model.module) is not None:
        names.append(BOTTLENECK)
    return names


def can_capture(model: LoadedModel) -> bool:
    """Latent capture needs forward hooks, which TorchScript modules refuse."""
    return not isinstance(model.module, torch.jit.ScriptModule)


def capture_steps(
    model: LoadedModel,
    data: Any,
    config: LatentConfig | None = None,
    *,
    label: str = "target",
    roi: Any | None = None,
    on_input: Callable[[np.ndarray], None] | None = None,
    voxel_size: tuple[float, ...] | None = None,
    client: Any = None,
) -> Steps[LatentCapture]:
    """One eval-mode forward pass over sampled patches of ``data``, measuring every layer.

    With the same sampling settings it sees exactly the patches adaptation sees.
    ``on_input`` is shown every batch of network input (e.g. to measure intensities in the
    same pass). ``voxel_size``: the data's, to resample it to the model's scale.
    ``client``: a dask.distributed client whose workers measure the batches. Yields a
    :class:`Progress` after every batch; returns a :class:`LatentCapture`.
    """
    cfg = config or LatentConfig()
    if not can_capture(model):
        raise NotAdaptableError(
            "latent histograms need forward hooks, which TorchScript models refuse: "
            "only the stored statistics can be compared for this model"
        )
    targets, patches, _ = sample_target(
        model, data, cfg.patches, cfg.patch_size, cfg.seed, roi, cfg.slice_axis, voxel_size
    )
    return (yield from capture_patches_steps(model, targets, patches, cfg, label, on_input, client))


def capture_patches_steps(
    model: LoadedModel,
    targets: TargetSet,
    patches: list[Patch],
    config: LatentConfig,
    label: str = "target",
    on_input: Callable[[np.ndarray], None] | None = None,
    client: Any = None,
) -> Steps[LatentCapture]:
    """:func:`capture_steps` on patches already sampled (e.g. read through a cure's steps).

    Each batch is measured on its own (:func:`_capture_batch`), here or with ``client``
    on dask.distributed workers; histograms, moments and samples are merged in batch
    order, so the capture is the same wherever the batches ran.
    """
    cfg = config
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    # A private copy carries the recording hooks: a job segmenting with the same model at
    # the same time (another widget) neither feeds them nor runs them.
    module = copy.deepcopy(model.module).to(device).eval()
    groups = list(batches(patches, cfg.batch_size))
    recorders = _recorders(module, cfg, len(groups))
    shared = (
        Parcel(module),
        targets,
        groups,
        cfg,
        model.divisor,
        str(device),
        on_input is not None,
    )
    measured: dict[int, _BatchLatents] = {}
    for done, batch in enumerate(run_tasks(client, _capture_batch, shared, range(len(groups))), 1):
        measured[batch.index] = batch
        if on_input is not None:
            on_input(batch.inputs)
        yield Progress(done, len(groups), f"measuring latents ({label})")
    outputs = []
    for index in range(len(groups)):
        batch = measured[index]
        for recorder in recorders:
            recorder.add(*batch.recorded[recorder.name])
        outputs.append(batch.outputs)
    layers = {r.name: r.result(cfg) for r in recorders}
    samples = next((r.samples() for r in recorders if r.kind == BOTTLENECK), None)
    # Patches stacked on the first axis, classes first: (K, N, *patch).
    stacked = np.moveaxis(np.concatenate(outputs), 1, 0) if outputs else None
    return LatentCapture(
        label, layers, samples, len(patches), round(time.perf_counter() - started, 3),
        segment_probabilities(stacked) if stacked is not None else None,
    )  # fmt: skip


@dataclass
class _BatchLatents:
    """What one batch contributes: per recorder (counts, moments, samples), the outputs."""

    index: int
    recorded: dict[str, tuple[torch.Tensor, Moments, np.ndarray | None]]
    outputs: np.ndarray
    inputs: np.ndarray | None


def _capture_batch(
    parcel: Parcel,
    targets: TargetSet,
    groups: list[list[Patch]],
    cfg: LatentConfig,
    divisor: int,
    device: str,
    keep_inputs: bool,
    index: int,
) -> _BatchLatents:
    """One task: batch ``index`` through the network with recording hooks."""
    target_device = torch.device(device)
    module = parcel.module.to(target_device).eval()
    recorders = _recorders(module, cfg, len(groups), seed=cfg.seed + index)
    handles = [r.attach() for r in recorders]
    batch = read_patches(targets, groups[index])
    x = torch.from_numpy(batch).to(target_device)
    try:
        with torch.inference_mode():
            outputs = to_probabilities(run_padded(module, x, divisor).float()).cpu().numpy()
    finally:
        for handle in handles:
            handle.remove()
    recorded = {r.name: (r.counts, r.moments[0], r.kept[0] if r.kept else None) for r in recorders}
    return _BatchLatents(index, recorded, outputs, batch if keep_inputs else None)


capture_latents = blocking(capture_steps, "capture_latents")


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
        seed: int = 0,
    ) -> None:
        self.name, self.kind, self.module = name, kind, module
        self.offset, self.scale, self.floor = offset, scale, floor
        self.bins, self.span = cfg.bins, cfg.span
        self.counts: torch.Tensor | None = None
        self.moments: list[Moments] = []
        self.sample_rows = -(-cfg.bottleneck_samples // max(batch_count, 1))
        # Seeded per batch: the rows kept do not depend on where the batch ran.
        self.generator = torch.Generator().manual_seed(seed)
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

    def add(self, counts: torch.Tensor, moments: Moments, kept: np.ndarray | None) -> None:
        """Merge one batch measured elsewhere (in batch order)."""
        self.counts = counts if self.counts is None else self.counts + counts
        self.moments.append(moments)
        if kept is not None:
            self.kept.append(kept)

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


def _recorders(
    module: nn.Module, cfg: LatentConfig, batch_count: int, seed: int = 0
) -> list[_Recorder]:
    recorders = []
    for name, bn in batchnorm_modules(module).items():
        offset = bn.running_mean.detach().clone()
        scale = torch.sqrt(bn.running_var.detach() + bn.eps)
        recorders.append(_Recorder(name, "batchnorm", bn, offset, scale, None, cfg, 0, seed))
    bottleneck = _bottleneck(module)
    if bottleneck is not None:
        last_bn = list(batchnorm_modules(bottleneck).values())[-1]
        gamma = last_bn.weight.detach().abs().clamp_min(1e-6)
        beta = last_bn.bias.detach().clone()
        floor = -beta / gamma
        recorder = _Recorder(
            BOTTLENECK, BOTTLENECK, bottleneck, beta, gamma, floor, cfg, batch_count, seed
        )
        recorders.append(recorder)
    return recorders


def _bottleneck(module: nn.Module) -> nn.Module | None:
    """The built-in U-Net's bottleneck block (ends in BatchNorm → ReLU), if there is one."""
    block = getattr(module, BOTTLENECK, None)
    if isinstance(block, ConvBlock) and batchnorm_modules(block):
        return block
    return None
