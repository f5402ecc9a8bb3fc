"""How one prediction runs: tiles, batch, precision and memory layout, chosen once.

:class:`Execution` holds the effective values (plain numbers and names, so that a record of
the run can keep them); :func:`choose_speed` picks precision and layout: as asked, or, for
``auto``, the fastest candidate (:func:`speeds`: a rule measured for the built-in U-Net on
CPUs, a cached calibration elsewhere) whose masks agree with float32's on sample tiles of
the input (:mod:`.agreement`), else float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .agreement import check_precision
from .calibration import Calibration, calibrate
from .network import foldable, inference_module
from .precision import runs_natively, usable

#: Jobs smaller than this run in float32 with the default layout, unmeasured: measuring
#: and checking would cost more than they save (a few seconds on a CPU).
MIN_VOXELS = 4 * 2**20
#: Speeds of the built-in U-Net on a CPU relative to float32, per dimensionality (medians
#: of five interleaved rounds of ``benchmarks/throughput.py``'s forward variants, BatchNorm
#: folded, AMD EPYC with AVX-512-BF16, two threads; docs/scale.md). Channels-last memory is
#: faster in both; bfloat16 adds nothing to it in 2D (1.58 against 1.62, within the rounds'
#: range), so 2D models stay exact in float32, and nearly doubles it in 3D (on CPUs that
#: compute bfloat16 natively).
CPU_RULE = {
    2: {("fp32", False): 1.0, ("fp32", True): 1.62, ("bf16", False): 0.99, ("bf16", True): 1.58},
    3: {("fp32", False): 1.0, ("fp32", True): 1.61, ("bf16", False): 1.68, ("bf16", True): 2.80},
}
#: Voxels of input checked in both precisions, in crops of up to this many tiles.
SAMPLE_VOXELS = 2**17
SAMPLE_TILES = 4


@dataclass(frozen=True)
class Execution:
    """The effective settings of a prediction.

    ``tile`` and ``overlap`` per spatial axis of the network (px at the model's voxel
    size); ``precision`` ``fp32``, ``bf16`` or ``fp16``; ``channels_last`` memory;
    ``fold_batchnorm`` (BatchNorm folded into the convolutions); ``note`` says why, when
    a choice was measured.
    """

    tile: tuple[int, ...]
    overlap: tuple[int, ...]
    batch_size: int
    precision: str = "fp32"
    channels_last: bool = False
    fold_batchnorm: bool = False
    note: str = ""

    def describe(self) -> str:
        layout = ", channels-last" if self.channels_last else ""
        text = (
            f"tiles {'×'.join(map(str, self.tile))} overlapping by "
            f"{'×'.join(map(str, self.overlap))}, {self.batch_size} per pass, "
            f"{self.precision}{layout}"
        )
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class SpeedRequest:
    """What the user asked: ``precision`` (``auto``: the fastest, see :func:`speeds`),
    ``channels_last`` (None: the faster), ``fold_batchnorm``."""

    precision: str = "auto"
    channels_last: bool | None = None
    fold_batchnorm: bool = True


def choose_speed(
    module: nn.Module,
    dims: int,
    in_channels: int,
    divisor: int,
    device: torch.device,
    request: SpeedRequest,
    voxels: int,
    sample: Callable[[], np.ndarray],
    threshold: float,
    min_size: int = 0,
) -> tuple[str, bool, str]:
    """``(precision, channels_last, note)`` for a job of ``voxels`` network voxels;
    ``sample()`` gives normalised input tiles to check a reduced precision on."""
    precision = usable(device, request.precision)
    measure = voxels >= MIN_VOXELS
    if not measure or (precision != "auto" and request.channels_last is not None):
        fixed = "fp32" if precision == "auto" else precision
        return fixed, bool(request.channels_last), ""
    calibration, how = speeds(module, dims, in_channels, divisor, device, request, min_size)
    if precision != "auto":
        return precision, _layout(calibration, precision, request), ""
    fastest, layout = calibration.fastest()
    if fastest == "fp32":
        return "fp32", _layout(calibration, "fp32", request), how
    layout = _layout(calibration, fastest, request)
    net = inference_module(module, device, dims, layout, request.fold_batchnorm)
    agreement = check_precision(
        net, sample(), divisor, device, fastest, threshold, layout, min_size
    )
    if agreement.passed:
        return fastest, layout, f"{how}; {agreement.describe()} with fp32"
    fallback = _layout(calibration, "fp32", request)
    return "fp32", fallback, f"{fastest} moved the masks ({agreement.describe()}): fp32"


def speeds(
    module: nn.Module,
    dims: int,
    in_channels: int,
    divisor: int,
    device: torch.device,
    request: SpeedRequest,
    min_size: int = 0,
) -> tuple[Calibration, str]:
    """How fast each precision and layout runs ``module`` on ``device``, and how that is
    known: for the built-in U-Net on a CPU, the rule measured here (:data:`CPU_RULE`: a
    calibration on a CPU shared with other work is noise, docs/scale.md); for anything
    else, a calibration (measured once, cached)."""
    if device.type == "cpu" and foldable(module):
        native = runs_natively(device, "bf16")
        precisions = ("fp32", "bf16") if native else ("fp32",)
        rule = CPU_RULE[3 if dims == 3 else 2]
        rates = tuple((p, cl, rule[(p, cl)]) for p in precisions for cl in (False, True))
        return Calibration(rates), "the rule measured for the built-in U-Net on CPUs"
    calibration = calibrate(
        module, dims, in_channels, divisor, device, request.fold_batchnorm, min_size
    )
    return calibration, "measured fastest here"


def _layout(calibration, precision: str, request: SpeedRequest) -> bool:
    if request.channels_last is not None:
        return request.channels_last
    rates = {cl: calibration.rate(precision, cl) or 0.0 for cl in (False, True)}
    return rates[True] > rates[False]


def sample_jobs(
    jobs: Sequence[Any],
    tile: Sequence[int],
    divisor: int,
    read: Callable[[list[Any]], np.ndarray],
) -> np.ndarray:
    """Input to check a precision on: up to :data:`SAMPLE_TILES` tiles spread evenly over
    ``jobs`` (``read(picked)`` gives them normalised, ``(B, C, *tile)``), each cropped to
    its centre so that all hold about :data:`SAMPLE_VOXELS` voxels."""
    count = min(len(jobs), SAMPLE_TILES)
    chosen = sorted({round(i) for i in np.linspace(0, len(jobs) - 1, count)})
    tiles = read([jobs[i] for i in chosen])
    edge = divisor * math.ceil((SAMPLE_VOXELS / len(chosen)) ** (1 / len(tile)) / divisor)
    crop = tuple(
        slice((n - min(n, edge)) // 2, (n - min(n, edge)) // 2 + min(n, edge))
        for n in tiles.shape[2:]
    )
    return np.ascontiguousarray(tiles[(slice(None), slice(None), *crop)])
