"""Numerical precision of forward passes: float32, or bfloat16/float16 autocast."""

from __future__ import annotations

import contextlib

import torch

from ..predict_config import PRECISIONS as PRECISIONS  # re-exported

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on ``device`` (nothing for ``fp32``)."""
    if precision not in DTYPES:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def runs_natively(device: torch.device, precision: str) -> bool:
    """Whether ``device`` computes ``precision`` in hardware (so that it can be faster
    than float32): bfloat16 on CPUs with AVX-512-BF16 or AMX and on CUDA GPUs that support
    it, float16 on CUDA GPUs. Emulated reduced precision is slower: never chosen by itself.
    """
    if precision == "fp32":
        return True
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported()
    if device.type == "cpu" and precision == "bf16":
        return _cpu_has("_is_avx512_bf16_supported") or _cpu_has("_is_amx_tile_supported")
    return False


def usable(device: torch.device, precision: str) -> str:
    """``precision`` as it runs on ``device``: float16 on a CPU or on Apple's MPS runs in
    float32 (as ``--amp`` always did there), everything else as asked."""
    if precision == "fp16" and device.type != "cuda":
        return "fp32"
    if precision == "bf16" and device.type == "mps":
        return "fp32"
    return precision


def memory_format(dims: int) -> torch.memory_format:
    """The channels-last memory format of ``dims``-D convolutions."""
    return torch.channels_last if dims == 2 else torch.channels_last_3d


def _cpu_has(name: str) -> bool:
    check = getattr(torch.cpu, name, None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False
