"""Forward passes over sampled target patches that measure BatchNorm inputs.

Two ways to measure: with the chosen layers in train mode, reading each batch's statistics
back from the running buffers (works for TorchScript, which refuses hooks); and in eval
mode with forward pre-hooks on the layers (the features seen at inference).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import NotAdaptableError
from ..jobs import Progress, Steps
from ..model.bn_layers import BNStats, batchnorm_modules, write_bn_stats
from ..model.unet import pad_to_multiple
from .moments import Moments, pool
from .sampling import Patch, batches, read_patches


def as_stats(moments: Moments) -> BNStats:
    """Moments as the buffers a BatchNorm layer stores (float32, unbiased variance)."""
    return {"running_mean": moments.mean.float(), "running_var": moments.var_unbiased.float()}


class PassRunner:
    """Runs forward passes over the sampled patches and measures BN inputs."""

    def __init__(
        self,
        module: nn.Module,
        targets,
        patches: list[Patch],
        batch_size: int,
        device: torch.device,
        divisor: int,
    ) -> None:
        self.module = module
        self.targets = targets
        self.patches = patches
        self.batch_size = batch_size
        self.device = device
        self.divisor = divisor
        self.bn = batchnorm_modules(module)
        self.batch_count = -(-len(patches) // batch_size)
        self.total = self.batch_count
        self.done = 0
        self.hooks_supported = not isinstance(module, torch.jit.ScriptModule)
        self.last_count = 0.0
        for bn in self.bn.values():
            # Momentum 1 makes the buffers hold exactly the last batch's statistics; a
            # TorchScript module keeps its momentum constant and the general formula is used.
            with contextlib.suppress(AttributeError, RuntimeError, TypeError):
                bn.momentum = 1.0

    def _forward_all(self, message: str) -> Steps[None]:
        for group in batches(self.patches, self.batch_size):
            x = torch.from_numpy(read_patches(self.targets, group)).to(self.device)
            self.last_count = float(x.shape[0] * x[0, 0].numel())
            with torch.no_grad():
                self.module(pad_to_multiple(x, self.divisor))
            self.done += 1
            yield Progress(min(self.done, self.total), self.total, message)

    def standard_pass(self, layers: Sequence[str]) -> Steps[dict[str, list[Moments]]]:
        """Chosen layers in train mode; per-batch statistics recovered from the buffers."""
        per_batch: dict[str, list[Moments]] = {name: [] for name in layers}
        saved = {n: _buffers(self.bn[n]) for n in layers}
        counts: dict[str, float] = {}
        handles = self._count_hooks(layers, counts)
        try:
            for name in layers:
                self.bn[name].train()
            for step in self._forward_all("re-estimating statistics"):
                if self.done == 1:
                    self._check_train_mode_works(layers[0], saved[layers[0]])
                for name in layers:
                    per_batch[name].append(
                        _recover_batch(
                            self.bn[name], saved[name], counts.get(name, self.last_count)
                        )
                    )
                    _restore(self.bn[name], saved[name])
                yield step
        finally:
            for handle in handles:
                handle.remove()
            for name in layers:
                _restore(self.bn[name], saved[name])
                self.bn[name].eval()
        return per_batch

    def _check_train_mode_works(self, name: str, saved: dict[str, torch.Tensor]) -> None:
        """A module traced in eval mode ignores ``train()``: its buffers never move."""
        module = self.bn[name]
        if torch.equal(module.running_mean, saved["running_mean"]) and torch.equal(
            module.running_var, saved["running_var"]
        ):
            raise NotAdaptableError(
                "this TorchScript model was traced in eval mode, so its BatchNorm layers cannot "
                "measure new statistics: export it with torch.jit.script instead of trace"
            )

    def eval_pass(self, layers: Sequence[str]) -> Steps[dict[str, Moments]]:
        """Everything in eval mode; each chosen layer's input measured by a hook."""
        per_batch: dict[str, list[Moments]] = {name: [] for name in layers}

        def measure(name: str):
            return lambda _module, inputs: per_batch[name].append(Moments.of_batch(inputs[0]))

        handles = [self.bn[n].register_forward_pre_hook(measure(n)) for n in layers]
        try:
            yield from self._forward_all("checking statistics at inference")
        finally:
            for handle in handles:
                handle.remove()
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

    def _count_hooks(self, layers: Sequence[str], counts: dict[str, float]) -> list:
        if not self.hooks_supported:
            return []

        def count(name: str):
            def hook(_module, inputs):
                counts[name] = inputs[0].numel() / inputs[0].shape[1]

            return hook

        return [self.bn[n].register_forward_pre_hook(count(n)) for n in layers]


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
