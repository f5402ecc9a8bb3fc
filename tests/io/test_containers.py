"""Containers open lazily with their voxel size: OME-Zarr, zarr v2/v3, N5, HDF5."""

import pickle

import h5py
import numpy as np
import pytest
import zarr

from napari_bnadapt.errors import InputDataError
from napari_bnadapt.io.containers import list_arrays
from napari_bnadapt.io.images import read_image_set, read_named_image
from napari_bnadapt.io.ome_zarr_writer import BlockStore
from napari_bnadapt.io.volumes import read_volume


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (6, 40, 30), dtype=np.uint8)


def assert_lazy_copy(result, volume, scale=(40.0, 4.0, 4.0)):
    assert type(result.data).__module__.startswith("dask")
    np.testing.assert_array_equal(np.asarray(result.data), volume)
    assert result.voxel_size == pytest.approx(scale)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_round_trip_keeps_the_voxel_size(tmp_path, volume, version):
    store = BlockStore(str(tmp_path / "v.zarr"), volume.shape, "uint8", (2, 16, 16),
                       ("z", "y", "x"), (40.0, 4.0, 4.0), "nm", version)  # fmt: skip
    store.create()
    store.write(tuple(slice(0, n) for n in volume.shape), volume, 0)
    store.finish("v")
    result = read_volume(tmp_path / "v.zarr")
    assert_lazy_copy(result, volume)
    assert result.units == ("nm",) * 3 and len(result.levels) == 1


def test_multiscale_ome_zarr_opens_level_0_and_keeps_every_level(tmp_path, volume):
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    location = parse_url(str(tmp_path / "m.zarr"), mode="w")
    root = zarr.group(store=location.store)
    write_image(volume, root, axes="zyx", scale_factors=(2,))
    result = read_volume(tmp_path / "m.zarr")
    assert len(result.levels) == 2 and result.levels[1].shape == (6, 20, 15)
    np.testing.assert_array_equal(np.asarray(result.data), volume)
    # A level by its key is a plain array.
    assert read_volume(tmp_path / "m.zarr", key="s1").data.shape == (6, 20, 15)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_zarr_with_a_resolution_attribute(tmp_path, volume, zarr_format):
    root = zarr.open_group(str(tmp_path / "p.zarr"), mode="w", zarr_format=zarr_format)
    array = root.create_array("raw", shape=volume.shape, chunks=(2, 16, 16), dtype="uint8")
    array[:] = volume
    array.attrs["resolution"] = [40, 4, 4]
    assert_lazy_copy(read_volume(tmp_path / "p.zarr"), volume)


def test_n5_lists_its_resolution_x_first(tmp_path, volume):
    import tensorstore

    spec = {
        "driver": "n5", "kvstore": {"driver": "file", "path": str(tmp_path / "v.n5")},
        "path": "setup0/s0", "create": True,
        "metadata": {"dimensions": list(volume.shape[::-1]), "blockSize": [16, 16, 2],
                     "dataType": "uint8", "compression": {"type": "gzip"},
                     "resolution": [4, 4, 40], "units": ["nm", "nm", "nm"]},
    }  # fmt: skip
    array = tensorstore.open(spec).result()
    array.T[...] = volume  # N5 stores x fastest: the transposed view is (z, y, x)
    assert list_arrays(tmp_path / "v.n5") == ["setup0/s0"]
    assert_lazy_copy(read_volume(tmp_path / "v.n5"), volume)


def test_hdf5_resolution_and_element_size_conventions(tmp_path, volume):
    with h5py.File(tmp_path / "v.h5", "w") as handle:
        handle.create_dataset("raw", data=volume, chunks=(2, 16, 16)).attrs["resolution"] = [
            40,
            4,
            4,
        ]
        handle.create_dataset("ilastik", data=volume).attrs["element_size_um"] = [
            0.04,
            0.004,
            0.004,
        ]
    assert_lazy_copy(read_volume(tmp_path / "v.h5", key="raw"), volume)
    assert_lazy_copy(read_volume(tmp_path / "v.h5", key="ilastik"), volume)


def test_an_ambiguous_container_lists_its_keys(tmp_path, volume):
    with h5py.File(tmp_path / "v.h5", "w") as handle:
        handle["raw"] = volume
        handle["labels/cells"] = volume
    with pytest.raises(InputDataError, match=r"several arrays \(labels/cells, raw\).*--key"):
        read_volume(tmp_path / "v.h5")
    with pytest.raises(InputDataError, match="no array 'nope'; its arrays are: labels/cells, raw"):
        read_named_image(tmp_path / "v.h5", key="nope")
    image = read_image_set(tmp_path / "v.h5", key="/raw")[0]
    assert image.name == "v-raw" and image.source.key == "raw"


def test_stored_arrays_pickle_as_their_address(tmp_path, volume):
    with h5py.File(tmp_path / "v.h5", "w") as handle:
        handle["raw"] = volume
    source = read_volume(tmp_path / "v.h5").source
    np.testing.assert_array_equal(source[1:3, :5], volume[1:3, :5])  # opens the file
    copy = pickle.loads(pickle.dumps(source))
    assert len(pickle.dumps(source)) < 1000
    np.testing.assert_array_equal(copy[2], volume[2])


def test_broken_and_missing_containers_give_one_line(tmp_path):
    with pytest.raises(InputDataError, match="not found"):
        read_volume(tmp_path / "missing.zarr")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(InputDataError, match="could not be read"):
        read_volume(tmp_path / "bad.h5")
    empty = zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    assert empty is not None
    with pytest.raises(InputDataError, match="holds no arrays"):
        read_volume(tmp_path / "empty.zarr")


def _write_with_a_hole(tmp_path, kind, volume):
    """``volume`` stored in chunks of (1, 16, 16), every chunk but the one at (3, 16, 16)."""
    hole = (slice(3, 4), slice(16, 32), slice(16, 30))
    if kind in ("zarr2", "zarr3"):
        path = tmp_path / "v.zarr"
        array = zarr.open_array(str(path), mode="w", shape=volume.shape, chunks=(1, 16, 16),
                                dtype="uint8", zarr_format=int(kind[-1]))  # fmt: skip
        for z in range(volume.shape[0]):
            for y in range(0, volume.shape[1], 16):
                for x in range(0, volume.shape[2], 16):
                    if (z, y, x) != (3, 16, 16):
                        array[z, y : y + 16, x : x + 16] = volume[z, y : y + 16, x : x + 16]
        return path, None, hole
    if kind == "hdf5":
        path = tmp_path / "v.h5"
        with h5py.File(path, "w") as handle:
            data = handle.create_dataset("raw", shape=volume.shape, chunks=(1, 16, 16), dtype="u1")
            for z in range(volume.shape[0]):
                if z != 3:
                    data[z] = volume[z]
                else:  # every chunk of slice 3 but the hole
                    data[z, :16] = volume[z, :16]
                    data[z, 32:] = volume[z, 32:]
                    data[z, 16:32, :16] = volume[z, 16:32, :16]
        return path, "raw", hole
    import tensorstore

    spec = {
        "driver": "n5", "kvstore": {"driver": "file", "path": str(tmp_path / "v.n5")},
        "path": "raw", "create": True,
        "metadata": {"dimensions": list(volume.shape[::-1]), "blockSize": [16, 16, 1],
                     "dataType": "uint8", "compression": {"type": "gzip"}},
    }  # fmt: skip
    array = tensorstore.open(spec).result().T
    array[...] = volume
    (tmp_path / "v.n5" / "raw" / "1" / "1" / "3").unlink()  # x, y, z
    return tmp_path / "v.n5", "raw", hole


@pytest.mark.parametrize("kind", ["zarr2", "zarr3", "hdf5", "n5"])
def test_a_missing_chunk_is_named_or_read_as_zeros_when_asked(tmp_path, volume, kind):
    path, key, hole = _write_with_a_hole(tmp_path, kind, volume)
    strict = read_volume(path, key=key)
    np.testing.assert_array_equal(np.asarray(strict.data[:3]), volume[:3])  # stored: read
    with pytest.raises(InputDataError, match=r"chunk of its .* at \(3, 16, 16\) is missing"):
        np.asarray(strict.data)
    lenient = np.asarray(read_volume(path, key=key, missing_chunks="zero").data)
    expected = volume.copy()
    expected[hole] = 0
    np.testing.assert_array_equal(lenient, expected)


def test_written_stores_keep_their_empty_chunks(tmp_path):
    """Our own output is complete to a strict reader: an all-zero mask block is stored."""
    store = BlockStore(str(tmp_path / "m.zarr"), (2, 32, 32), "uint8", (1, 16, 16), ("z", "y", "x"))
    store.create()
    store.write((slice(0, 2), slice(0, 32), slice(0, 32)), np.zeros((2, 32, 32), np.uint8), 0)
    store.finish("m")
    assert np.asarray(read_volume(tmp_path / "m.zarr").data).max() == 0
