"""Reading image sets from disk and writing masks, with clear errors for bad files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import tifffile
from PIL import Image

from ..errors import InputDataError, OutputPathError
from .containers import StoredArray, container_kind
from .files import atomic_output
from .paths import NamedPath, check_regular
from .volumes import LABELS_SOFTWARE, STROKES_TARGET, VOLUME_SUFFIXES, is_volume_path, read_volume

IMAGE_SUFFIXES = (*VOLUME_SUFFIXES, ".png")


#: What a mask or probability map is written as (file outputs of predict).
MASK_SUFFIXES = (".tif", ".tiff", ".zarr")


def check_output_suffix(output: NamedPath, written: str | None) -> None:
    """Refuse a name that promises another format than the one ``written`` (``"model"``,
    ``"predict"``'s masks): a model under an image's name, a TIFF mask under .png (both
    happened in a walkthrough, silently)."""
    suffix = output.path.suffix.lower()
    if written == "model" and suffix in IMAGE_SUFFIXES:  # an archive under an image's name
        raise OutputPathError(
            f"{output.label} {str(output.path)!r}: a model is written there, not an image: "
            "give a name ending in .pt (nothing was written)"
        )
    if written == "predict" and suffix and suffix not in MASK_SUFFIXES:
        raise OutputPathError(
            f"{output.label} {str(output.path)!r}: masks are written as TIFF (.tif) or "
            "OME-Zarr (.zarr): give one of those names (nothing was written)"
        )


@dataclass(frozen=True)
class NamedImage:
    """An image read from disk, with the file name it came from."""

    name: str
    data: np.ndarray
    voxel_size: tuple[float, ...] | None = None
    #: The container array the data was read from (None for files read into memory).
    source: StoredArray | None = None


def read_image(path: str | Path, key: str | None = None, missing_chunks: str = "error") -> Any:
    """Read one TIFF, MRC (2D image, 3D stack or volume) or PNG file, or one array of a
    zarr/OME-Zarr, N5 or HDF5 container (``key``).

    Very large TIFF/MRC files and every container come back lazily (memory map or dask).
    """
    return read_named_image(path, key, missing_chunks).data


def read_named_image(
    path: str | Path, key: str | None = None, missing_chunks: str = "error"
) -> NamedImage:
    """:func:`read_image` with the file's name and voxel size (nm, from its metadata)."""
    path = Path(path)
    check_regular(path)
    if container_kind(path) is not None:
        volume = read_volume(path, key=key, missing_chunks=missing_chunks)
        return NamedImage(volume.name, volume.data, volume.voxel_size, volume.source)
    if not path.is_file():
        raise InputDataError(f"image file {str(path)!r} not found: check the path")
    suffix = path.suffix.lower()
    if is_volume_path(path):
        volume = read_volume(path)
        data = to_grey(volume.data) if volume.rgb else volume.data
        return NamedImage(path.stem, data, volume.voxel_size)
    if suffix != ".png":
        raise InputDataError(
            f"{path.name}: unsupported file type {suffix!r}; use TIFF (.tif/.tiff), MRC or PNG"
        )
    try:
        with Image.open(path) as handle:
            data = np.asarray(handle.convert("L") if handle.mode in ("P", "LA", "PA") else handle)
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
    return NamedImage(path.stem, to_grey(data) if data.ndim == 3 else data)


def to_grey(data: Any) -> Any:
    """An image with colour samples last (RGB or RGBA, as screenshots and some EM software
    save grey images) → one grey channel.

    Grey pixels stored as colour (R = G = B) come back exactly, in their own type; real
    colour becomes the mean of R, G and B (float32). A lazy (dask) image stays lazy.
    """
    if data.ndim < 3 or data.shape[-1] not in (3, 4):
        return data
    colours = data[..., :3]
    if isinstance(data, np.ndarray) and all(
        np.array_equal(colours[..., 0], colours[..., c]) for c in (1, 2)
    ):
        return colours[..., 0]
    return colours.mean(axis=-1, dtype=np.float32)


def is_image_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder of images (not a zarr or N5 container)."""
    return Path(path).is_dir() and container_kind(path) is None


def read_image_set(
    path: str | Path, key: str | None = None, missing_chunks: str = "error"
) -> list[NamedImage]:
    """A TIFF/PNG file or container array, or every TIFF/PNG 2D image in a folder (sorted
    by name)."""
    path = Path(path)
    if is_image_folder(path):
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputDataError(
                f"folder {str(path)!r} has no .tif/.tiff/.png images: check the path"
            )
        return [read_named_image(p) for p in files]
    return [read_named_image(path, key, missing_chunks)]


#: Lazy arrays (dask, zarr) larger than this are written slice by slice, never whole in RAM.
WRITE_PAGEWISE_ABOVE = 1 << 30


def write_tiff(
    path: str | Path,
    data: Any,
    scale: tuple[float, ...] | None = None,
    unit: str | None = None,
    rgb: bool = False,
    pagewise_above: int | None = None,
    labels: bool = False,
    software: str | None = None,
    painted_on: str | None = None,
) -> Path:
    """Write ``data`` as a TIFF atomically, keeping its voxel size.

    ``scale`` is the (z,) y, x voxel size in ``unit`` (e.g. ``'nm'``). uint8, uint16 and
    float32 images of 2 or 3 dimensions are written as ImageJ TIFF; other types (int16 EM,
    uint32 labels, float64, ...) as OME-TIFF, which can hold them; Fiji and
    :func:`napari_bnadapt.io.read_volume` read the voxel size back from both. Arrays of more
    than 3 dimensions keep their shape but no voxel size (their leading axes have no known
    meaning). Slices are always pages: 3 or 4 of them are never stored as the colour planes
    of one RGB image. ``rgb`` data (a last axis of 3 or 4 colour samples, as in napari's RGB
    layers) is written as an OME-TIFF colour image. A lazy volume (dask, zarr) larger than
    ``pagewise_above`` bytes (default :data:`WRITE_PAGEWISE_ABOVE`) is read and written one
    slice at a time, as an OME BigTIFF. ``labels`` marks the file as a label image (its
    TIFF Software tag, :data:`LABELS_SOFTWARE`), so that napari opens it again as a labels
    layer (painted strokes, masks) rather than as an image; ``software`` sets that tag
    instead (:data:`~.volumes.PREDICTED_MASK`: a mask that a new prediction may replace).
    ``painted_on``: strokes' target, kept in an ImageJ file's description
    (:data:`~.volumes.STROKES_TARGET`).
    """
    software = software or (LABELS_SOFTWARE if labels else None)
    path = Path(path)
    limit = WRITE_PAGEWISE_ABOVE if pagewise_above is None else pagewise_above
    lazy = not isinstance(data, np.ndarray) and hasattr(data, "dtype")
    if lazy and not rgb and len(data.shape) == 3 and _nbytes(data) > limit:
        return _write_pages(path, data, scale, unit, software)
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if rgb:
        return _write_rgb(path, data, scale, unit)
    axes = "ZYX"[-data.ndim :] if data.ndim in (2, 3) else None
    # ImageJ reads images one pixel wide back without their last axis: OME keeps it.
    imagej = data.dtype in (np.uint8, np.uint16, np.float32) and axes is not None
    imagej = imagej and data.shape[-1] > 1
    kwargs: dict = {"photometric": "minisblack", "software": software}
    if imagej:
        kwargs["imagej"] = True
        kwargs["metadata"] = {"axes": axes}
        if painted_on:
            kwargs["metadata"][STROKES_TARGET] = quote(painted_on)
        if scale is not None:
            kwargs["resolution"] = (1.0 / scale[-1], 1.0 / scale[-2])
            kwargs["metadata"]["unit"] = unit or "pixel"
            if data.ndim == 3 and len(scale) == 3:
                kwargs["metadata"]["spacing"] = scale[0]
    elif axes is not None:
        kwargs["ome"] = True
        kwargs["metadata"] = _ome_metadata(axes, scale, unit)
    with atomic_output(path) as tmp:
        tifffile.imwrite(tmp, data, **kwargs)
    return path


def _nbytes(data: Any) -> int:
    return int(np.prod(data.shape, dtype=np.int64)) * np.dtype(data.dtype).itemsize


def _write_pages(
    path: Path,
    data: Any,
    scale: tuple[float, ...] | None,
    unit: str | None,
    software: str | None = None,
) -> Path:
    """A lazy 3D volume, one slice in memory at a time (BigTIFF: it may pass 4 GiB)."""
    dtype = np.dtype(np.uint8) if data.dtype == bool else np.dtype(data.dtype)

    def pages() -> Any:
        for index in range(data.shape[0]):
            yield np.asarray(data[index]).astype(dtype, copy=False)

    metadata = _ome_metadata("ZYX", scale, unit)
    with atomic_output(path) as tmp:
        tifffile.imwrite(
            tmp, pages(), shape=tuple(data.shape), dtype=dtype, bigtiff=True, ome=True,
            photometric="minisblack", metadata=metadata, software=software,
        )  # fmt: skip
    return path


def _write_rgb(
    path: Path, data: np.ndarray, scale: tuple[float, ...] | None, unit: str | None
) -> Path:
    spatial = data.ndim - 1
    if spatial not in (2, 3) or data.shape[-1] not in (3, 4):
        raise InputDataError(
            f"an RGB image needs 2 or 3 spatial axes and 3 or 4 colour samples last, got shape "
            f"{data.shape}: save it as a grey-value image instead"
        )
    axes = "ZYX"[-spatial:]
    metadata = _ome_metadata(axes, scale, unit) | {"axes": axes + "S"}
    with atomic_output(path) as tmp:
        tifffile.imwrite(tmp, data, photometric="rgb", ome=True, metadata=metadata)
    return path


def _ome_metadata(axes: str, scale: tuple[float, ...] | None, unit: str | None) -> dict:
    """OME-TIFF metadata: the axes and, in ``unit``, the physical size of each spatial one."""
    metadata: dict = {"axes": axes}
    if scale is not None:
        for axis, size in zip(axes[::-1], scale[::-1], strict=False):
            metadata[f"PhysicalSize{axis}"] = float(size)
            # Without a unit OME would read micrometres; "pixel" is what ImageJ files say.
            metadata[f"PhysicalSize{axis}Unit"] = unit or "pixel"
    return metadata
