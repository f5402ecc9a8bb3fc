"""Segmenting a lazy layer (a container, a file over 2 GiB): block by block into an
OME-Zarr store on disk, shown lazily from there, so that the mask never sits in RAM."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..blockwise.stream import predict_to_zarr_steps
from ..inference import PredictConfig
from ..io.volumes import read_volume
from ..jobs import Steps
from ..model.loaded import LoadedModel
from .help import NEXT_STEP
from .layers import (
    MaskOrigin,
    hide_older_masks,
    layer_data,
    mask_colours,
    mask_state,
    mask_to_compare,
    result_layer,
)
from .readings import still_in_use


def lazy_job(
    model: LoadedModel, layer: Any, config: PredictConfig, voxel_size: Any
) -> tuple[Callable[[], Steps], str | None]:
    """The job that writes ``layer``'s mask to a new store, and what to say of its scale."""
    data = layer_data(layer)
    # resampled block by block to the model's voxel size, or run at its own pixel size
    note = model.scale_note(layer.name, tuple(data.shape), voxel_size, config.slice_axis)
    folder = Path(tempfile.mkdtemp(prefix="bnadapt-"))
    # Removed when napari quits, as the message says (a walkthrough found 142 left in /tmp):
    # File ▸ Save Selected Layers keeps a mask.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    out = folder / f"{_file_name(layer.name)}-mask.zarr"
    unit = "nm" if voxel_size else None

    def job() -> Steps:
        return predict_to_zarr_steps(
            model, data, out, config, scale=voxel_size, unit=unit,
            name=f"{layer.name} mask", voxel_size=voxel_size,
        )  # fmt: skip

    return job, note


def add_lazy_mask(viewer: Any, result: Any, layer: Any, model: LoadedModel) -> tuple[Any, str]:
    """Show the written store as ``<layer> mask [<state>]``, the only mask of its image in
    view (Compare masks finds it as the others); the layer, and what happened in a
    sentence."""
    state = mask_state(model)
    origin = MaskOrigin(None, state, layer.name, model.name)
    mask = result_layer(
        viewer, f"{layer.name} mask [{state}]", read_volume(result.out).data, layer,
        metadata={"source_path": str(result.out), "lazy": True, MaskOrigin.KEY: origin},
        **mask_colours(state),
    )  # fmt: skip
    hide_older_masks(viewer, layer.name, mask)
    said = (
        f"{layer.name}: mask written block by block to a temporary store, {result.out}, "
        "shown from there."
    )
    return mask, said


def show_lazy_mask(
    widget: Any, result: Any, layer: Any, model: LoadedModel, note: str | None, pending: str | None
) -> None:
    """*Segment and adapt*'s end of a block-by-block segmentation: the mask shown and
    selected, what was done before (``pending``: an adaptation) said with it, and after an
    adaptation the masks before and after offered to Compare masks."""
    if not still_in_use(widget, model):
        return
    mask, text = add_lazy_mask(widget.viewer, result, layer, model)
    said = "\n".join(p for p in (pending, " ".join(p for p in (note, text) if p)) if p)
    widget.viewer.layers.selection.active = mask
    before = mask_to_compare(widget.viewer, layer.name, mask_state(model), False)
    if before is None or before.name == mask.name:
        widget.feedback.say("info", said, NEXT_STEP["segmented lazily"])
        return
    widget.feedback.say("info", said, NEXT_STEP["adapted"])
    widget.session.masks_ready.emit(before, mask)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "layer"
