"""npe2 reader: EM volumes dragged into napari (TIFF/BigTIFF/OME/ImageJ, MRC/REC, and
zarr/OME-Zarr, N5 and HDF5 containers).

A thin adapter over :func:`napari_bnadapt.io.volumes.read_volume`: the voxel size becomes
the layer's ``scale`` and ``units``; large files and every container open lazily (an
OME-Zarr image as a multiscale layer); a container with several arrays opens each as its
own layer. A file this reader claims but cannot read gives one clear notification
instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InputDataError
from .io.containers import container_kind, list_arrays
from .io.volumes import (
    LAZY_ABOVE,
    STROKES_TARGET,
    Volume,
    is_volume_path,
    read_volume,
    voxel_size_nm,
)

LayerData = tuple
#: A container with more arrays than this opens only its first ones (each is a layer).
MAX_LAYERS = 16


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader function for ``path``, or None when this plugin cannot read it."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    # Containers may be folders (zarr, N5); every other volume is a file.
    exists = Path(path).exists() if container_kind(path) else Path(path).is_file()
    return read_layers if is_volume_path(path) and exists else None


def read_layers(path: str | list[str], lazy_above: int = LAZY_ABOVE) -> list[LayerData]:
    """Layer data for one file; ``[(None,)]`` (npe2's "nothing to add") after an error."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        volumes = _read_all(str(path), lazy_above)
    except InputDataError as exc:
        # napari is there whenever napari calls the reader; the module stays Qt-free.
        from napari.utils.notifications import show_error

        # The reason first: a toast shows the start of its line only.
        show_error(f"{exc} (napari-bnadapt could not open it)")
        return [(None,)]
    return [_layer(volume, str(path)) for volume in volumes]


def _read_all(path: str, lazy_above: int) -> list[Volume]:
    """The one volume of a file, or every array of a container that has several."""
    if container_kind(path) is None:
        return [read_volume(path, lazy_above)]
    try:
        return [read_volume(path)]
    except InputDataError as ambiguous:
        keys = list_arrays(path)
        if len(keys) < 2:
            raise
        volumes = [read_volume(path, key=key) for key in keys[:MAX_LAYERS]]
        if not volumes:
            raise ambiguous from None
        return volumes


def _in_nm(scale: tuple, units: tuple | None) -> tuple[tuple, tuple | None]:
    """Physical voxel sizes in nm, as the sample volumes and the masks have them: layers in
    µm beside layers in nm would be drawn at sizes 1000× apart (napari does not convert
    units across layers, it warns and ignores them)."""
    nm = voxel_size_nm(scale, units)
    if nm is None or len(nm) != len(scale):
        return scale, units
    return nm, ("nm",) * len(nm)


def _axis_labels(volume: Volume) -> tuple[str, ...] | None:
    """``z, y, x`` (``y, x``) for a stack (an image) whose axes are all spatial, so napari's
    slider reads "z" instead of "-3"; None for other axes (channels, time)."""
    ndim = len(volume.data.shape) - (1 if volume.rgb else 0)
    units = [str(u) for u in volume.units] if volume.units is not None else []
    if ndim not in (2, 3) or "pixel" in units:
        return None
    return ("z", "y", "x")[-ndim:]


def _layer(volume: Volume, path: str) -> LayerData:
    meta: dict[str, Any] = {"name": volume.name, "rgb": volume.rgb}
    if volume.scale is not None:
        meta["scale"], meta["units"] = _in_nm(volume.scale, volume.units)
    labels = _axis_labels(volume)
    if labels is not None:
        meta["axis_labels"] = labels
    meta["metadata"] = {"source_path": path, "lazy": volume.lazy}
    if volume.source is not None:
        meta["metadata"]["source_key"] = volume.source.key
    levels = volume.levels or []
    if len(levels) > 1:
        meta["multiscale"] = True
        return (levels, meta, "image")
    if volume.labels:  # strokes or a mask saved from a labels layer: a labels layer again
        del meta["rgb"]
        if volume.painted_on:
            meta["metadata"][STROKES_TARGET] = volume.painted_on
        return (volume.data, meta, "labels")
    return (volume.data, meta, "image")
