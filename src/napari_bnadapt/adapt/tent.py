"""TENT (Wang et al., ICLR 2021): a few entropy-minimisation steps on the BatchNorm affine
terms, episodic and guarded.

Starting from the AdaBN statistics (kept fixed: the BatchNorm layers stay in eval mode,
so small batches cannot destabilise them), only γ and β of the BatchNorm layers are
trained to make the predictions on target patches confident. A class-balance term keeps
the mean foreground probability at AdaBN's, against the collapse to all-background that
entropy minimisation is known for in segmentation; the collapse guard undoes the steps
if the masks still moved too far. Every other weight stays bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..jobs import Progress, Steps
from ..model.bn_layers import batchnorm_modules
from ..model.loaded import LoadedModel
from ..model.unet import run_padded, to_probabilities
from .guard import check
from .probe import TrainingData, entropy_loss

#: Weight of the class-balance term: the squared relative deviation of the mean foreground
#: probability from AdaBN's (relative, so that thin structures are held as firmly as large).
BALANCE = 10.0


def affine_names(model: LoadedModel) -> list[str]:
    """The BatchNorm affine parameters (γ, β) TENT trains."""
    names = []
    for layer in batchnorm_modules(model.module):
        names += [f"{layer}.{p}" for p in ("weight", "bias")]
    parameters = dict(model.module.named_parameters())
    return [n for n in names if n in parameters]


def tent_steps(
    model: LoadedModel, data: TrainingData, *, steps: int, learning_rate: float
) -> Steps[dict[str, Any]]:
    """Train the affine terms of ``model`` (in place) for ``steps`` steps; undo if the guard
    says so. Returns what was done, for the adaptation record."""
    probe = data.probe
    module = model.module.to(data.device).eval()
    names = affine_names(model)
    parameters = dict(module.named_parameters())
    start = {n: parameters[n].detach().clone() for n in names}
    before = probe.measure(module)
    target_foreground = _mean_foreground(before.probabilities)
    flags = {n: p.requires_grad for n, p in parameters.items()}
    for name, parameter in parameters.items():
        parameter.requires_grad_(name in start)
    optimizer = torch.optim.Adam([parameters[n] for n in names], lr=learning_rate)
    rng = np.random.default_rng(data.seed)
    losses = []
    try:
        for step in range(1, steps + 1):
            x = data.random_batch(rng)
            probabilities = to_probabilities(run_padded(module, x, model.divisor))
            deviation = _mean_foreground(probabilities) / target_foreground.clamp_min(1e-3) - 1
            balance = deviation**2
            loss = entropy_loss(probabilities) + BALANCE * balance
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(round(float(loss.detach()), 5))
            yield Progress(step, steps, f"TENT step {step}/{steps}")
    except BaseException:
        _restore(parameters, start)
        raise
    finally:
        for name, parameter in parameters.items():
            parameter.requires_grad_(flags[name])
    reading = check(before, probe.measure(module))
    if not reading.kept:
        _restore(parameters, start)
    return {"tent_steps": steps, "tent_losses": losses, "guard": reading.to_dict()}


def _mean_foreground(probabilities: torch.Tensor) -> torch.Tensor:
    """Mean foreground probability (1 − background for multi-class outputs)."""
    if probabilities.shape[1] == 1:
        return probabilities.mean()
    return 1.0 - probabilities[:, 0].mean()


def _restore(parameters: dict[str, torch.nn.Parameter], values: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            parameters[name].copy_(value)
