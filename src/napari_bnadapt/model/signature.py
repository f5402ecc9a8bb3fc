"""What a network from a file does with a tensor, checked once on load.

TorchScript files and packages can hold any program. Before such a network is used, a
small zero input ``(1, C, [Z,] Y, X)`` runs through it once in eval mode: a network whose
``forward`` does not take one such tensor, or does not return one of the same spatial
size, is refused on load with one line, instead of failing at the first prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelFileError, first_line


def probe_output_channels(
    module: nn.Module, dims: int, in_channels: int, size: int, name: str
) -> int:
    """Output channels of ``module`` for a ``size``-wide zero input (see module)."""
    shape = (1, in_channels) + (size,) * dims
    expected = f"forward(x) with x of shape (N, C, {'Z, ' if dims == 3 else ''}Y, X)"
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(shape))
    except Exception as exc:  # the file's program may raise anything
        raise ModelFileError(
            f"{name}: its network does not run on a {tuple(shape)} tensor "
            f"({type(exc).__name__}: {first_line(exc)}): napari-bnadapt needs {expected}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != dims + 2 or out.shape[2:] != shape[2:]:
        found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelFileError(
            f"{name}: its network returns {found} for a {tuple(shape)} input: napari-bnadapt "
            f"needs {expected} returning one tensor (N, classes, same spatial size)"
        )
    return int(out.shape[1])
