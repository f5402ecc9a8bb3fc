"""Batches of tiles through the network: padding, autocast, and surviving out-of-memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import InputDataError
from .memory import array_bytes, budget_bytes
from .model.loaded import LoadedModel
from .model.unet import run_padded, to_probabilities
from .speed.execution import Execution
from .speed.network import inference_module
from .speed.precision import autocast, memory_format

LOGGER = logging.getLogger("napari_bnadapt")
#: Full-resolution feature maps alive at once in a U-Net's forward pass (measured peak of
#: the built-in U-Net, with margin).
ACTIVATION_COPIES = 6


class TileTooLarge(InputDataError):
    """Out of memory with a single tile: only smaller tiles (or another device) can help."""

    def __init__(self, tile: tuple[int, ...], device: torch.device) -> None:
        self.tile = tuple(int(t) for t in tile)
        super().__init__(
            f"out of memory with a single {'×'.join(map(str, self.tile))} tile on {device}: "
            "use smaller tiles (--tile) or the CPU (--device cpu)"
        )


@dataclass
class TileForward:
    """Batches of tiles through the network, surviving out-of-memory.

    When a batch does not fit (CUDA, MPS or host memory), it is split in halves and the
    smaller size is kept for the batches that follow; ``notes`` says so. One tile that
    does not fit is an :class:`InputDataError` that asks for smaller tiles or the CPU.
    """

    module: torch.nn.Module
    divisor: int
    device: torch.device
    precision: str = "fp32"
    min_size: int = 0
    channels_last: bool = False
    limit: int | None = None
    notes: list[str] = field(default_factory=list)
    #: Feature channels at full resolution (the built-in U-Net's base width; a guess for
    #: other networks): what a tile's activations weigh.
    width: int = 64

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        size, start, parts = self._fitting(tiles), 0, []
        while start < len(tiles):
            chunk = tiles[start : start + size]
            try:
                parts.append(self._forward(chunk))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                size = self._smaller(size, tiles.shape[2:])
                continue
            start += len(chunk)
            if not np.isfinite(parts[-1]).all():
                raise InputDataError(
                    "the network's output is not finite: the input's intensities are far "
                    "outside anything it was trained on; check the image's intensity scale"
                )
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _forward(self, tiles: np.ndarray) -> np.ndarray:
        return forward_tiles(
            self.module, tiles, self.divisor, self.device, self.precision, self.min_size,
            self.channels_last,
        )  # fmt: skip

    def _fitting(self, tiles: np.ndarray) -> int:
        """Tiles per pass that the host's memory budget holds (the CPU's: a GPU reports its
        own out-of-memory cleanly); one tile beyond it is :class:`TileTooLarge` before
        anything is allocated, which the caller answers with smaller tiles."""
        size = self.limit or len(tiles)
        if self.device.type != "cpu" or not len(tiles):
            return size
        one = self.tile_bytes(tiles.shape[2:])
        fits = int(budget_bytes() // one) if one > 0 else size
        if fits < 1:
            raise TileTooLarge(tiles.shape[2:], self.device)
        return min(size, fits)

    def tile_bytes(self, tile: tuple[int, ...]) -> float:
        """Estimated peak bytes of one tile's forward pass, once padded to the network's
        divisor and smallest input: a U-Net keeps a few full-resolution feature maps of
        :attr:`width` channels (and smaller ones for its skip connections)."""
        padded = [max(-(-int(n) // self.divisor) * self.divisor, self.min_size) for n in tile]
        return array_bytes(padded, 4) * self.width * ACTIVATION_COPIES

    def _smaller(self, size: int, tile: tuple[int, ...]) -> int:
        release_memory(self.device)
        if size == 1:
            raise TileTooLarge(tile, self.device)
        self.limit = max(1, size // 2)
        note = f"out of memory: {self.limit} tile(s) per pass from now on"
        self.notes.append(note)
        LOGGER.warning(note)
        return self.limit

    @property
    def message(self) -> str:
        """What the progress line says: segmenting, and the last retry if there was one."""
        return f"segmenting ({self.notes[-1]})" if self.notes else "segmenting"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CUDA/MPS report theirs as RuntimeError)."""
    return isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def release_memory(device: torch.device) -> None:
    """Hand cached blocks back after an allocation failure, so a smaller retry can fit."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def forward_tiles(
    module: torch.nn.Module,
    tiles: np.ndarray,
    divisor: int,
    device: torch.device,
    precision: str = "fp32",
    min_size: int = 0,
    channels_last: bool = False,
) -> np.ndarray:
    """Probabilities (sigmoid for one output channel, softmax otherwise) for a batch;
    tiles are padded to the network's divisor (and smallest input) and cropped back.
    ``precision`` ``fp32``, ``bf16`` or ``fp16`` (autocast); ``channels_last`` hands the
    network channels-last input (for a network converted to that memory format)."""
    x = torch.from_numpy(tiles).to(device)
    if channels_last:
        x = x.contiguous(memory_format=memory_format(x.dim() - 2))
    with torch.inference_mode(), autocast(device, precision):
        probs = to_probabilities(run_padded(module, x, divisor, min_size).float())
    return probs.cpu().numpy()


def tile_forward(model: LoadedModel, execution: Execution, device: torch.device) -> TileForward:
    """Batches of tiles through ``model`` as ``execution`` says (a prepared copy of the
    network when BatchNorm is folded or memory is channels-last)."""
    module = inference_module(
        model.module, device, model.dims, execution.channels_last, execution.fold_batchnorm
    )
    return TileForward(
        module, model.divisor, device, execution.precision, model.min_size,
        execution.channels_last, width=model.feature_width,
    )  # fmt: skip
