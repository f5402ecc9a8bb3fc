"""Readers fuzzed: any array in any format, corrupt bytes, wrong metadata.

Every case ends in the data read back (values and shape, up to singleton axes) or in one of
the project's own errors; never another exception, including when the lazily read pixels
are materialised.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import mrcfile
import numpy as np
import tifffile
import zarr
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_bnadapt.errors import BnAdaptError
from napari_bnadapt.io.images import read_named_image

DTYPES = ["bool", "int8", "uint8", "uint16", "int32", "float16", "float32", "float64",
          "complex64", ">u2", ">f4", "<i4"]  # fmt: skip
FORMATS = ["tif", "zarr2", "zarr3", "n5", "h5", "mrc"]
N5_TYPES = {"uint8", "uint16", "int8", "int32", "float32", "float64"}


def write_n5(array: np.ndarray, path: Path) -> None:
    """``array`` as an N5 dataset written by tensorstore (N5 lists axes x first)."""
    import tensorstore

    if array.dtype.name not in N5_TYPES or array.dtype.byteorder == ">" or 0 in array.shape:
        raise ValueError("not an N5 data type")
    spec = {
        "driver": "n5", "kvstore": {"driver": "file", "path": str(path)}, "create": True,
        "metadata": {"dimensions": list(array.shape[::-1]), "blockSize": [4] * array.ndim,
                     "dataType": array.dtype.name, "compression": {"type": "gzip"}},
    }  # fmt: skip
    tensorstore.open(spec).result().T[...] = array


def arrays() -> st.SearchStrategy[np.ndarray]:
    return st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(
            np.dtype(dtype),
            hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
            elements=None,  # NaN, inf, extremes included
        )
    )


def write(array: np.ndarray, folder: Path, fmt: str) -> Path | None:
    """``array`` in ``fmt``; None when the format's own library cannot store it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "tif":
                path = folder / "image.tif"
                # Grey data: without it tifffile stores a last axis of 3 or 4 as colour, which
                # the reader rightly turns into grey (a test of its own, test_reader_writer).
                tifffile.imwrite(path, array, photometric="minisblack")
            elif fmt.startswith("zarr"):
                path = folder / f"image_{fmt}.zarr"
                stored = zarr.create_array(
                    str(path), shape=array.shape, dtype=array.dtype, zarr_format=int(fmt[-1]),
                    chunks=tuple(max(1, s) for s in array.shape),
                )  # fmt: skip
                stored[...] = array
            elif fmt == "n5":
                path = folder / "image.n5"
                write_n5(array, path)
            elif fmt == "h5":
                path = folder / "image.h5"
                with h5py.File(path, "w") as handle:
                    handle.create_dataset("raw", data=array)
            else:
                path = folder / "image.mrc"
                with mrcfile.new(path, overwrite=True) as handle:
                    handle.set_data(array)
    except Exception:  # a format that cannot hold this array: not an input a user has
        return None
    return path


def read_back(path: Path) -> np.ndarray | None:
    """Read and materialise; None for the project's own (expected) errors."""
    try:
        image = read_named_image(path)
        return np.asarray(image.data)
    except BnAdaptError as exc:
        assert "\n" not in str(exc), "errors are one line"
        return None


@given(array=arrays(), fmt=st.sampled_from(FORMATS))
@example(array=np.zeros((1, 1, 3), np.int8), fmt="tif")
def test_any_array_in_any_format_reads_back_or_is_refused(array, fmt, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    path = write(array, folder, fmt)
    assume(path is not None)
    data = read_back(path)
    if data is not None:
        expected = np.squeeze(array)
        got = np.squeeze(data)
        assert got.shape == expected.shape
        if expected.dtype.kind in "fc":
            np.testing.assert_array_equal(got.astype(expected.dtype), expected)
        else:
            assert np.array_equal(got.astype(np.int64), expected.astype(np.int64))


def valid_file(folder: Path, fmt: str) -> Path:
    array = (np.arange(6 * 20 * 20) % 251).astype(np.uint8).reshape(6, 20, 20)
    if fmt == "png":
        from PIL import Image

        path = folder / "image.png"
        Image.fromarray(array[0]).save(path)
        return path
    path = write(array, folder, fmt)
    assert path is not None
    return path


# Found by fuzzing: an emptied zarr v3 chunk raised zstd's RuntimeError when read lazily.
@example(fmt="zarr3", cut=0.0, flips=[])
@given(
    fmt=st.sampled_from(["tif", "png", "mrc", "h5", "zarr2", "zarr3", "n5"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
)
def test_corrupt_and_truncated_files_are_refused_or_read(fmt, cut, flips, tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt")
    path = valid_file(folder, fmt)
    targets = [p for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path]
    victim = targets[int(cut * (len(targets) - 1))] if targets else path
    data = bytearray(victim.read_bytes())
    data = data[: int(len(data) * cut)] if cut < 0.5 else data
    for where, value in flips:
        if data:
            data[int(where * (len(data) - 1))] = value
    victim.write_bytes(bytes(data))
    read_back(path)  # any outcome but an unexpected exception


# Found by fuzzing: 1.8e305 µm overflowed to an infinite voxel size in nm.
@example(resolution=[1.797693134862316e305], attribute="element_size_um", fmt="zarr2")
@given(
    resolution=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.text(max_size=3)
        ),
        max_size=4,
    ),
    attribute=st.sampled_from(["resolution", "element_size_um", "pixelResolution"]),
    fmt=st.sampled_from(["zarr2", "zarr3", "h5"]),
)
def test_wrong_voxel_size_metadata_never_gives_a_bad_voxel_size(
    resolution, attribute, fmt, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("meta")
    path = valid_file(folder, fmt)
    value = (
        {"dimensions": resolution, "unit": "um"} if attribute == "pixelResolution" else resolution
    )
    if fmt == "h5":
        with h5py.File(path, "a") as handle:
            try:
                handle["raw"].attrs[attribute] = (
                    value if attribute != "pixelResolution" else str(value)
                )
            except (TypeError, ValueError):
                assume(False)
    else:
        try:
            zarr.open_array(str(path), mode="r+").attrs[attribute] = value
        except (TypeError, ValueError):
            assume(False)  # not JSON (NaN in strict zarr v3)
    try:
        image = read_named_image(path)
    except BnAdaptError:
        return
    if image.voxel_size is not None:
        assert all(np.isfinite(v) and v > 0 for v in image.voxel_size)


def test_a_decompression_bomb_is_read_lazily_or_refused(tmp_path, monkeypatch):
    """A tiny compressed TIFF declaring a large image is opened lazily (by its declared
    size, not the file's), and a single page too large to read in pieces is refused."""
    from napari_bnadapt.io import volumes

    path = tmp_path / "bomb.tif"
    tifffile.imwrite(
        path, np.zeros((4, 1024, 1024), np.uint16), compression="zlib", photometric="minisblack"
    )
    assert path.stat().st_size < 64 * 1024  # 8 MiB of pixels in a few KiB
    volume = volumes.read_volume(path, lazy_above=1024**2)
    assert volume.lazy and volume.data.shape == (4, 1024, 1024)
    monkeypatch.setattr(volumes, "MAX_PAGE_BYTES", 1024**2)
    try:
        volumes.read_volume(path, lazy_above=1024**2)
    except BnAdaptError as exc:
        assert "OME-Zarr" in str(exc)
    else:
        raise AssertionError("a page beyond MAX_PAGE_BYTES must be refused")


def test_a_png_bomb_is_refused_in_one_line(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.fromarray(np.zeros((600, 600), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses beyond twice this
    try:
        read_named_image(path)
    except BnAdaptError as exc:
        assert "decompression bomb" in str(exc)
    else:
        raise AssertionError("a PNG beyond PIL's pixel limit must be refused")
