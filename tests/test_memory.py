"""The memory budget: estimated before allocating, refused in one line that names the
cause and the fix; --max-memory lowers it for one command."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_bnadapt import memory
from napari_bnadapt.arrays.resampling import resample
from napari_bnadapt.cli import main
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.inference import PredictConfig, predict


@pytest.fixture
def one_gigabyte(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)


@pytest.mark.parametrize(
    ("text", "size"), [("8G", 8 * 1024**3), ("512M", 512 * 1024**2), ("2.5g", int(2.5 * 1024**3)),
                       ("4096", 4096), ("1kb", 1024), ("3GiB", 3 * 1024**3)],
)  # fmt: skip
def test_sizes_are_read_as_people_write_them(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["abc", "-1G", "0", "nan", "1e308G", ""])
def test_bad_sizes_are_one_line(text):
    with pytest.raises(InputDataError, match="--max-memory"):
        memory.parse_size(text)


def test_the_limit_holds_only_inside_its_block(one_gigabyte):
    assert memory.budget_bytes() == int(memory.SHARE * 10**9)
    with memory.memory_limit(1000):
        assert memory.budget_bytes() == 1000
        with pytest.raises(InputDataError, match=r"allowed by --max-memory.*raise --max-memory"):
            memory.check_memory(2000, "a test allocation", "do less")
    assert memory.budget_bytes() == int(memory.SHARE * 10**9)


def test_an_absurd_resampling_is_refused_before_it_allocates(one_gigabyte):
    image = np.zeros((4, 64, 64), np.uint8)
    with pytest.raises(InputDataError, match=r"resampling .* would need about .* free to use"):
        resample(image, (1, 500, 500))
    with pytest.raises(InputDataError, match="would leave 4×0×0 px"):
        resample(image, (1, 1e-4, 1e-4))
    assert resample(image, (1, 2, 2)).shape == (4, 128, 128)


def test_a_declared_volume_too_large_for_memory_is_refused_up_front(small_model_2d, one_gigabyte):
    import dask.array as da

    huge = da.zeros((4000, 4000, 4000), dtype=np.uint8, chunks=(1, 4000, 4000))
    with pytest.raises(InputDataError, match=r"in memory .* \(--out mask\.zarr\)"):
        predict(small_model_2d, huge, PredictConfig(device="cpu"))


def test_tiles_shrink_to_fit_the_budget_before_the_forward_pass(small_model_2d, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (96, 96)).astype(np.uint8)
    reference = predict(small_model_2d, image, PredictConfig(device="cpu", tile_shape=64))
    # Room for one 32² tile's activations, not for one of 64² (the estimate of forward.py).
    monkeypatch.setattr(memory, "available_bytes", lambda: 32 * 32 * 4 * 4 * 6 * 2.5)
    shrunk = predict(small_model_2d, image, PredictConfig(device="cpu", tile_shape=64))
    np.testing.assert_allclose(shrunk.probabilities, reference.probabilities, atol=0.05)


def test_max_memory_on_the_command_line(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "img.tif", np.zeros((4, 64, 64), np.uint8))
    out = tmp_path / "m.tif"
    argv = ["predict", "--model", "demo", "--input", str(tmp_path / "img.tif"), "--out", str(out)]
    assert main([*argv, "--max-memory", "64K"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-memory" in err and not out.exists()
    assert main([*argv, "--max-memory", "2G"]) == 0 and out.exists()
