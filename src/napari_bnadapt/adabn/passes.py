"""Forward passes over sampled target patches that measure BatchNorm inputs.

Two ways to measure: with the chosen layers in train mode, reading each batch's statistics
back from the running buffers (works for TorchScript, which refuses hooks); and in eval
mode with forward pre-hooks on the layers (the features seen at inference).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..cluster import run_tasks
from ..errors import NotAdaptableError
from ..jobs import Progress, Steps
from ..model.bn_layers import BNStats, batchnorm_modules, write_bn_stats
from ..model.parcel import Parcel
from ..model.unet import pad_to_multiple
from .moments import Moments, pool
from .sampling import Patch, TargetSet, batches, read_patches


def as_stats(moments: Moments) -> BNStats:
    """Moments as the buffers a BatchNorm layer stores (float32, unbiased variance)."""
    return {"running_mean": moments.mean.float(), "running_var": moments.var_unbiased.float()}


class PassRunner:
    """Runs forward passes over the sampled patches and measures BN inputs.

    Every batch is measured by :func:`measure_batch` on its own (buffers restored after
    it), so batches can run anywhere: here, or with ``client`` (a dask.distributed client)
    on the cluster's workers, which receive the network once per pass. The per-batch
    moments are merged in batch order either way, so the pooled statistics do not depend
    on where, or on how many workers, the batches ran.
    """

    def __init__(
        self,
        module: nn.Module,
        targets: TargetSet,
        patches: list[Patch],
        batch_size: int,
        device: torch.device,
        divisor: int,
        client: Any = None,
    ) -> None:
        self.module = module
        self.targets = targets
        self.patches = patches
        self.batch_size = batch_size
        self.device = device
        self.divisor = divisor
        self.client = client
        self.bn = batchnorm_modules(module)
        self.batch_count = -(-len(patches) // batch_size)
        self.total = self.batch_count
        self.done = 0
        self.hooks_supported = not isinstance(module, torch.jit.ScriptModule)
        for bn in self.bn.values():
            # Momentum 1 makes the buffers hold exactly the last batch's statistics; a
            # TorchScript module keeps its momentum constant and the general formula is used.
            with contextlib.suppress(AttributeError, RuntimeError, TypeError):
                bn.momentum = 1.0

    def _measure_all(
        self, layers: Sequence[str], train: bool, message: str
    ) -> Steps[dict[str, list[Moments]]]:
        """Per-batch moments of every chosen layer, in batch order."""
        groups = list(batches(self.patches, self.batch_size))
        shared = (Parcel(self.module), self.targets, groups, tuple(layers), train,
                  self.divisor, str(self.device))  # fmt: skip
        measured: dict[int, dict[str, Moments]] = {}
        for index, moments in run_tasks(self.client, _measure_group, shared, range(len(groups))):
            measured[index] = moments
            self.done += 1
            yield Progress(min(self.done, self.total), self.total, message)
        return {name: [measured[i][name] for i in range(len(groups))] for name in layers}

    def standard_pass(self, layers: Sequence[str]) -> Steps[dict[str, list[Moments]]]:
        """Chosen layers in train mode; per-batch statistics recovered from the buffers."""
        return self._measure_all(layers, True, "re-estimating statistics")

    def eval_pass(self, layers: Sequence[str]) -> Steps[dict[str, Moments]]:
        """Everything in eval mode; each chosen layer's input measured by a hook."""
        per_batch = yield from self._measure_all(layers, False, "checking statistics at inference")
        return {name: pool(moments) for name, moments in per_batch.items()}

    def layerwise_passes(self, layers: Sequence[str]) -> Steps[dict[str, Moments]]:
        """For modules without hooks: one standard pass per layer, upstream layers adapted."""
        self.total = self.batch_count * (1 + len(layers))
        estimates: dict[str, Moments] = {}
        for name in layers:
            per_batch = yield from self.standard_pass([name])
            estimates[name] = pool(per_batch[name])
            write_bn_stats(self.module, {name: as_stats(estimates[name])})
        return estimates


def measure_batch(
    module: nn.Module, x: torch.Tensor, layers: Sequence[str], train: bool
) -> dict[str, Moments]:
    """The input moments of ``layers`` on one batch ``x`` (already padded).

    ``train``: the layers in train mode, each batch normalised by its own statistics
    (AdaBN), read back from the buffers, which are then restored; else eval mode, measured
    by forward pre-hooks. The module is left as it was.
    """
    bn = batchnorm_modules(module)
    if not train:
        measured: dict[str, Moments] = {}

        def measure(name: str):
            return lambda _m, inputs: measured.__setitem__(name, Moments.of_batch(inputs[0]))

        handles = [bn[n].register_forward_pre_hook(measure(n)) for n in layers]
        try:
            with torch.no_grad():
                module(x)
        finally:
            for handle in handles:
                handle.remove()
        return measured
    saved = {n: _buffers(bn[n]) for n in layers}
    counts: dict[str, float] = {}
    handles = _count_hooks(module, bn, layers, counts)
    try:
        for name in layers:
            bn[name].train()
        with torch.no_grad():
            module(x)
        _check_train_mode_works(bn[layers[0]], saved[layers[0]])
        # Without hooks (TorchScript) the input's voxel count stands in for the layer's.
        fallback = float(x.shape[0] * x[0, 0].numel())
        return {n: _recover_batch(bn[n], saved[n], counts.get(n, fallback)) for n in layers}
    finally:
        for handle in handles:
            handle.remove()
        for name in layers:
            _restore(bn[name], saved[name])
            bn[name].eval()


def _measure_group(
    parcel: Parcel,
    targets: TargetSet,
    groups: list[list[Patch]],
    layers: tuple[str, ...],
    train: bool,
    divisor: int,
    device: str,
    index: int,
) -> tuple[int, dict[str, Moments]]:
    """One task: read batch ``index``'s patches and measure them."""
    module = parcel.module
    target_device = torch.device(device)
    x = torch.from_numpy(read_patches(targets, groups[index])).to(target_device)
    return index, measure_batch(
        module.to(target_device), pad_to_multiple(x, divisor), layers, train
    )


def _check_train_mode_works(module: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """A module traced in eval mode ignores ``train()``: its buffers never move."""
    if torch.equal(module.running_mean, saved["running_mean"]) and torch.equal(
        module.running_var, saved["running_var"]
    ):
        raise NotAdaptableError(
            "this TorchScript model was traced in eval mode, so its BatchNorm layers cannot "
            "measure new statistics: export it with torch.jit.script instead of trace"
        )


def _count_hooks(
    module: nn.Module, bn: dict[str, nn.Module], layers: Sequence[str], counts: dict[str, float]
) -> list:
    if isinstance(module, torch.jit.ScriptModule):
        return []

    def count(name: str):
        def hook(_module, inputs):
            counts[name] = inputs[0].numel() / inputs[0].shape[1]

        return hook

    return [bn[n].register_forward_pre_hook(count(n)) for n in layers]


def _buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    saved = {"running_mean": module.running_mean.clone(), "running_var": module.running_var.clone()}
    tracked = getattr(module, "num_batches_tracked", None)
    if isinstance(tracked, torch.Tensor):
        saved["num_batches_tracked"] = tracked.clone()
    return saved


def _restore(module: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for key, value in saved.items():
            getattr(module, key).copy_(value)


def _recover_batch(module: nn.Module, old: dict[str, torch.Tensor], count: float) -> Moments:
    """A batch's statistics from a BN layer's buffers after one train-mode step.

    ``running ← (1 − f)·running + f·batch`` with f the momentum (or 1/num_batches_tracked
    when momentum is None), so ``batch = (new − (1 − f)·old) / f``; running_var holds the
    unbiased batch variance.
    """
    momentum = getattr(module, "momentum", 0.1)
    if momentum is None:
        momentum = 1.0 / float(module.num_batches_tracked.item())
    f = float(momentum)
    new_mean = module.running_mean.detach().double()
    new_var = module.running_var.detach().double()
    mean = (new_mean - (1 - f) * old["running_mean"].double()) / f
    var_unbiased = (new_var - (1 - f) * old["running_var"].double()) / f
    var_biased = var_unbiased * (count - 1.0) / count
    return Moments.from_biased(count, mean, var_biased)
