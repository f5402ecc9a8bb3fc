"""An OME-Zarr image written block by block, that only looks complete once it is.

The image is written under ``<out>.partial`` (a name no reader takes for an image): the
zarr array first, each finished block then marked by an empty file in
``bnadapt-blocks/``. Only :meth:`BlockStore.finish` writes the OME-NGFF multiscales
metadata (by ome-zarr-py) and renames the store to ``<out>``; a failed, killed or
cancelled run leaves ``<out>.partial`` behind, which ``resume=True`` continues, skipping
the blocks already marked. The store is a small picklable record, so dask workers write
their blocks into it directly (a filesystem all workers see is assumed).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError, OutputPathError, require

OME_VERSIONS = ("0.4", "0.5")
MARKERS = "bnadapt-blocks"
#: The partial store's attribute that records what made it (``--resume`` checks it).
RUN_ATTRIBUTE = "bnadapt_run"
#: OME-NGFF unit names of the units this package reads.
_OME_UNITS = {"nm": "nanometer", "µm": "micrometer", "mm": "millimeter", "Å": "angstrom"}


@dataclass(frozen=True)
class BlockStore:
    """Where one output image goes and its layout (spatial axes last)."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    axes: tuple[str, ...]  # e.g. ("c", "z", "y", "x")
    scale: tuple[float, ...] | None = None  # spatial axes only
    unit: str | None = None
    ome_version: str = "0.5"

    def __post_init__(self) -> None:
        require(
            self.ome_version in OME_VERSIONS,
            f"OME-Zarr version must be 0.4 or 0.5, got {self.ome_version}",
        )
        require(
            str(self.path).endswith(".zarr"),
            f"{self.path}: an OME-Zarr output needs a name ending in .zarr",
        )

    @property
    def partial(self) -> Path:
        return Path(f"{self.path}.partial")

    def create(self, resume: bool = False, run: dict[str, Any] | None = None) -> set[int]:
        """Make the partial store, recording ``run`` (what made it), or with ``resume``
        reopen the one there; the blocks already done. Whether a store may be resumed is
        the caller's to check first (:meth:`recorded_run`)."""
        import zarr

        if resume and self.partial.exists():
            return self.done_blocks()
        shutil.rmtree(self.partial, ignore_errors=True)
        root = zarr.open_group(str(self.partial), mode="w", zarr_format=self._zarr_format())
        root.create_array(
            "0", shape=self.shape, chunks=self.chunks, dtype=self.dtype, fill_value=0,
            **self._dimension_names(),
        )  # fmt: skip
        if run is not None:
            root.attrs[RUN_ATTRIBUTE] = run
        (self.partial / MARKERS).mkdir()
        return set()

    def recorded_run(self) -> dict[str, Any] | None:
        """The record of the run that began the partial store; None when it has none or
        is not a readable store with an image of this type."""
        import zarr

        try:
            root = zarr.open_group(str(self.partial), mode="r")
            array = root["0"]
            run = root.attrs.get(RUN_ATTRIBUTE)
        except Exception:  # not a zarr store, or damaged: nothing to resume from
            return None
        usable = str(array.dtype) == self.dtype and isinstance(run, dict)
        return dict(run) if usable else None

    def write(
        self,
        region: tuple[slice, ...],
        data: np.ndarray,
        index: int,
        counts: tuple[int, int] | None = None,
    ) -> None:
        """Write one block (``region`` on the spatial axes) and mark it done; ``counts``
        (foreground and all voxels of a mask) go in the marker, for a resumed run's total."""
        import zarr

        array = zarr.open_array(str(self.partial), path="0", mode="r+")
        # Every chunk is stored, empty ones too: a reader then tells a missing chunk (an
        # incomplete copy) from an empty one, as this package's own reader does.
        array = array.with_config({"write_empty_chunks": True})
        lead = (slice(None),) * (len(self.shape) - len(region))
        array[(*lead, *region)] = data
        # The marker comes last: a block killed mid-write is written again on resume.
        marker = self.partial / MARKERS / str(index)
        marker.write_text(json.dumps(list(counts)) if counts is not None else "")

    def kept_counts(self, blocks: set[int]) -> tuple[int, int] | None:
        """Foreground and all voxels of the ``blocks`` an earlier run wrote, from their
        markers (None when one does not say: a resumed run then counts its own blocks)."""
        foreground = voxels = 0
        for index in blocks:
            try:
                found = json.loads((self.partial / MARKERS / str(index)).read_text())
                foreground, voxels = foreground + int(found[0]), voxels + int(found[1])
            except (OSError, ValueError, TypeError, IndexError):
                return None
        return foreground, voxels

    def done_blocks(self) -> set[int]:
        folder = self.partial / MARKERS
        return (
            {int(p.name) for p in folder.iterdir() if p.name.isdigit()}
            if folder.exists()
            else set()
        )

    def finish(self, name: str, metadata: dict[str, Any] | None = None) -> Path:
        """Write the OME-NGFF metadata and move the store to its final name."""
        import zarr
        from ome_zarr.format import FormatV04, FormatV05
        from ome_zarr.writer import write_multiscales_metadata

        fmt = FormatV04() if self.ome_version == "0.4" else FormatV05()
        root = zarr.open_group(str(self.partial), mode="r+")
        spatial = list(self.scale) if self.scale else [1.0] * len(self.axes)
        scale = [1.0] * (len(self.shape) - len(spatial)) + spatial[-len(self.shape) :]
        datasets = [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]
        write_multiscales_metadata(root, datasets, fmt=fmt, axes=self._ome_axes(), name=name)
        if metadata:
            root.attrs["bnadapt"] = metadata
        shutil.rmtree(self.partial / MARKERS, ignore_errors=True)
        final = Path(self.path)
        check_output_name(final)
        if final.exists():
            shutil.rmtree(final)
        self.partial.rename(final)
        return final

    def _zarr_format(self) -> int:
        return 2 if self.ome_version == "0.4" else 3

    def _dimension_names(self) -> dict[str, Any]:
        return {"dimension_names": list(self.axes)} if self._zarr_format() == 3 else {}

    def _ome_axes(self) -> list[dict[str, str]]:
        axes = []
        for name in self.axes:
            if name == "c":
                axes.append({"name": "c", "type": "channel"})
                continue
            axis = {"name": name, "type": "space"}
            if self.scale and self.unit in _OME_UNITS:
                axis["unit"] = _OME_UNITS[self.unit]
            axes.append(axis)
        return axes


def check_output_name(path: str | Path) -> None:
    """Refuse an output that would replace anything but a store this package wrote (a mask
    or probability map of an earlier run): another zarr store there may be the user's
    image, labels or notes, and is replaced whole."""
    path = Path(path)
    if not path.exists():
        return
    if not _is_zarr(path):
        raise InputDataError(f"{path} exists and is not a zarr store: choose another output name")
    if not _written_here(path):
        raise OutputPathError(
            f"{path} exists and holds a zarr store this tool did not write (an image, "
            "labels?): it would be replaced whole. Choose another output name, or remove it "
            "first (nothing was written)"
        )


def _written_here(path: Path) -> bool:
    """Whether the store at ``path`` is a mask or map this package wrote (its record)."""
    import zarr

    try:
        return "bnadapt" in zarr.open_group(str(path), mode="r").attrs
    except Exception:  # not a group, or unreadable: not ours
        return False


def _is_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zarray"))
