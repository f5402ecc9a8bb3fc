"""Networks built only once their size is known to fit.

A model file names an architecture by a few numbers (``base_channels: 1024, depth: 40``,
a MONAI channel list): building it is the allocation. The network is first built on
PyTorch's ``meta`` device, which gives every tensor its shape and no memory, so its
parameters can be counted and weighed against the memory budget before anything real is
allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import TypeVar

import torch
from torch import nn

from ..errors import BnAdaptError, ModelFileError, first_line
from ..memory import check_memory

Module = TypeVar("Module", bound=nn.Module)
#: Copies of the weights a session holds: the network, the state read from the file, and
#: the copy an adaptation works on.
COPIES = 3


def network_bytes(build: Callable[[], nn.Module]) -> int | None:
    """Bytes of the parameters and buffers ``build`` makes, measured on the meta device;
    None when the class cannot be built there (it then is built for real, unmeasured)."""
    try:
        with torch.device("meta"):
            probe = build()
    except BnAdaptError:
        raise
    except Exception:  # a class that computes with real tensors in __init__
        return None
    tensors = chain(probe.parameters(), probe.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def build_within_budget(build: Callable[[], Module], what: str) -> Module:
    """``build()``, after checking that :data:`COPIES` of the network fit in memory; any
    error of the class's own constructor becomes one line."""
    size = network_bytes(build)
    if size is not None:
        check_memory(
            COPIES * size,
            f"{what} ({size / 4:,.0f} parameters)",
            "the model file or --architecture-args claim a network far larger than a "
            "segmentation U-Net: check them (the file may be damaged or edited)",
        )
    try:
        return build()
    except BnAdaptError:
        raise
    except Exception as exc:  # each library raises its own kinds on bad arguments
        raise ModelFileError(
            f"{what} could not be built ({type(exc).__name__}: {first_line(exc)}): check "
            "the architecture's arguments"
        ) from None
