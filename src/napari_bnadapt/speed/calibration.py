"""Which precision and memory layout run a network fastest here: measured once, cached.

Each candidate (float32 and, where the hardware computes it natively, bfloat16; each in
the default and in channels-last memory) runs the network on the same probe input, one
after the other, in several rounds. Within a round every candidate's speed is taken
relative to float32 in the default layout, and a candidate's figure is the median of its
rounds: on a machine shared with other work the load slows a round's candidates alike, so
ratios hold where absolute times do not. The answer is cached under the network's
architecture (not its weights: adapted statistics run at the same speed), the device, the
torch version and the thread count.
"""

from __future__ import annotations

import hashlib
import platform
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..model.unet import run_padded
from .cache import recall, remember
from .network import inference_module
from .precision import autocast, memory_format, runs_natively

#: Probe edge per spatial axis (2D, 3D): about 0.15 million voxels.
PROBE = {2: 384, 3: 48}
ROUNDS = 5
#: Reduced precision must be at least this much faster than float32 to be chosen.
MARGIN = 1.10


@dataclass(frozen=True)
class Calibration:
    """Voxels per second of each ``(precision, channels_last)`` candidate: float32 in the
    default layout at its best, the others by their median ratio to it (see above)."""

    rates: tuple[tuple[str, bool, float], ...]

    def fastest(self, precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")) -> tuple[str, bool]:
        """The fastest candidate among ``precisions``; a reduced precision only when
        :data:`MARGIN` faster than the fastest float32 candidate."""
        pool = [r for r in self.rates if r[0] in precisions]
        best = max(pool, key=lambda r: r[2])
        full = [r for r in pool if r[0] == "fp32"]
        if best[0] != "fp32" and full:
            fp32 = max(full, key=lambda r: r[2])
            if best[2] < MARGIN * fp32[2]:
                best = fp32
        return best[0], best[1]

    def rate(self, precision: str, channels_last: bool) -> float | None:
        for p, c, r in self.rates:
            if (p, c) == (precision, channels_last):
                return r
        return None


def calibrate(
    module: nn.Module,
    dims: int,
    in_channels: int,
    divisor: int,
    device: torch.device,
    fold: bool = True,
    min_size: int = 0,
) -> Calibration:
    """The speed of every candidate on ``device`` (cached; measured the first time)."""
    precisions = tuple(p for p in ("fp32", "bf16", "fp16") if _candidate(device, p))
    key = f"speed2:{architecture_key(module, dims)}:{hardware_key(device)}:fold={fold}"
    cached = recall(key)
    if cached is not None:
        rates = tuple((str(p), bool(c), float(r)) for p, c, r in cached.get("rates", ()))
        if {p for p, _, _ in rates} == set(precisions):
            return Calibration(rates)
    calibration = measure(module, dims, in_channels, divisor, device, precisions, fold, min_size)
    remember(key, {"rates": [list(r) for r in calibration.rates]})
    return calibration


def measure(
    module: nn.Module,
    dims: int,
    in_channels: int,
    divisor: int,
    device: torch.device,
    precisions: tuple[str, ...],
    fold: bool = True,
    min_size: int = 0,
) -> Calibration:
    """Time every candidate (not cached)."""
    edge = max(PROBE[dims], min_size)
    probe = torch.randn(
        (1, in_channels) + (edge,) * dims, generator=torch.Generator().manual_seed(0)
    )
    nets = {cl: inference_module(module, device, dims, cl, fold) for cl in (False, True)}
    inputs = {
        False: probe.to(device),
        True: probe.to(device).contiguous(memory_format=memory_format(dims)),
    }
    candidates = [(p, cl) for p in precisions for cl in (False, True)]
    times: dict[tuple[str, bool], list[float]] = {c: [] for c in candidates}
    with torch.inference_mode():
        for round_ in range(ROUNDS + 1):
            for precision, cl in candidates:
                seconds = _timed(nets[cl], inputs[cl], divisor, min_size, device, precision)
                if round_:  # the first round warms up (allocations, kernels, caches)
                    times[(precision, cl)].append(seconds)
    voxels = float(probe.numel() / in_channels)
    base = times[("fp32", False)]
    fastest_base = voxels / min(base)
    rates = tuple(
        (p, cl, round(fastest_base * statistics.median(b / t for b, t in zip(base, ts)), 1))
        for (p, cl), ts in times.items()
    )
    return Calibration(rates)


def architecture_key(module: nn.Module, dims: int) -> str:
    """A digest of the network's structure: its class, and every parameter's and buffer's
    name, shape and dtype (not their values)."""
    digest = hashlib.sha1(type(module).__qualname__.encode())
    digest.update(str(dims).encode())
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
    return digest.hexdigest()[:16]


def hardware_key(device: torch.device) -> str:
    """Where a measurement holds: the device (CPU model and thread count, or the GPU's
    name) and the torch version."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
    elif device.type == "cpu":
        name = f"{_cpu_name()} x{torch.get_num_threads()}"
    else:
        name = device.type
    return f"{device.type}:{name}:torch {torch.__version__}"


def _candidate(device: torch.device, precision: str) -> bool:
    if precision == "fp16":  # bfloat16 keeps float32's range; fp16 only when asked for
        return False
    return runs_natively(device, precision)


def _timed(
    net: nn.Module,
    x: torch.Tensor,
    divisor: int,
    min_size: int,
    device: torch.device,
    precision: str,
) -> float:
    _synchronize(device)
    started = time.perf_counter()
    with autocast(device, precision):
        run_padded(net, x, divisor, min_size).float().sum().item()
    _synchronize(device)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
