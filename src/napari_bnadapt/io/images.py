"""Reading image sets from disk and writing masks, with clear errors for bad files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from ..errors import InputDataError
from .containers import StoredArray, container_kind
from .files import atomic_output
from .volumes import VOLUME_SUFFIXES, is_volume_path, read_volume

IMAGE_SUFFIXES = (*VOLUME_SUFFIXES, ".png")


@dataclass(frozen=True)
class NamedImage:
    """An image read from disk, with the file name it came from."""

    name: str
    data: np.ndarray
    voxel_size: tuple[float, ...] | None = None
    #: The container array the data was read from (None for files read into memory).
    source: StoredArray | None = None


def read_image(path: str | Path, key: str | None = None) -> Any:
    """Read one TIFF, MRC (2D image, 3D stack or volume) or PNG file, or one array of a
    zarr/OME-Zarr, N5 or HDF5 container (``key``).

    Very large TIFF/MRC files and every container come back lazily (memory map or dask).
    """
    return read_named_image(path, key).data


def read_named_image(path: str | Path, key: str | None = None) -> NamedImage:
    """:func:`read_image` with the file's name and voxel size (nm, from its metadata)."""
    path = Path(path)
    if container_kind(path) is not None:
        volume = read_volume(path, key=key)
        return NamedImage(volume.name, volume.data, volume.voxel_size, volume.source)
    if not path.is_file():
        raise InputDataError(f"image file {str(path)!r} not found: check the path")
    suffix = path.suffix.lower()
    if is_volume_path(path):
        volume = read_volume(path)
        return NamedImage(path.stem, volume.data, volume.voxel_size)
    if suffix != ".png":
        raise InputDataError(
            f"{path.name}: unsupported file type {suffix!r}; use TIFF (.tif/.tiff), MRC or PNG"
        )
    try:
        with Image.open(path) as handle:
            data = np.asarray(handle.convert("L") if handle.mode in ("P", "RGBA") else handle)
    except Image.DecompressionBombError:
        raise InputDataError(
            f"{path.name} declares more than {Image.MAX_IMAGE_PIXELS:,} pixels: refused as a "
            "possible decompression bomb; save a large image as TIFF or zarr instead"
        ) from None
    except Exception as exc:
        raise InputDataError(
            f"{path.name} could not be read as an image ({type(exc).__name__}): the file may "
            "be truncated or corrupt; re-export it"
        ) from None
    if data.size == 0:
        raise InputDataError(
            f"{path.name} holds no pixels: the file may be truncated or corrupt; re-export it"
        )
    return NamedImage(path.stem, data)


def read_image_set(path: str | Path, key: str | None = None) -> list[NamedImage]:
    """A TIFF/PNG file or container array, or every TIFF/PNG 2D image in a folder (sorted
    by name)."""
    path = Path(path)
    if path.is_dir() and container_kind(path) is None:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputDataError(
                f"folder {str(path)!r} has no .tif/.tiff/.png images: check the path"
            )
        return [read_named_image(p) for p in files]
    return [read_named_image(path, key)]


def write_tiff(
    path: str | Path,
    data: np.ndarray,
    scale: tuple[float, ...] | None = None,
    unit: str | None = None,
) -> Path:
    """Write ``data`` as an ImageJ-compatible TIFF atomically.

    ``scale`` is the (z,) y, x voxel size in ``unit`` (e.g. ``'nm'``); ImageJ, Fiji and
    :func:`napari_bnadapt.volume_io.read_volume` read both back.
    """
    path = Path(path)
    data = np.asarray(data)
    imagej = data.dtype in (np.uint8, np.uint16, np.float32) and data.ndim in (2, 3)
    kwargs: dict = {"imagej": imagej} if imagej else {}
    if scale is not None and imagej:
        y, x = scale[-2], scale[-1]
        kwargs["resolution"] = (1.0 / x, 1.0 / y)
        kwargs["metadata"] = {"axes": "ZYX" if data.ndim == 3 else "YX", "unit": unit or "pixel"}
        if data.ndim == 3 and len(scale) == 3:
            kwargs["metadata"]["spacing"] = scale[0]
    elif imagej:
        kwargs["metadata"] = {"axes": "ZYX" if data.ndim == 3 else "YX"}
    with atomic_output(path) as tmp:
        tifffile.imwrite(tmp, data, **kwargs)
    return path
