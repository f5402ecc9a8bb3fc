"""Choosing the torch device: CUDA, then MPS, then CPU."""

from __future__ import annotations

import torch

from .errors import BnAdaptError


def available_devices() -> list[str]:
    """Devices that exist on this machine, best first (``cuda:0`` …, ``mps``, ``cpu``)."""
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:1'`` or ``'mps'`` into a device.

    ``'auto'`` (or None) picks CUDA, then MPS, then CPU. Asking for a device that does not
    exist raises :class:`BnAdaptError` naming the devices that do.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    try:
        resolved = torch.device(name)
    except RuntimeError as exc:
        raise BnAdaptError(
            f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count()
        index = resolved.index or 0
        if index >= count:
            raise BnAdaptError(
                f"device {device!r} is not available on this machine; "
                f"available: {', '.join(available_devices())} (or use auto)"
            )
    elif resolved.type == "mps" and not _mps_available():
        raise BnAdaptError(
            f"device 'mps' is not available on this machine; "
            f"available: {', '.join(available_devices())} (or use auto)"
        )
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise BnAdaptError(f"unsupported device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    return resolved


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
