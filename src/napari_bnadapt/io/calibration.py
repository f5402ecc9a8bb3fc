"""Voxel sizes from container metadata, as napari ``scale`` and ``units`` per axis.

Read, in this order: OME-NGFF coordinate transformations (OME-Zarr), then the attribute
conventions that tools write into plain zarr, N5 and HDF5 arrays:

``resolution`` (+ ``units``/``unit``)
    CREMI, z5py, elf (z, y, x in nm); N5 lists it x, y, z (BigDataViewer, n5-viewer).
``pixelResolution``
    n5-viewer: ``{"dimensions": [x, y, z], "unit": "um"}``.
``element_size_um``
    ilastik and Fiji's HDF5 plugin: z, y, x in µm.

Axes without a size (channels, time) get scale 1 and unit ``pixel``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Calibration = tuple[tuple[float, ...] | None, tuple[str, ...] | None]

_UNIT_NAMES = {
    "nanometer": "nm", "nm": "nm", "micrometer": "µm", "micron": "µm", "um": "µm", "µm": "µm",
    "millimeter": "mm", "mm": "mm", "angstrom": "Å", "Å": "Å",
}  # fmt: skip


def ome_voxel_size(metadata: dict[str, Any], ndim: int) -> Calibration:
    """Scale and units of level 0 of an OME-Zarr multiscale image (ome-zarr-py metadata)."""
    transforms = metadata.get("coordinateTransformations") or []
    first = transforms[0] if transforms else []
    scale = next((t.get("scale") for t in first if t.get("type") == "scale"), None)
    axes = metadata.get("axes") or []
    if scale is None or len(scale) != ndim:
        return None, None
    units = []
    for index in range(ndim):
        axis = axes[index] if index < len(axes) and isinstance(axes[index], dict) else {}
        # A space axis without a unit has no known size: it stays in pixels.
        units.append(_unit(axis.get("unit")) if axis.get("type") == "space" else None)
    units = [u or "pixel" for u in units]
    try:
        values = tuple(float(s) if u != "pixel" else 1.0 for s, u in zip(scale, units))
    except (TypeError, ValueError):
        return None, None
    if all(u == "pixel" for u in units) or not all(math.isfinite(v) and v > 0 for v in values):
        return None, None
    return values, tuple(units)


def attribute_voxel_size(attributes: dict[str, Any], ndim: int, kind: str) -> Calibration:
    """Scale and units from the common ``resolution`` attribute conventions (see module)."""
    unit = attributes.get("units", attributes.get("unit")) or "nm"
    if "pixelResolution" in attributes and isinstance(attributes["pixelResolution"], dict):
        block = attributes["pixelResolution"]
        return _per_axis(block.get("dimensions"), _unit(block.get("unit")) or "nm", ndim, True)
    if "resolution" in attributes:
        return _per_axis(attributes["resolution"], unit, ndim, kind == "n5")
    if "element_size_um" in attributes:
        return _per_axis(attributes["element_size_um"], "µm", ndim, False)
    return None, None


def _per_axis(values: Any, unit: str | Sequence[str], ndim: int, reverse: bool) -> Calibration:
    if values is None or isinstance(values, (str, bytes)):
        return None, None
    try:
        sizes = [float(v) for v in values]
    except (TypeError, ValueError):
        return None, None
    if isinstance(unit, str):
        units = [_unit(unit) or "nm"] * len(sizes)
    elif isinstance(unit, (list, tuple)) and len(unit) == len(sizes):
        units = [_unit(u) or "nm" for u in unit]
    else:
        units = ["nm"] * len(sizes)
    if reverse:
        sizes, units = sizes[::-1], units[::-1]
    # Zero, negative, NaN or overflowing sizes are no calibration: the data stays in pixels.
    if not sizes or not all(math.isfinite(s) and s > 0 for s in sizes):
        return None, None
    sizes, units = sizes[-ndim:], units[-ndim:]
    lead = ndim - len(sizes)
    return (1.0,) * lead + tuple(sizes), ("pixel",) * lead + tuple(units)


def _unit(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return None
    if not value:
        return None
    return _UNIT_NAMES.get(str(value).strip(), str(value).strip())
