"""npe2 reader: EM volumes dragged into napari (TIFF/BigTIFF/OME/ImageJ, MRC/REC).

A thin adapter over :func:`napari_bnadapt.volume_io.read_volume`: the voxel size becomes the
layer's ``scale`` and ``units``; large files open lazily. A file this reader claims but
cannot read gives one clear notification instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import InputDataError
from .io.volumes import LAZY_ABOVE, is_volume_path, read_volume

LayerData = tuple


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader function for ``path``, or None when this plugin cannot read it."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not is_volume_path(path) or not Path(path).is_file():
        return None
    return read_layers


def read_layers(path: str | list[str], lazy_above: int = LAZY_ABOVE) -> list[LayerData]:
    """Layer data for one file; ``[(None,)]`` (npe2's "nothing to add") after an error."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        volume = read_volume(path, lazy_above)
    except InputDataError as exc:
        # napari is there whenever napari calls the reader; the module stays Qt-free.
        from napari.utils.notifications import show_error

        show_error(f"napari-bnadapt could not open the file: {exc}")
        return [(None,)]
    meta: dict[str, Any] = {"name": volume.name, "rgb": volume.rgb}
    if volume.scale is not None:
        meta["scale"] = volume.scale
        meta["units"] = volume.units
    meta["metadata"] = {"source_path": str(path), "lazy": volume.lazy}
    return [(volume.data, meta, "image")]
