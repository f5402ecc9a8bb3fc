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
