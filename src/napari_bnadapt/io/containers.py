"""Chunked containers, opened lazily: OME-Zarr, zarr (v2 and v3), N5 and HDF5.

Each array is addressed by a :class:`StoredArray` (path, key, kind): a small picklable
record that any process (a dask worker on another node included) opens and reads itself,
so a 500 GB volume travels as a path, never as pixels. The libraries made for each format
do the reading: zarr-python for zarr, ome-zarr-py for the OME-NGFF multiscale metadata,
tensorstore for N5 and h5py for HDF5.
"""

from __future__ import annotations

import os
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
    _handle: Any = field(default=None, repr=False, compare=False)
    _lock: Any = field(default=None, repr=False, compare=False)
    _dask: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | Path, key: str, kind: str) -> StoredArray:
        """Open ``key`` in the container at ``path`` and record its shape, dtype and chunks."""
        stored = cls(str(path), key, kind)
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
        if self.kind == "n5":
            return np.asarray(handle[index].read().result())
        if self.kind == "hdf5":
            with self._lock:  # h5py releases no lock of its own across threads
                return np.asarray(handle[index])
        return np.asarray(handle[index])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_lock": None, "_dask": None}

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


def open_container(path: str | Path, key: str | None = None) -> Container:
    """Open one array of the container at ``path``.

    Without ``key``: the OME-Zarr multiscale image's level 0, or the only array. A
    container with several arrays and no ``key`` raises :class:`InputDataError` listing
    them. With ``key``: that array, or that multiscale group's level 0.
    """
    path = Path(path)
    kind = container_kind(path)
    if kind is None:
        raise InputDataError(f"{path.name}: not a zarr, N5 or HDF5 container")
    if not path.exists():
        raise InputDataError(f"{str(path)!r} not found: check the path")
    try:
        if kind == "zarr":
            multiscale = _ome_multiscale(path, key)
            if multiscale is not None:
                return multiscale
        keys = list_arrays(path)
        chosen = _choose_key(path, keys, key)
        array = StoredArray.open(path, chosen, kind)
        scale, units = attribute_voxel_size(_attributes(path, chosen, kind), array.ndim, kind)
    except InputDataError:
        raise
    except Exception as exc:
        raise InputDataError(
            f"{path.name} could not be read ({type(exc).__name__}: {exc}): the container may "
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
    raise InputDataError(
        f"{path.name} holds several arrays ({listed}): choose one with --key, e.g. --key {keys[0]}"
    )


def _ome_multiscale(path: Path, key: str | None) -> Container | None:
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
        levels = [StoredArray.open(path, prefix + p, "zarr") for p in paths]
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
