"""Chunked containers, opened lazily: OME-Zarr, zarr (v2 and v3), N5 and HDF5.

Each array is addressed by a :class:`StoredArray` (path, key, kind): a small picklable
record that any process (a dask worker on another node included) opens and reads itself,
so a 500 GB volume travels as a path, never as pixels. The libraries made for each format
do the reading: zarr-python for zarr, ome-zarr-py for the OME-NGFF multiscale metadata,
tensorstore for N5 and h5py for HDF5.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BnAdaptError, InputDataError, first_line
from .calibration import attribute_voxel_size, ome_voxel_size

ZARR_SUFFIXES = (".zarr",)
N5_SUFFIXES = (".n5",)
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
CONTAINER_SUFFIXES = ZARR_SUFFIXES + N5_SUFFIXES + HDF5_SUFFIXES
#: What a read does with a chunk the container does not store: ``error`` names it (an
#: incomplete copy must not be segmented as zeros); ``zero`` reads it as the fill value
#: (for stores written without their empty chunks, as zarr does by default).
MISSING_CHUNKS = ("error", "zero")


def container_kind(path: str | Path) -> str | None:
    """``'zarr'``, ``'n5'`` or ``'hdf5'`` by the path's suffix, else None."""
    name = str(path).rstrip("/\\").lower()
    for kind, suffixes in (("zarr", ZARR_SUFFIXES), ("n5", N5_SUFFIXES), ("hdf5", HDF5_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return None


def container_stem(path: str | Path) -> str:
    """The container's name without its suffixes: ``cells.ome.zarr`` → ``cells``."""
    name = Path(str(path).rstrip("/\\")).name
    for suffix in (".ome.zarr", *CONTAINER_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


@dataclass
class StoredArray:
    """One array in a container, read region by region (numpy indexing with slices).

    Pickles as its address only; the open handle is made again where it is used.
    """

    path: str
    key: str
    kind: str
    shape: tuple[int, ...] = ()
    dtype: np.dtype = field(default_factory=lambda: np.dtype("uint8"))
    chunks: tuple[int, ...] = ()
    missing: str = "error"
    _handle: Any = field(default=None, repr=False, compare=False)
    _stored: set[tuple[int, ...]] = field(default_factory=set, repr=False, compare=False)
    _lock: Any = field(default=None, repr=False, compare=False)
    _dask: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | Path, key: str, kind: str, missing: str = "error") -> StoredArray:
        """Open ``key`` in the container at ``path`` and record its shape, dtype and chunks;
        ``missing`` says what reading a chunk the container lacks does (:data:`MISSING_CHUNKS`)."""
        if missing not in MISSING_CHUNKS:
            raise InputDataError(f"missing chunks: use one of {', '.join(MISSING_CHUNKS)}")
        stored = cls(str(path), key, kind, missing=missing)
        handle = stored.handle()
        stored.shape = tuple(int(s) for s in handle.shape)
        stored.dtype = np.dtype(_numpy_dtype(handle))
        stored.chunks = _chunks_of(handle, kind, stored.shape)
        return stored

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def handle(self) -> Any:
        """The format library's array object (opened once per process)."""
        if self._handle is None:
            self._handle = _open_handle(self.path, self.key, self.kind)
            self._lock = threading.Lock()
        return self._handle

    def __getitem__(self, index: Any) -> np.ndarray:
        try:
            return self._read(index)
        except BnAdaptError:
            raise
        except Exception as exc:  # each format library raises its own kinds on damaged chunks
            raise InputDataError(
                f"{Path(self.path).name}: part of {self.key!r} could not be read "
                f"({type(exc).__name__}: {first_line(exc, 100)}): the container is damaged "
                "or incomplete; copy it again"
            ) from None

    def _read(self, index: Any) -> np.ndarray:
        handle = self.handle()
        if self.missing == "error":
            self._check_chunks(index)
        if self.kind == "n5":
            return np.asarray(handle[index].read().result())
        if self.kind == "hdf5":
            with self._lock:  # h5py releases no lock of its own across threads
                return np.asarray(handle[index])
        return np.asarray(handle[index])

    def _check_chunks(self, index: Any) -> None:
        """Raise when a chunk ``index`` touches is not stored (known ones are remembered)."""
        for coords in chunk_coordinates(index, self.shape, self.chunks):
            if coords in self._stored:
                continue
            if not _chunk_stored(self, coords):
                where = ", ".join(str(c * n) for c, n in zip(coords, self.chunks))
                array = f"array {self.key!r}" if self.key else "array"
                raise InputDataError(
                    f"{Path(self.path).name}: the chunk of its {array} at ({where}) is missing: the container is incomplete (copy it again), or "
                    "was written without its empty chunks (read them as zeros with "
                    "--missing-chunks zero)"
                )
            self._stored.add(coords)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_lock": None, "_dask": None, "_stored": set()}

    def to_dask(self) -> Any:
        """A dask array over this array, one task per stored chunk (or a few chunks)."""
        if self._dask is None:  # built once per process: every block reads through it
            import dask.array as da

            self._dask = da.from_array(
                self, chunks=self.chunks, asarray=True, fancy=False, name=False
            )
        return self._dask


@dataclass
class Container:
    """What a container holds: the chosen array, its levels and calibration."""

    array: StoredArray
    levels: list[StoredArray]
    scale: tuple[float, ...] | None
    units: tuple[str, ...] | None
    name: str


def chunk_coordinates(
    index: Any, shape: tuple[int, ...], chunks: tuple[int, ...]
) -> itertools.product:
    """Grid coordinates of every chunk a basic index (ints and slices) touches."""
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in index):
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) - len(index) + 1) + index[at + 1 :]
    index = index + (slice(None),) * (len(shape) - len(index))
    ranges = []
    for item, size, chunk in zip(index, shape, chunks):
        if isinstance(item, slice):
            start, stop, _ = item.indices(size)
            ranges.append(range(start // chunk, (stop - 1) // chunk + 1) if stop > start else [])
        else:
            position = int(item) % size
            ranges.append(range(position // chunk, position // chunk + 1))
    return itertools.product(*ranges)


def _chunk_stored(array: StoredArray, coords: tuple[int, ...]) -> bool:
    """Whether the container holds chunk ``coords`` of ``array`` (its file, for zarr and
    N5; its allocation, for HDF5)."""
    handle = array.handle()
    if array.kind == "hdf5":
        if handle.chunks is None:  # contiguous: stored once anything was written
            return handle.id.get_storage_size() > 0
        offset = tuple(c * n for c, n in zip(coords, handle.chunks))
        return handle.id.get_chunk_info_by_coord(offset).byte_offset is not None
    if array.kind == "n5":  # N5 lists axes fastest first: the file is key/x/y/z
        parts = [str(c) for c in reversed(coords)]
        return Path(array.path, array.key, *parts).exists()
    store = handle.store_path
    root = getattr(store.store, "root", None)
    if root is None:  # not on a local disk: the store itself answers
        return True
    key = handle.metadata.encode_chunk_key(coords)
    return Path(root, store.path, key).exists()


def open_container(
    path: str | Path, key: str | None = None, missing_chunks: str = "error"
) -> Container:
    """Open one array of the container at ``path``.

    Without ``key``: the OME-Zarr multiscale image's level 0, or the only array. A
    container with several arrays and no ``key`` raises :class:`InputDataError` listing
    them. With ``key``: that array, or that multiscale group's level 0. ``missing_chunks``:
    see :data:`MISSING_CHUNKS`.
    """
    path = Path(path)
    kind = container_kind(path)
    if kind is None:
        raise InputDataError(f"{path.name}: not a zarr, N5 or HDF5 container")
    if not path.exists():
        raise InputDataError(f"{str(path)!r} not found: check the path")
    try:
        if kind == "zarr":
            multiscale = _ome_multiscale(path, key, missing_chunks)
            if multiscale is not None:
                return multiscale
        keys = list_arrays(path)
        chosen = _choose_key(path, keys, key)
        array = StoredArray.open(path, chosen, kind, missing_chunks)
        scale, units = attribute_voxel_size(_attributes(path, chosen, kind), array.ndim, kind)
    except InputDataError:
        raise
    except Exception as exc:
        raise InputDataError(
            f"{path.name} could not be read ({type(exc).__name__}: {first_line(exc)}): the container may "
            "be incomplete or corrupt"
        ) from None
    if array.ndim == 0 or 0 in array.shape:
        raise InputDataError(f"{path.name}:{chosen} holds no pixels: choose another --key")
    name = container_stem(path) + (f"-{chosen.replace('/', '-')}" if chosen else "")
    return Container(array, [array], scale, units, name)


def list_arrays(path: str | Path) -> list[str]:
    """Keys of every array in the container at ``path`` ('' for a root array), sorted."""
    path = Path(path)
    kind = container_kind(path)
    if kind == "hdf5":
        import h5py

        found: list[str] = []
        with h5py.File(path, "r") as handle:
            handle.visititems(
                lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None
            )
        return sorted(found)
    if kind == "n5":
        relative = (
            Path(root).relative_to(path).as_posix()
            for root, _, files in os.walk(path)
            if "attributes.json" in files and _is_n5_dataset(Path(root) / "attributes.json")
        )
        return sorted("" if r == "." else r for r in relative)
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return [""]
    return sorted(name for name, member in node.members(max_depth=None) if _is_array(member))


#: An array whose name says it is an annotation (``labels``, ``seg``, ``gt``...), not an
#: image to segment.
LABEL_NAME = re.compile(r"label|seg|mask|truth|\bgt\b|annot|membrane|mito|stroke", re.I)


def _choose_key(path: Path, keys: list[str], key: str | None) -> str:
    listed = ", ".join(k or "(root)" for k in keys) or "none"
    if key is not None:
        key = key.strip("/")
        if key not in keys:
            raise InputDataError(
                f"{path.name} has no array {key!r}; its arrays are: {listed}: choose one with --key"
            )
        return key
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise InputDataError(f"{path.name} holds no arrays: check the path")
    images = [k for k in keys if not LABEL_NAME.search(k)] or keys  # an image, not labels
    raise InputDataError(
        f"{path.name} holds several arrays ({listed}): choose one with --key, e.g. --key "
        f"{images[0]}"
    )


def _ome_multiscale(path: Path, key: str | None, missing: str) -> Container | None:
    """The multiscale image at ``path`` (or at group ``key`` in it), read by ome-zarr-py."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    location = path / key if key else path
    version2 = (location / ".zattrs").exists()
    if not version2 and not (location / "zarr.json").exists():
        return None
    # OME-NGFF 0.4 lives in zarr v2 stores, 0.5 in v3: asking for the right one up front
    # spares ome-zarr-py's "version mismatch" warning.
    parsed = parse_url(str(location), mode="r", fmt=FormatV04() if version2 else FormatV05())
    if parsed is None:
        return None
    for node in Reader(parsed)():
        multiscales = node.load(Multiscales)
        if multiscales is None:
            continue
        paths = list(multiscales.datasets)
        prefix = f"{key.strip('/')}/" if key else ""
        levels = [StoredArray.open(path, prefix + p, "zarr", missing) for p in paths]
        scale, units = ome_voxel_size(node.metadata, levels[0].ndim)
        return Container(levels[0], levels, scale, units, container_stem(path))
    return None


def _attributes(path: Path, key: str, kind: str) -> dict[str, Any]:
    """The array's attributes (zarr attrs, HDF5 attrs, N5 attributes.json)."""
    if kind == "hdf5":
        import h5py

        with h5py.File(path, "r") as handle:
            return {k: _plain(v) for k, v in handle[key].attrs.items()}
    if kind == "n5":
        import json

        return json.loads((path / key / "attributes.json").read_text())
    import zarr

    return (
        dict(zarr.open_array(str(path), path=key, mode="r").attrs)
        if key
        else dict(zarr.open_array(str(path), mode="r").attrs)
    )


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def _open_handle(path: str, key: str, kind: str) -> Any:
    if kind == "hdf5":
        import h5py

        return h5py.File(path, "r")[key]
    if kind == "n5":
        import tensorstore

        spec = {"driver": "n5", "kvstore": {"driver": "file", "path": path}, "path": key}
        # N5 lists dimensions fastest first (x, y, z); present them as numpy does (z, y, x).
        return tensorstore.open(spec, read=True).result().T
    return _open_zarr(path, key)


def _open_zarr(path: str, key: str) -> Any:
    """A zarr array by its key ('' for an array at the store's root)."""
    import zarr

    return zarr.open_array(path, path=key, mode="r") if key else zarr.open_array(path, mode="r")


def _numpy_dtype(handle: Any) -> Any:
    dtype = handle.dtype
    return getattr(dtype, "numpy_dtype", dtype)


def _chunks_of(handle: Any, kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if kind == "n5":
        chunks = tuple(handle.chunk_layout.read_chunk.shape)
    else:
        chunks = getattr(handle, "chunks", None) or shape
    return tuple(int(min(max(1, c), max(1, n))) for c, n in zip(chunks, shape))


def _is_array(member: Any) -> bool:
    import zarr

    return isinstance(member, zarr.Array)


def _is_n5_dataset(attributes: Path) -> bool:
    import json

    try:
        return "dimensions" in json.loads(attributes.read_text())
    except (OSError, ValueError):
        return False
