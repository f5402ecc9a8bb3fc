"""Blockwise prediction equals the in-memory one; streaming output only completes once."""

import dataclasses

import h5py
import numpy as np
import pytest

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.blockwise.plan import make_plan
from napari_bnadapt.blockwise.predict import predict_block
from napari_bnadapt.blockwise.stream import StreamConfig, predict_to_zarr, predict_to_zarr_steps
from napari_bnadapt.cluster import ClusterConfig
from napari_bnadapt.errors import CancelledError, InputDataError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.volumes import read_volume
from napari_bnadapt.jobs import run_steps
from napari_bnadapt.model.parcel import Parcel
from napari_bnadapt.synthetic import SOURCE, make_volume

CPU = PredictConfig(device="cpu", tile_shape=32, batch_size=3)


@pytest.fixture
def volume() -> np.ndarray:
    return make_volume((5, 70, 90), SOURCE, seed=1)[0]


def assemble(model, image, config, block, voxel_size=None):
    plan = make_plan(model, image, config, block, voxel_size)
    probabilities = np.full(plan.layout.spatial_shape, np.nan, dtype=np.float32)
    mask = np.zeros(plan.layout.spatial_shape, dtype=np.uint8)
    for index in range(len(plan.blocks)):
        result = predict_block(model, plan, image, index, config)
        probabilities[result.region] = result.prediction.probabilities
        mask[result.region] = result.prediction.mask
    return probabilities, mask, plan


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_blocks_equal_the_in_memory_prediction_2d(small_model_2d, volume, slice_axis):
    config = PredictConfig(device="cpu", tile_shape=32, batch_size=3, slice_axis=slice_axis)
    reference = predict(small_model_2d, volume, config)
    # Blocks that divide no axis of the volume.
    probabilities, mask, plan = assemble(small_model_2d, volume, config, (2, 37, 41))
    assert len(plan.blocks) > 4
    np.testing.assert_allclose(probabilities, reference.probabilities, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mask, reference.mask)


def test_blocks_equal_the_in_memory_prediction_3d(small_model_3d):
    volume = make_volume((20, 44, 52), SOURCE, seed=2)[0]
    config = PredictConfig(device="cpu", tile_shape=16, batch_size=4)
    reference = predict(small_model_3d, volume, config)
    probabilities, mask, plan = assemble(small_model_3d, volume, config, 17)
    assert len(plan.blocks) == 2 * 3 * 4
    np.testing.assert_allclose(probabilities, reference.probabilities, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mask, reference.mask)


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_resampled_blocks_equal_the_in_memory_prediction_2d(small_model_2d, volume, slice_axis):
    """Each block resampled to the model's voxel size with its halo, and back: the
    in-memory prediction, which resamples the whole volume (anisotropic in plane). The
    resampled input is bit for bit the same; probabilities differ by at most 1e-6 only
    because the network runs the same tiles in other batches (as without resampling)."""
    small_model_2d.metadata["voxel_size"] = [4.0, 4.0]
    size = (50.0, 6.1, 5.3)
    config = PredictConfig(device="cpu", tile_shape=32, batch_size=3, slice_axis=slice_axis)
    reference = predict(small_model_2d, volume, config, voxel_size=size)
    probabilities, mask, plan = assemble(small_model_2d, volume, config, (2, 37, 41), size)
    assert plan.resampled and len(plan.blocks) > 4
    np.testing.assert_allclose(probabilities, reference.probabilities, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mask, reference.mask)


def test_resampled_blocks_equal_the_in_memory_prediction_3d(small_model_3d):
    small_model_3d.metadata["voxel_size"] = [8.0, 4.0, 4.0]
    small_model_3d.normalization = NormalizationSpec(mode="percentile")
    volume = make_volume((20, 44, 52), SOURCE, seed=2)[0]
    config = PredictConfig(device="cpu", tile_shape=16, batch_size=4)
    size = (5.0, 7.0, 3.0)  # finer in z, coarser in y, finer in x than the model
    reference = predict(small_model_3d, volume, config, voxel_size=size)
    probabilities, mask, plan = assemble(small_model_3d, volume, config, 17, size)
    assert plan.model_shape == (12, 77, 39) and len(plan.blocks) > 4
    np.testing.assert_allclose(probabilities, reference.probabilities, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mask, reference.mask)


def test_a_zarr_at_another_voxel_size_streams_to_zarr_as_in_memory(tmp_path, small_model_2d):
    import zarr

    small_model_2d.metadata["voxel_size"] = [4.0, 4.0]
    volume = make_volume((3, 90, 70), SOURCE, seed=4)[0]
    stored = zarr.create_array(str(tmp_path / "v.zarr"), shape=volume.shape, dtype="uint8",
                               chunks=(1, 32, 32))  # fmt: skip
    stored[...] = volume
    source = read_volume(tmp_path / "v.zarr").source
    size = (30.0, 9.0, 9.0)
    result = predict_to_zarr(
        small_model_2d, source, tmp_path / "m.zarr", CPU, probabilities=tmp_path / "p.zarr",
        stream=StreamConfig(block=(2, 40, 40)), scale=size, unit="nm", voxel_size=size,
    )  # fmt: skip
    reference = predict(small_model_2d, volume, CPU, voxel_size=size)
    assert result.zoom == pytest.approx((1.0, 202 / 90, 158 / 70))  # 9 nm → 4 nm
    np.testing.assert_array_equal(np.asarray(read_volume(result.out).data), reference.mask)
    probabilities = np.asarray(read_volume(result.probabilities).data)
    np.testing.assert_allclose(probabilities, reference.probabilities, rtol=0, atol=1e-6)


def write_h5(path, volume):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("raw", data=volume, chunks=(1, 32, 32)).attrs["resolution"] = [
            50,
            5,
            5,
        ]
    return read_volume(path).source


def test_stream_from_hdf5_to_ome_zarr(tmp_path, small_model_2d, volume):
    source = write_h5(tmp_path / "v.h5", volume)
    reference = predict(small_model_2d, volume, CPU)
    steps = []
    result = predict_to_zarr(
        small_model_2d, source, tmp_path / "m.zarr", CPU, probabilities=tmp_path / "p.zarr",
        stream=StreamConfig(block=(2, 40, 40)), scale=(50.0, 5.0, 5.0), unit="nm",
        progress=steps.append,
    )  # fmt: skip
    assert result.blocks == 3 * 2 * 3 and result.resumed == 0
    assert [s.done for s in steps] == list(range(result.blocks + 1))
    assert "Mvoxel/s, ETA" in steps[-1].detail
    mask = read_volume(result.out)
    assert mask.voxel_size == pytest.approx((50.0, 5.0, 5.0))
    np.testing.assert_array_equal(np.asarray(mask.data), reference.mask)
    probabilities = np.asarray(read_volume(result.probabilities).data)
    np.testing.assert_allclose(probabilities, reference.probabilities, atol=1e-6)
    assert result.foreground_fraction == pytest.approx(reference.mask.mean())
    assert not (tmp_path / "m.zarr.partial").exists()


def test_a_failure_leaves_no_complete_store_and_resume_finishes_it(
    tmp_path, small_model_2d, volume, monkeypatch
):
    from napari_bnadapt.blockwise import stream

    out = tmp_path / "m.zarr"
    calls = {"n": 0}
    real = stream.predict_block

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise MemoryError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "predict_block", failing)
    with pytest.raises(MemoryError):
        predict_to_zarr(small_model_2d, volume, out, CPU, stream=StreamConfig(block=(2, 40, 40)))
    assert not out.exists() and (tmp_path / "m.zarr.partial").exists()
    with pytest.raises(Exception):  # noqa: B017 - the partial store is no image
        read_volume(tmp_path / "m.zarr.partial")
    monkeypatch.setattr(stream, "predict_block", real)
    result = predict_to_zarr(
        small_model_2d, volume, out, CPU, stream=StreamConfig(block=(2, 40, 40), resume=True)
    )
    assert result.resumed == 3
    whole = predict(small_model_2d, volume, CPU).mask
    np.testing.assert_array_equal(np.asarray(read_volume(out).data), whole)
    # The whole mask's foreground, not only the blocks predicted on resume.
    assert result.foreground_fraction == pytest.approx(np.mean(whole > 0))


def test_cancel_leaves_the_previous_output_untouched(tmp_path, small_model_2d, volume):
    out = tmp_path / "m.zarr"
    predict_to_zarr(small_model_2d, volume, out, CPU, stream=StreamConfig(block=(2, 40, 40)))
    before = np.asarray(read_volume(out).data).copy()
    steps = predict_to_zarr_steps(
        small_model_2d, 255 - volume, out, CPU, stream=StreamConfig(block=(2, 40, 40))
    )
    seen = []
    with pytest.raises(CancelledError):
        run_steps(steps, seen.append, should_stop=lambda: len(seen) > 2)
    np.testing.assert_array_equal(np.asarray(read_volume(out).data), before)


def test_output_names_are_checked(tmp_path, small_model_2d, volume):
    (tmp_path / "taken.zarr").mkdir()
    (tmp_path / "taken.zarr" / "notes.txt").write_text("mine")
    from napari_bnadapt.errors import InputDataError

    with pytest.raises(InputDataError, match="not a zarr store"):
        predict_to_zarr(small_model_2d, volume, tmp_path / "taken.zarr", CPU)
    assert (tmp_path / "taken.zarr" / "notes.txt").read_text() == "mine"


def test_a_zarr_store_this_tool_did_not_write_is_never_replaced(tmp_path, small_model_2d, volume):
    """A walkthrough's `--out victim.zarr` replaced the user's store (its image and notes)
    with a mask. Only a mask or map this package wrote (its record) is replaced."""
    import zarr

    from napari_bnadapt.errors import OutputPathError

    theirs = tmp_path / "theirs.zarr"
    zarr.open_group(str(theirs), mode="w").create_array("raw", data=volume)
    (theirs / "notes").mkdir()
    (theirs / "notes" / "readme.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="this tool did not write"):
        predict_to_zarr(small_model_2d, volume, theirs, CPU)
    assert (theirs / "notes" / "readme.txt").read_text() == "mine"
    np.testing.assert_array_equal(zarr.open_group(str(theirs), mode="r")["raw"][:], volume)
    ours = tmp_path / "mask.zarr"
    predict_to_zarr(small_model_2d, volume, ours, CPU)
    predict_to_zarr(small_model_2d, 255 - volume, ours, CPU)  # an earlier mask: replaced
    assert read_volume(ours).data.shape == volume.shape


def test_torchscript_models_travel_to_workers(small_model_2d):
    import pickle

    import torch

    traced = small_model_2d.copy()
    traced.module = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    copy = pickle.loads(pickle.dumps(Parcel(traced)))
    x = torch.rand(1, 1, 32, 32)
    assert isinstance(copy.model.module, torch.jit.ScriptModule)
    assert torch.equal(copy.model.module(x), traced.module(x))


@pytest.mark.slow
def test_two_workers_give_the_single_process_result(tmp_path, small_model_2d, volume):
    source = write_h5(tmp_path / "v.h5", volume)
    block = StreamConfig(block=(2, 40, 40))
    local = predict_to_zarr(small_model_2d, source, tmp_path / "a.zarr", CPU, stream=block)
    spread = StreamConfig(block=(2, 40, 40), cluster=ClusterConfig(workers=2))
    distributed = predict_to_zarr(small_model_2d, source, tmp_path / "b.zarr", CPU, stream=spread)
    assert distributed.dashboard and distributed.dashboard.startswith("http")
    np.testing.assert_array_equal(
        np.asarray(read_volume(local.out).data), np.asarray(read_volume(distributed.out).data)
    )


@pytest.mark.slow
def test_a_damaged_chunk_read_on_a_worker_is_one_line_and_no_complete_store(
    tmp_path, small_model_2d, volume
):
    """A chunk of the input damaged on disk, read by a dask.distributed worker: the run
    stops with the project's one-line error (sent back from the worker) and leaves only
    the ``.partial`` store."""
    import zarr

    from napari_bnadapt.errors import InputDataError

    path = tmp_path / "damaged.zarr"
    stored = zarr.create_array(
        str(path), shape=volume.shape, dtype=volume.dtype, chunks=(2, 40, 40)
    )
    stored[...] = volume
    chunk = sorted(p for p in (path / "c").rglob("*") if p.is_file())[-1]
    chunk.write_bytes(b"not a chunk")
    source = read_volume(path).source
    spread = StreamConfig(block=(2, 40, 40), cluster=ClusterConfig(workers=2))
    out = tmp_path / "mask.zarr"
    with pytest.raises(InputDataError, match="could not be read"):
        predict_to_zarr(small_model_2d, source, out, CPU, stream=spread)
    assert not out.exists() and (tmp_path / "mask.zarr.partial").exists()


def _interrupted(tmp_path, model, volume, monkeypatch, block=(2, 40, 40)):
    """A run killed after three blocks: its ``.partial`` store is left."""
    from napari_bnadapt.blockwise import stream

    real, calls = stream.predict_block, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise MemoryError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "predict_block", failing)
    with pytest.raises(MemoryError):
        predict_to_zarr(model, volume, tmp_path / "m.zarr", CPU, stream=StreamConfig(block=block))
    monkeypatch.setattr(stream, "predict_block", real)
    return tmp_path / "m.zarr.partial"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("statistics", "another model or other statistics"),
        ("block", "block [2, 40, 40] there, [2, 48, 48] now"),
        ("tile", "tile"),
        ("threshold", "threshold 0.5 there, 0.7 now"),
        ("input", "input"),
        ("voxel size", "voxel_size"),
    ],
)
def test_resume_refuses_a_store_begun_by_another_run(
    tmp_path, small_model_2d, volume, monkeypatch, change, said
):
    from napari_bnadapt.adapt import adapt

    partial = _interrupted(tmp_path, small_model_2d, volume, monkeypatch)
    model, image, config, block, scale = small_model_2d, volume, CPU, (2, 40, 40), None
    if change == "statistics":
        model = adapt(small_model_2d, 255 - volume).model
    elif change == "block":
        block = (2, 48, 48)
    elif change == "tile":
        config = dataclasses.replace(CPU, tile_shape=16)
    elif change == "threshold":
        config = dataclasses.replace(CPU, threshold=0.7)
    elif change == "input":
        image = volume[:, :-1]
    else:
        scale = (50.0, 4.0, 4.0)
    before = sorted(p.name for p in partial.rglob("*"))
    with pytest.raises(InputDataError, match="begun by another run") as error:
        predict_to_zarr(
            model, image, tmp_path / "m.zarr", config, scale=scale,
            stream=StreamConfig(block=block, resume=True),
        )  # fmt: skip
    assert said in str(error.value) and "\n" not in str(error.value)
    assert sorted(p.name for p in partial.rglob("*")) == before  # the store is kept as it was


def test_resume_refuses_a_store_that_does_not_say_what_made_it(
    tmp_path, small_model_2d, volume, monkeypatch
):
    import zarr

    from napari_bnadapt.io.ome_zarr_writer import RUN_ATTRIBUTE

    partial = _interrupted(tmp_path, small_model_2d, volume, monkeypatch)
    del zarr.open_group(str(partial), mode="r+").attrs[RUN_ATTRIBUTE]
    with pytest.raises(InputDataError, match="does not say which run made it"):
        predict_to_zarr(
            small_model_2d, volume, tmp_path / "m.zarr", CPU,
            stream=StreamConfig(block=(2, 40, 40), resume=True),
        )  # fmt: skip
