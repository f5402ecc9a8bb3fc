"""Package attributes imported on first use (PEP 562), so that importing a package (or a
light module inside it, such as a configuration) does not import torch: ``bnadapt --help``
answers before the network libraries load."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, origins: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` whose public names are
    ``origins`` (name → the submodule defining it, relative, e.g. ``".config"``)."""

    def __getattr__(name: str) -> Any:
        origin = origins.get(name)
        if origin is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(origin, package), name)

    def __dir__() -> list[str]:
        return sorted(origins)

    return __getattr__, __dir__, sorted(origins)
