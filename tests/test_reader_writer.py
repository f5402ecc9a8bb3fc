"""Reader and writer: round trips keep data and voxel size; bad files give a message."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_bnadapt._reader import get_reader, read_layers
from napari_bnadapt._writer import write_image, write_labels
from napari_bnadapt.errors import InputDataError, OutputPathError
from napari_bnadapt.io.volumes import read_volume

VOXEL = (10.0, 5.0, 5.0)


@pytest.fixture
def volume() -> np.ndarray:
    return (np.random.default_rng(0).random((5, 32, 40)) * 255).astype(np.uint8)


def test_labels_and_images_round_trip_with_their_scale(tmp_path, volume):
    labels = (volume > 128).astype(np.int32) * 3
    meta = {"scale": VOXEL, "units": ("nm", "nm", "nm")}
    [path] = write_labels(str(tmp_path / "mask.tif"), labels, meta)
    [layer] = get_reader(path)(path)
    data, layer_meta, kind = layer
    np.testing.assert_array_equal(data, labels)
    # Saved from a labels layer (painted strokes, a mask): opened as labels again.
    assert data.dtype == np.uint8 and kind == "labels" and layer_meta["name"] == "mask"
    assert layer_meta["scale"] == VOXEL and layer_meta["units"] == ("nm",) * 3
    [path] = write_image(str(tmp_path / "image"), volume.astype(np.float32), meta)
    assert path.endswith(".tif")
    np.testing.assert_array_equal(read_volume(path).data, volume)
    assert get_reader(path)(path)[0][2] == "image"
    # A label image from elsewhere (integers of a few values: a ground truth) opens as
    # labels too: as an image it became the image to segment and the target. An 8-bit
    # image of many grey levels, or a float one, stays an image.
    for name, data, kind in (
        ("truth.tif", (volume > 128).astype(np.uint8), "labels"),
        ("classes.tif", (volume // 32).astype(np.uint16), "labels"),
        ("em.tif", volume.astype(np.uint8), "image"),
        ("binary float.tif", (volume > 128).astype(np.float32), "image"),
    ):
        tifffile.imwrite(tmp_path / name, data)
        assert read_layers(str(tmp_path / name))[0][2] == kind, name


def test_layers_come_in_nm_with_named_axes(tmp_path, volume):
    # An ImageJ stack in µm beside the samples (nm) would be drawn 1000× smaller, and
    # napari's slider would read "-3" instead of "z".
    tifffile.imwrite(
        tmp_path / "um.tif", volume, imagej=True, resolution=(200.0, 200.0),
        metadata={"spacing": 0.01, "unit": "um", "axes": "ZYX"},
    )  # fmt: skip
    [(_, meta, _)] = read_layers(str(tmp_path / "um.tif"))
    assert meta["scale"] == pytest.approx(VOXEL) and meta["units"] == ("nm",) * 3
    assert meta["axis_labels"] == ("z", "y", "x")
    tifffile.imwrite(tmp_path / "plain.tif", volume[0], photometric="minisblack")
    [(_, meta, _)] = read_layers(str(tmp_path / "plain.tif"))
    assert meta["axis_labels"] == ("y", "x") and "scale" not in meta


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint32, np.float64, bool])
@pytest.mark.parametrize("slices", [3, 4])
def test_any_type_keeps_its_slices_and_voxel_size(tmp_path, dtype, slices):
    # 3 or 4 slices of a type ImageJ cannot hold were once stored as one RGB image without
    # a voxel size (int16 EM, labels beyond 65,535, float64 images).
    data = np.random.default_rng(1).integers(0, 2, (slices, 16, 24)).astype(dtype)
    meta = {"scale": VOXEL, "units": ("nm", "nm", "nm")}
    with tifffile.TiffFile(write_image(str(tmp_path / "x.tif"), data, meta)[0]) as tif:
        assert len(tif.pages) == slices and tif.pages[0].photometric != 2  # not RGB
    volume = read_volume(tmp_path / "x.tif")
    np.testing.assert_array_equal(volume.data, data)
    assert volume.scale == VOXEL and volume.units == ("nm",) * 3


def test_rgb_layers_are_saved_as_colour_images(tmp_path):
    # An RGB layer was once written as a stack of H slices of W x 3 pixels.
    rgb = np.random.default_rng(2).integers(0, 255, (20, 30, 3)).astype(np.uint8)
    meta = {"rgb": True, "scale": (5.0, 5.0), "units": ("nm", "nm")}
    [path] = write_image(str(tmp_path / "photo.tif"), rgb, meta)
    [(data, layer_meta, kind)] = get_reader(path)(path)
    np.testing.assert_array_equal(data, rgb)
    assert layer_meta["rgb"] and layer_meta["scale"] == (5.0, 5.0) and kind == "image"
    with pytest.raises(InputDataError, match="colour samples"):
        write_image(str(tmp_path / "bad.tif"), rgb[..., :2], meta)
    assert not (tmp_path / "bad.tif").exists()


class Tracked:
    """An on-disk-like volume that records how many voxels each read asks for."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim, self.reads = (
            array,
            array.shape,
            array.dtype,
            3,
            [],
        )

    def __getitem__(self, index):
        part = self.array[index]
        self.reads.append(part.size)
        return part


def test_a_lazy_layer_is_saved_slice_by_slice(tmp_path, monkeypatch, volume):
    from napari_bnadapt.io import images

    monkeypatch.setattr(images, "WRITE_PAGEWISE_ABOVE", 1000)
    meta = {"scale": VOXEL, "units": ("nm", "nm", "nm")}
    source = Tracked(volume.astype(np.int32) * 300)
    [path] = write_labels(str(tmp_path / "mask.tif"), source, meta)
    saved = read_volume(path)
    np.testing.assert_array_equal(saved.data, source.array)
    assert saved.data.dtype == np.uint32 and saved.scale == VOXEL and saved.labels
    source.reads.clear()
    [path] = write_image(str(tmp_path / "image.tif"), source, meta)
    np.testing.assert_array_equal(read_volume(path).data, source.array)
    assert max(source.reads) <= volume[0].size  # never more than one slice at a time


def test_grey_saved_as_colour_is_read_as_grey(tmp_path, volume):
    from PIL import Image

    from napari_bnadapt.io.images import read_named_image, to_grey

    grey = volume[0]
    rgb = np.stack([grey] * 3, axis=-1)
    tifffile.imwrite(tmp_path / "em.tif", rgb, photometric="rgb")
    Image.fromarray(rgb).save(tmp_path / "em.png")
    Image.fromarray(np.dstack([rgb, np.full_like(grey, 255)])).save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), mode="LA").save(tmp_path / "la.png")
    for name in ("em.tif", "em.png", "rgba.png", "la.png"):
        read = read_named_image(tmp_path / name).data
        assert read.dtype == np.uint8, name
        np.testing.assert_array_equal(read, grey, err_msg=name)
    colour = rgb.astype(np.float32) * np.array([1.0, 0.5, 0.0], np.float32)
    np.testing.assert_allclose(to_grey(colour), grey * 0.5, rtol=1e-6)
    np.testing.assert_allclose(to_grey(da.from_array(colour)).compute(), grey * 0.5, rtol=1e-6)
    assert to_grey(volume) is volume  # 5 slices of 40 pixels: not colour


def test_ome_imagej_bigtiff_and_mrc_voxel_sizes(tmp_path, volume):
    import mrcfile

    tifffile.imwrite(
        tmp_path / "a.ome.tif", volume, ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.005, "PhysicalSizeY": 0.005,
                  "PhysicalSizeZ": 0.01},
    )  # fmt: skip
    ome = read_volume(tmp_path / "a.ome.tif")
    assert ome.scale == (0.01, 0.005, 0.005) and ome.units == ("µm",) * 3
    tifffile.imwrite(
        tmp_path / "ij.tif", volume, imagej=True, resolution=(0.2, 0.2),
        metadata={"spacing": 10.0, "unit": "nm", "axes": "ZYX"},
    )  # fmt: skip
    assert read_volume(tmp_path / "ij.tif").scale == pytest.approx(VOXEL)
    tifffile.imwrite(tmp_path / "big.tif", volume, bigtiff=True)
    plain = read_volume(tmp_path / "big.tif")
    assert plain.scale is None and plain.data.shape == volume.shape
    with mrcfile.new(tmp_path / "t.mrc") as mrc:
        mrc.set_data(volume.astype(np.float32))
        mrc.voxel_size = (50.0, 50.0, 100.0)  # Å, x y z
    tomo = read_volume(tmp_path / "t.mrc")
    assert tomo.scale == pytest.approx(VOXEL) and tomo.units == ("nm",) * 3
    np.testing.assert_array_equal(tomo.data, volume)


def test_large_files_open_lazily(tmp_path, volume):
    tifffile.imwrite(tmp_path / "raw.tif", volume)
    tifffile.imwrite(tmp_path / "zip.tif", volume, compression="zlib")
    raw = read_volume(tmp_path / "raw.tif", lazy_above=0)
    packed = read_volume(tmp_path / "zip.tif", lazy_above=0)
    assert raw.lazy and isinstance(raw.data, np.memmap)
    assert packed.lazy and type(packed.data).__name__ == "Array"  # dask
    np.testing.assert_array_equal(np.asarray(packed.data), volume)
    [(data, meta, _)] = read_layers(str(tmp_path / "zip.tif"), lazy_above=0)
    assert meta["metadata"]["lazy"] and data.shape == volume.shape


def test_reader_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "missing.tif")) is None
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) is None


def test_corrupt_tiff_gives_a_notification_not_a_traceback(tmp_path, volume, monkeypatch):
    tifffile.imwrite(tmp_path / "good.tif", volume)
    (tmp_path / "bad.tif").write_bytes((tmp_path / "good.tif").read_bytes()[:300])
    with pytest.raises(InputDataError, match="truncated or corrupt"):
        read_volume(tmp_path / "bad.tif")
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    reader = get_reader(str(tmp_path / "bad.tif"))
    assert reader(str(tmp_path / "bad.tif")) == [(None,)]  # npe2: handled, nothing to add
    assert len(shown) == 1 and "bad.tif" in shown[0] and "re-export" in shown[0]


@pytest.mark.parametrize(
    "options", [{"imagej": True}, {"compression": "zlib"}, {"contiguous": False}, {}]
)
def test_a_cut_tiff_stack_is_refused_or_read_whole(tmp_path, options):
    """A stack cut short (a copy that stopped) reads back whole or is refused: tifffile
    alone read half an ImageJ stack, or of a compressed one, as its first slice, and a
    walkthrough segmented that slice with exit code 0."""
    stack = (np.arange(10 * 32 * 32) % 251).astype(np.uint8).reshape(10, 32, 32)
    tifffile.imwrite(tmp_path / "whole.tif", stack, **options)
    whole = (tmp_path / "whole.tif").read_bytes()
    refused = 0
    for cut in np.linspace(0.1, 0.995, 15):
        path = tmp_path / f"cut{cut:.3f}.tif"
        path.write_bytes(whole[: int(len(whole) * cut)])
        try:
            data = np.asarray(read_volume(path).data)
        except InputDataError as exc:
            refused += 1
            assert "truncated" in str(exc) and path.name in str(exc)
            continue
        np.testing.assert_array_equal(data, stack)
    assert refused >= 10


def test_only_the_reading_thread_s_tifffile_errors_refuse_a_file():
    """A worker reading another file at the same time does not make this one damaged."""
    import logging
    import threading

    from napari_bnadapt.io.volumes import tifffile_complaints

    log = logging.getLogger("tifffile")
    with tifffile_complaints() as found:
        worker = threading.Thread(target=lambda: log.error("<TiffPages @8> elsewhere"))
        worker.start()
        worker.join()
        assert found == []
        log.error("<TiffPages @8> invalid page offset 1")
    assert found == ["invalid page offset 1"]


def test_containers_open_lazily_multiscale_as_multiscale(tmp_path, volume):
    import h5py
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    root = zarr.group(store=parse_url(str(tmp_path / "v.ome.zarr"), mode="w").store)
    write_image(volume, root, axes="zyx", scale_factors=(2,))
    reader = get_reader(str(tmp_path / "v.ome.zarr"))
    assert reader is not None
    [(levels, meta, kind)] = reader(str(tmp_path / "v.ome.zarr"))
    assert kind == "image" and meta["multiscale"] and len(levels) == 2
    assert type(levels[0]).__module__.startswith("dask")

    with h5py.File(tmp_path / "v.h5", "w") as handle:
        handle["raw"] = volume
        handle["mito"] = (volume > 128).astype(np.uint8)
    layers = get_reader(str(tmp_path / "v.h5"))(str(tmp_path / "v.h5"))
    assert [meta["name"] for _, meta, _ in layers] == ["v-mito", "v-raw"]
    assert all(type(data).__module__.startswith("dask") for data, _, _ in layers)
    # The annotation opens as labels (as an image it was offered as the image to segment).
    assert [kind for _, _, kind in layers] == ["labels", "image"]
    assert get_reader(str(tmp_path / "missing.zarr")) is None


def test_saving_over_the_file_a_layer_was_read_from_is_refused(tmp_path, volume):
    path = tmp_path / "em.tif"
    tifffile.imwrite(path, volume)
    before = path.read_bytes()
    data, meta, _ = read_layers(str(path))[0]
    with pytest.raises(OutputPathError, match="could destroy your input"):
        write_labels(str(path), (np.asarray(data) > 100).astype(np.uint8), meta)
    with pytest.raises(OutputPathError, match="could destroy your input"):
        write_image(str(tmp_path / "em"), data, meta)  # the writer adds .tif: the same file
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["em.tif"]


@pytest.mark.qt
def test_napari_refuses_to_save_a_mask_over_an_open_image(make_napari_viewer, tmp_path, volume):
    path = tmp_path / "em.tif"
    tifffile.imwrite(path, volume)
    before = path.read_bytes()
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-bnadapt")
    mask = viewer.add_labels((volume > 100).astype(np.uint8), name="mask")
    viewer.layers.selection = {mask}
    with pytest.raises(OutputPathError, match="could destroy your input"):
        viewer.layers.save(str(path), selected=True, plugin="napari-bnadapt")
    assert path.read_bytes() == before


def test_saved_strokes_keep_their_target_under_any_file_name(tmp_path):
    """The strokes layer's target (its metadata) goes into the file and comes back, so a
    strokes file called anything is still the target's strokes; names of any script too."""
    from napari_bnadapt.io.volumes import STROKES_TARGET

    strokes = np.zeros((2, 16, 16), np.uint8)
    strokes[0, 4, 2:12] = 2
    meta = {"scale": VOXEL, "metadata": {STROKES_TARGET: "cryo FIB-SEM é 2"}}
    [path] = write_labels(str(tmp_path / "my strokes.tif"), strokes, meta)
    assert read_volume(path).painted_on == "cryo FIB-SEM é 2"
    [(_data, layer_meta, kind)] = get_reader(path)(path)
    assert kind == "labels" and layer_meta["metadata"][STROKES_TARGET] == "cryo FIB-SEM é 2"
    [path] = write_labels(str(tmp_path / "mask.tif"), strokes, {"scale": VOXEL})
    assert read_volume(path).painted_on is None  # a mask: no target
