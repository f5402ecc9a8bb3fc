"""Sending a model to another process (a dask worker) whatever its kind.

A plain ``nn.Module`` pickles; a TorchScript module does not, so it travels as the bytes of
``torch.jit.save`` and is loaded again on arrival.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import torch

from .loaded import LoadedModel


class Parcel:
    """A :class:`LoadedModel` or a bare module that pickles, TorchScript included."""

    def __init__(self, model: LoadedModel | torch.nn.Module) -> None:
        self.model = model

    @property
    def module(self) -> torch.nn.Module:
        return self.model.module if isinstance(self.model, LoadedModel) else self.model

    def __getstate__(self) -> dict[str, Any]:
        if not isinstance(self.module, torch.jit.ScriptModule):
            return {"model": self.model, "script": None}
        buffer = io.BytesIO()
        torch.jit.save(self.module, buffer)
        bare = replace(self.model, module=None) if isinstance(self.model, LoadedModel) else None
        return {"model": bare, "script": buffer.getvalue()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = state["model"]
        if state["script"] is not None:
            module = torch.jit.load(io.BytesIO(state["script"]), map_location="cpu")
            model = module if model is None else replace(model, module=module)
        self.model = model
