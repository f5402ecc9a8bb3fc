"""npe2 writers: labels and images to TIFF, keeping the layer's voxel size.

A lazy layer (a container, or a mask streamed to disk) stays lazy: its labels' maximum is a
streamed reduction and :func:`~napari_bnadapt.io.images.write_tiff` writes it slice by slice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .io.images import write_tiff
from .io.paths import NamedPath, check_outputs_apart, layer_sources
from .io.volumes import STROKES_TARGET
from .replacing import refuse_unnamed


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a labels layer (uint8/uint16 when the labels fit) with its scale."""
    array = _as_array(data)
    top = int(np.asarray(array.max())) if array.size else 0
    dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32
    if array.dtype != dtype:
        array = array.astype(dtype)  # lazy for a dask array
    return [_write(path, array, meta, labels=True)]


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write an image layer (the full-resolution level of a multiscale one) with its scale;
    an RGB layer as a colour TIFF."""
    if meta.get("multiscale"):
        data = data[0]
    return [_write(path, _as_array(data), meta, rgb=bool(meta.get("rgb")))]


def _as_array(data: Any) -> Any:
    """numpy stays numpy; anything lazy (dask, zarr, a memory map's wrapper) becomes dask,
    so reductions and type changes stream instead of loading the layer."""
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        import dask.array as da

        return da.asarray(data)
    return np.asarray(data)


def _write(
    path: str, array: Any, meta: dict[str, Any], rgb: bool = False, labels: bool = False
) -> str:
    target = Path(path)
    if target.suffix.lower() not in (".tif", ".tiff"):
        target = target.with_suffix(".tif")
    check_outputs_apart([NamedPath.of("the file to save", target)], sources_of(meta))
    # The save dialog asked about the name typed, without ".tif".
    refuse_unnamed(path, target)
    scale = meta.get("scale")
    units = meta.get("units")
    unit = str(units[-1]) if units is not None and len(units) else None
    if unit in ("pixel", "None"):
        unit = None
    sizes = tuple(float(s) for s in scale) if scale is not None else None
    # Strokes keep the name of their target: opened again under any file name, they are
    # its strokes (a walkthrough's "my strokes.tif" was a plain labels layer).
    painted_on = (meta.get("metadata") or {}).get(STROKES_TARGET) if labels else None
    write_tiff(target, array, sizes, unit, rgb=rgb, labels=labels, painted_on=painted_on)
    return str(target)


def sources_of(meta: dict[str, Any]) -> list[NamedPath]:
    """Files the open layers were read from, and the one being saved as this plugin's
    reader records it: saving over any of them would destroy data a layer may still be
    reading lazily, or the user's original."""
    sources = []
    recorded = (meta.get("metadata") or {}).get("source_path")
    if recorded:
        sources.append(NamedPath.of(f"file of layer {meta.get('name', '')!r}", recorded))
    from napari import current_viewer  # napari is there whenever napari calls a writer

    viewer = current_viewer()
    return sources + layer_sources(viewer.layers if viewer is not None else ())
