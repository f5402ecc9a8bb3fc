"""Reading EM volumes with their voxel size: TIFF (BigTIFF, OME, ImageJ), MRC/REC, and the
chunked containers of :mod:`.containers` (OME-Zarr, zarr, N5, HDF5).

Files larger than a threshold open lazily (a memory map, or dask over the TIFF pages);
containers always open lazily (dask over their chunks), so a volume bigger than RAM can
still be viewed and processed block by block.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import mrcfile
import numpy as np
import tifffile

from ..errors import InputDataError, first_line
from ..units import is_sane_voxel_size
from .containers import (
    CONTAINER_SUFFIXES,
    LABEL_NAME,
    StoredArray,
    container_kind,
    open_container,
)
from .paths import check_regular

#: The TIFF Software tag of label images written here (strokes, masks): read back as labels.
LABELS_SOFTWARE = "napari-bnadapt labels"
#: Ends the Software tag of what ``bnadapt predict`` writes: files that a new prediction may
#: replace (any other existing file may be a user's image, labels or a mask corrected by hand).
PREDICTED = "(bnadapt predict)"
#: The Software tags of ``bnadapt predict``'s masks (opened as labels) and probability maps.
PREDICTED_MASK = f"{LABELS_SOFTWARE} {PREDICTED}"
PREDICTED_PROBABILITIES = f"napari-bnadapt probabilities {PREDICTED}"
#: The key of the target's name in a strokes TIFF (its ImageJ description, URL-quoted: the
#: description is ASCII) and in the strokes layer's metadata: saved strokes opened again are
#: the target's strokes whatever the file is called.
STROKES_TARGET = "bnadapt_target"

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".tf2")
MRC_SUFFIXES = (".mrc", ".rec", ".st", ".ali", ".map", ".mrcs")
VOLUME_SUFFIXES = TIFF_SUFFIXES + MRC_SUFFIXES + CONTAINER_SUFFIXES
#: Files above this size open lazily by default (bytes).
LAZY_ABOVE = 2 * 1024**3
#: A compressed TIFF page is read whole; larger ones are refused rather than exhaust memory.
MAX_PAGE_BYTES = 4 * 1024**3
_UNIT_TO_NM = {
    "nm": 1.0, "nanometer": 1.0, "µm": 1e3, "um": 1e3, "micrometer": 1e3, "micron": 1e3,
    "mm": 1e6, "millimeter": 1e6, "Å": 0.1, "A": 0.1, "angstrom": 0.1,
}  # fmt: skip


@dataclass
class Volume:
    """Pixels and physical calibration of one file (``scale`` per axis of ``data``).

    ``levels`` holds every resolution level of a multiscale image (level 0 first) and
    ``source`` the address of a container array, which other processes can open.
    """

    data: Any
    name: str
    scale: tuple[float, ...] | None = None
    units: tuple[str, ...] | None = None
    lazy: bool = False
    rgb: bool = False
    levels: list[Any] | None = None
    source: StoredArray | None = None
    #: A label image: written as one by this package (painted strokes, a mask), or
    #: integer pixels of a few values (:func:`looks_like_labels`).
    labels: bool = False
    #: Strokes: the name of the image they were painted on (:data:`STROKES_TARGET`).
    painted_on: str | None = None

    @property
    def voxel_size(self) -> tuple[float, ...] | None:
        """The spatial voxel size in nm (the axes that have a physical unit), else None."""
        return voxel_size_nm(self.scale, self.units)


def voxel_size_nm(
    scale: tuple[float, ...] | None, units: tuple[str, ...] | None
) -> tuple[float, ...] | None:
    """Physical axes of a (scale, units) pair, converted to nm; None when none is physical."""
    if scale is None or units is None:
        return None
    sizes = [
        float(s) * _UNIT_TO_NM[_clean_unit(str(u))]
        for s, u in zip(scale, units)
        if _clean_unit(str(u)) in _UNIT_TO_NM
    ]
    return tuple(sizes) if is_sane_voxel_size(sizes) else None


def is_volume_path(path: str | Path) -> bool:
    return str(path).rstrip("/\\").lower().endswith(VOLUME_SUFFIXES)


def read_volume(
    path: str | Path,
    lazy_above: int = LAZY_ABOVE,
    key: str | None = None,
    missing_chunks: str = "error",
) -> Volume:
    """Read ``path`` (``key``: the array in a container; ``missing_chunks``: what reading a
    chunk it does not store does, see :data:`~.containers.MISSING_CHUNKS`); raise
    :class:`InputDataError` with a clear message if it cannot be read."""
    path = Path(path)
    check_regular(path)
    if container_kind(path) is not None:
        return _read_container(path, key, missing_chunks)
    if not path.is_file():
        raise InputDataError(f"{str(path)!r} not found: check the path")
    if not is_volume_path(path):
        raise InputDataError(
            f"{path.name}: unsupported type; use TIFF ({', '.join(TIFF_SUFFIXES)}), MRC "
            f"({', '.join(MRC_SUFFIXES)}), zarr/OME-Zarr, N5 or HDF5"
        )
    try:
        with tifffile_complaints() as complaints:
            # By the size the pixels will take, not the file's: a small compressed file can
            # declare a huge image (a decompression bomb), which is then only read lazily.
            lazy = max(path.stat().st_size, _declared_bytes(path)) > lazy_above
            if path.suffix.lower() in MRC_SUFFIXES:
                return _read_mrc(path, lazy)
            volume = _read_tiff(path, lazy)
        if complaints:
            # tifffile reads what it can of a cut file (the first slice of a stack, say)
            # and only logs the rest: a wrong volume, silently, unless refused here.
            raise InputDataError(
                f"{path.name} is damaged or truncated (tifffile: {complaints[0]}): copy or "
                "export it again"
            )
        return volume
    except InputDataError:
        raise
    except Exception as exc:
        raise InputDataError(
            f"{path.name} could not be read ({type(exc).__name__}: {first_line(exc)}): the file may be "
            "truncated or corrupt; re-export it"
        ) from None


@contextlib.contextmanager
def tifffile_complaints() -> Iterator[list[str]]:
    """The errors tifffile logs while the block runs (a broken page chain, a series that
    does not fit its metadata), collected as one line each."""
    found: list[str] = []
    reader = threading.get_ident()  # another thread's read (a worker's) is not this one's

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == reader:
                found.append(re.sub(r"^<[^>]*>\s*", "", first_line(record.getMessage())))

    handler = Collect(level=logging.ERROR)
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield found
    finally:
        logger.removeHandler(handler)


def _declared_bytes(path: Path) -> int:
    """How many bytes the pixels of a TIFF or MRC file take once read (its header's claim)."""
    if path.suffix.lower() in MRC_SUFFIXES:
        with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
            header = mrc.header
            return int(header.nx) * int(header.ny) * int(header.nz) * 4
    with tifffile.TiffFile(path) as tif:
        return int(tif.series[0].nbytes) if tif.series else 0


def _read_container(path: Path, key: str | None, missing_chunks: str) -> Volume:
    container = open_container(path, key, missing_chunks)
    levels = [level.to_dask() for level in container.levels]
    labels = bool(LABEL_NAME.search(container.name)) and looks_like_labels(_middle(levels[0]))
    return Volume(
        levels[0], container.name, container.scale, container.units, lazy=True,
        levels=levels, source=container.array, labels=labels,
    )  # fmt: skip


def _middle(data: Any, side: int = 512) -> np.ndarray:
    """A window of the middle slice of a lazy array, read (a sample of its values)."""
    index = (*(n // 2 for n in data.shape[:-2]), slice(0, side), slice(0, side))
    return np.asarray(data[index])


def _read_tiff(path: Path, lazy: bool) -> Volume:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        sizes = _tiff_voxel_size(tif)
        labels = str(tif.pages[0].software or "").startswith(LABELS_SOFTWARE)
        painted_on = (tif.imagej_metadata or {}).get(STROKES_TARGET) if tif.is_imagej else None
        if not lazy:
            data = series.asarray()
    if lazy:
        data = _lazy_tiff(path)
    _check_pixels(data, path)
    rgb = axes.endswith("S") and data.shape[-1] in (3, 4)
    spatial_axes = axes[:-1] if rgb else axes
    scale, units = _scale_for_axes(spatial_axes, sizes)
    labels = labels or (not lazy and not rgb and looks_like_labels(data))
    painted_on = unquote(str(painted_on)) if painted_on else None
    return Volume(data, path.stem, scale, units, lazy, rgb, labels=labels, painted_on=painted_on)


#: An integer image with at most this many distinct values is an annotation.
LABEL_VALUES = 16


def looks_like_labels(data: np.ndarray) -> bool:
    """Whether integer pixels take at most :data:`LABEL_VALUES` values (0/1 membranes, 0/1/2
    strokes, a few classes): an annotation, never an EM image, whose grey levels span a
    range. Opened as an image, a ground truth became the image to segment and the target."""
    if data.dtype.kind not in "biu" or data.size == 0:
        return False
    sample = data.reshape(-1)[:: max(1, data.size // 1_000_000)]
    if np.unique(sample).size > LABEL_VALUES:
        return False
    return np.unique(data).size <= LABEL_VALUES


def _tiff_voxel_size(tif) -> dict[str, tuple[float, str]]:
    """Voxel size per axis letter (Z, Y, X) from OME or ImageJ metadata, in its unit."""
    if tif.is_ome and tif.ome_metadata:
        return _ome_voxel_size(tif.ome_metadata)
    if not tif.is_imagej:
        return {}
    meta = tif.imagej_metadata or {}
    unit = _clean_unit(str(meta.get("unit", "")))
    if not unit:
        return {}
    sizes = {}
    page = tif.pages[0]
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(tag)
        if value is not None:
            numerator, denominator = value.value
            if numerator:
                sizes[axis] = (denominator / numerator, unit)
    if "spacing" in meta:
        sizes["Z"] = (float(meta["spacing"]), unit)
    return sizes


def _ome_voxel_size(xml: str) -> dict[str, tuple[float, str]]:
    root = ElementTree.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return {}
    sizes = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            unit = _clean_unit(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
            sizes[axis] = (float(value), unit)
    return sizes


def _clean_unit(unit: str) -> str:
    unit = unit.strip().replace("\\u00B5", "µ").replace("micron", "µm")
    return {"u": "µm", "um": "µm", "A": "Å", "angstrom": "Å"}.get(unit, unit)


def _scale_for_axes(
    axes: str, sizes: dict[str, tuple[float, str]]
) -> tuple[tuple[float, ...] | None, tuple[str, ...] | None]:
    """napari scale/units per axis; axes without a size (C, T, ...) get 1 and 'pixel'."""
    if not sizes:
        return None, None
    known = [sizes[a] for a in axes if a in sizes]
    # napari wants one unit for all spatial axes: convert to nm when units differ.
    units = {unit for _, unit in known}
    common = units.pop() if len(units) == 1 else "nm"
    scale, names = [], []
    for axis in axes:
        if axis in sizes:
            value, unit = sizes[axis]
            if unit != common:
                value = value * _UNIT_TO_NM.get(unit, 1.0)
            scale.append(float(value))
            names.append(common)
        else:
            scale.append(1.0)
            names.append("pixel")
    return tuple(scale), tuple(names)


def _lazy_tiff(path: Path) -> Any:
    """A memory map for uncompressed contiguous files, else dask over the pages."""
    try:
        return tifffile.memmap(path, mode="r")
    except ValueError:
        pass  # compressed or not contiguous
    import dask  # only for files larger than memory: dask's import is not paid otherwise
    import dask.array as da

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, dtype = series.shape, series.dtype
        page_shape = series.pages[0].shape
        count = len(series.pages)
    page_bytes = int(np.prod(page_shape)) * np.dtype(dtype).itemsize
    if page_bytes > MAX_PAGE_BYTES:
        raise InputDataError(
            f"{path.name}: one compressed page holds {page_bytes / 1024**3:.1f} GiB, which "
            "cannot be read piece by piece: convert the file to OME-Zarr (e.g. with "
            "bioformats2raw) or to an uncompressed TIFF"
        )

    def read_page(index: int) -> np.ndarray:
        with tifffile.TiffFile(path) as handle:
            return handle.series[0].pages[index].asarray()

    planes = [
        da.from_delayed(dask.delayed(read_page)(i), shape=page_shape, dtype=dtype)
        for i in range(count)
    ]
    return da.stack(planes).reshape(shape)


def _read_mrc(path: Path, lazy: bool) -> Volume:
    if lazy:
        # The memory map stays valid after the handle goes out of scope.
        handle = mrcfile.mmap(path, mode="r")
        data, size = handle.data, handle.voxel_size.copy()
    else:
        with mrcfile.open(path, mode="r") as handle:
            data, size = handle.data.copy(), handle.voxel_size.copy()
    _check_pixels(data, path)
    # MRC stores the voxel size in Å, x y z; napari wants (z,) y, x.
    zyx = [float(size.z), float(size.y), float(size.x)][-data.ndim :]
    if min(zyx) <= 0:
        return Volume(data, path.stem, None, None, lazy)
    return Volume(data, path.stem, tuple(v / 10.0 for v in zyx), ("nm",) * len(zyx), lazy)


def _check_pixels(data: Any, path: Path) -> None:
    if data is None or int(np.prod(data.shape)) == 0:
        raise InputDataError(f"{path.name} holds no pixels: re-export it")
