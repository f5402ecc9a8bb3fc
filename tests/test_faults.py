"""Faults injected into adaptation, prediction, report and writing, at several batches.

After each: the loaded model's state dict is bit-identical, the user's files are as they
were, and no partial output looks complete. Out-of-memory in prediction is survived by
smaller tile batches, and said.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.cli import main
from napari_bnadapt.errors import CancelledError, InputDataError, OutputPathError
from napari_bnadapt.inference import PredictConfig, predict, tile_geometry
from napari_bnadapt.io.images import write_tiff
from napari_bnadapt.model import save_model
from napari_bnadapt.report import build_report, write_report
from napari_bnadapt.synthetic import SHIFTS, make_volume

ADAPT = AdaptConfig(patches=32, patch_size=32, batch_size=8)
PREDICT = PredictConfig(device="cpu", tile_shape=32, batch_size=4)
FAULTS = {
    "exception": lambda: RuntimeError("injected fault"),
    "host out of memory": lambda: MemoryError("injected"),
    "CUDA out of memory": lambda: torch.cuda.OutOfMemoryError("CUDA out of memory (injected)"),
}


class FailAt:
    """A forward pre-hook on the network's first layer that raises at call ``k`` (and, with
    ``always``, every call after): shared by deep copies, as the engine copies models."""

    def __init__(self, module: torch.nn.Module, k: int, fault, always: bool = False) -> None:
        self.calls, self.k, self.fault, self.always = 0, k, fault, always
        first = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
        self.handle = first.register_forward_pre_hook(self)

    def __call__(self, *_):
        self.calls += 1
        if self.calls - 1 == self.k or (self.always and self.calls - 1 > self.k):
            raise self.fault()

    def remove(self):
        self.handle.remove()


@pytest.fixture
def target() -> np.ndarray:
    return make_volume((4, 96, 96), SHIFTS["brightness"], seed=4)[0]


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def assert_unchanged(model, before) -> None:
    after = model.module.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert model.adaptation is None and not model.input_steps


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("k", [0, 1, 3])
def test_a_fault_during_adaptation_changes_nothing(small_model_2d, target, fault, k):
    before = snapshot(small_model_2d)
    hook = FailAt(small_model_2d.module, k, FAULTS[fault])
    with pytest.raises((RuntimeError, MemoryError)):
        adapt(small_model_2d, target, ADAPT)
    hook.remove()
    assert_unchanged(small_model_2d, before)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_a_cancel_at_batch_k_changes_nothing(small_model_2d, target, k):
    before = snapshot(small_model_2d)
    steps = {"n": 0}

    def stop() -> bool:
        steps["n"] += 1
        return steps["n"] > k

    with pytest.raises(CancelledError):
        adapt(small_model_2d, target, ADAPT, should_stop=stop)
    assert_unchanged(small_model_2d, before)


@pytest.mark.parametrize("fault", ["host out of memory", "CUDA out of memory"])
@pytest.mark.parametrize("k", [0, 2])
def test_prediction_survives_out_of_memory_with_smaller_batches(small_model_2d, target, fault, k):
    reference = predict(small_model_2d, target, PREDICT).probabilities
    hook = FailAt(small_model_2d.module, k, FAULTS[fault])
    messages: list[str] = []
    result = predict(small_model_2d, target, PREDICT, progress=lambda s: messages.append(s.message))
    hook.remove()
    np.testing.assert_allclose(result.probabilities, reference, atol=1e-6)
    assert any("out of memory: 2 tile(s) per pass" in m for m in messages)


def test_one_tile_out_of_memory_says_what_to_do(small_model_2d, target, tmp_path, capsys):
    hook = FailAt(small_model_2d.module, 0, FAULTS["host out of memory"], always=True)
    with pytest.raises(InputDataError, match="--tile"):
        predict(small_model_2d, target, PREDICT)
    model_path, image_path, out = tmp_path / "m.pt", tmp_path / "t.tif", tmp_path / "mask.tif"
    hook.remove()
    save_model(small_model_2d, model_path)
    write_tiff(image_path, target)
    # In the CLI the hook is gone with the process: inject it again at load.
    from napari_bnadapt.cli import common

    real = common.load_model

    def load_failing(*args, **kwargs):
        model = real(*args, **kwargs)
        FailAt(model.module, 0, FAULTS["host out of memory"], always=True)
        return model

    common.load_model = load_failing
    try:
        code = main(["predict", "--model", str(model_path), "--input", str(image_path),
                     "--out", str(out), "--tile", "32"])  # fmt: skip
    finally:
        common.load_model = real
    assert code == 2 and not out.exists()
    assert "out of memory with a single 8×8 tile" in capsys.readouterr().err  # after 32, 16


def test_tiles_too_large_for_memory_are_halved_and_said(small_model_2d, target):
    """Tiles above 16² do not fit (simulated): prediction goes on with tiles halved until
    they fit, says so, and equals a run configured with the tiles it ended with."""

    def large_tiles_fail(_module, inputs):
        if inputs[0].shape[-1] > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    # Measured before the fault: the network's receptive field (cached), which the
    # injected fault must not hit (it stands for tiles, not for the probe).
    tile_geometry(small_model_2d, PREDICT, target.shape[1:])
    first = next(m for m in small_model_2d.module.modules() if isinstance(m, torch.nn.Conv2d))
    handle = first.register_forward_pre_hook(large_tiles_fail)
    messages: list[str] = []
    result = predict(small_model_2d, target, PREDICT, progress=lambda s: messages.append(s.message))
    handle.remove()
    said = [m for m in messages if "out of memory with one tile: tiles of" in m]
    assert said, messages
    last = int(said[-1].split("tiles of ")[1].split("×")[0])
    assert last < 32
    again = PredictConfig(device="cpu", tile_shape=last, batch_size=4)
    expected = predict(small_model_2d, target, again).probabilities
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)


@pytest.mark.parametrize("k", [0, 5])
def test_a_fault_in_the_report_writes_nothing(small_model_2d, target, tmp_path, k):
    before = snapshot(small_model_2d)
    hook = FailAt(small_model_2d.module, k, FAULTS["exception"])
    out = tmp_path / "report"
    out.mkdir()
    with pytest.raises(RuntimeError):
        report = build_report(small_model_2d, target, adapt_config=ADAPT, predict_config=PREDICT)
        write_report(report, out)
    hook.remove()
    assert_unchanged(small_model_2d, before)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("writer", ["model", "tiff"])
def test_a_write_that_fails_midway_keeps_the_previous_file(
    small_model_2d, tmp_path, monkeypatch, writer
):
    path = tmp_path / ("model.pt" if writer == "model" else "mask.tif")
    path.write_bytes(b"the user's previous file")

    def torn(obj, target, *args, **kwargs):  # writes half, then the disk is full
        with open(target, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    full = "no space left on device; choose a folder you can write to"
    if writer == "model":
        monkeypatch.setattr(torch, "save", torn)
        with pytest.raises(OutputPathError, match=full):
            save_model(small_model_2d, path)
    else:
        import tifffile

        monkeypatch.setattr(tifffile, "imwrite", lambda target, *a, **k: torn(None, target))
        with pytest.raises(OutputPathError, match=full):
            write_tiff(path, np.zeros((8, 8), np.uint8))
    assert path.read_bytes() == b"the user's previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_an_output_folder_that_cannot_be_written_is_one_line(
    small_model_2d, target, tmp_path, monkeypatch, capsys
):
    """A read-only folder is refused before any work; a disk that fills up while the
    result is written is one line and exit 2, never a traceback, and nothing is left."""
    import os

    from napari_bnadapt.cli import guards

    image_path, out = tmp_path / "image.tif", tmp_path / "out" / "mask.tif"
    write_tiff(image_path, target)
    out.parent.mkdir()
    model_path = tmp_path / "model.pt"
    save_model(small_model_2d, model_path)
    args = ["predict", "--model", str(model_path), "--input", str(image_path), "--out", str(out)]
    real_access = os.access
    monkeypatch.setattr(guards.os, "access", lambda p, mode: Path(p) != out.parent
                        and real_access(p, mode))  # fmt: skip
    assert main(args) == 2
    assert "cannot be written (read-only, or not yours)" in capsys.readouterr().err
    monkeypatch.undo()

    import tifffile

    def full(target, *_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_a_process_killed_mid_write_leaves_no_complete_store(small_model_2d, tmp_path):
    """``kill -9`` of ``bnadapt predict --out m.zarr`` after its first blocks: only the
    ``.partial`` store remains, and ``--resume`` finishes it to the uninterrupted result."""
    import signal
    import subprocess
    import sys
    import time

    from napari_bnadapt.io.ome_zarr_writer import MARKERS
    from napari_bnadapt.io.volumes import read_volume

    model, image = tmp_path / "m.pt", tmp_path / "vol.tif"
    save_model(small_model_2d, model)
    write_tiff(image, make_volume((24, 96, 96), SHIFTS["none"], seed=5)[0])
    out = tmp_path / "mask.zarr"
    args = ["predict", "--model", str(model), "--input", str(image), "--out", str(out),
            "--block", "1,48,48", "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", "from napari_bnadapt.cli import main; main()", *args]
    )
    markers = tmp_path / "mask.zarr.partial" / MARKERS
    deadline = time.monotonic() + 120
    while not (markers.is_dir() and len(list(markers.iterdir())) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, "no block was written"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and (tmp_path / "mask.zarr.partial").exists()
    assert main([*args, "--resume"]) == 0
    reference = tmp_path / "reference.zarr"
    assert main([*args[:6], str(reference), *args[7:]]) == 0
    np.testing.assert_array_equal(
        np.asarray(read_volume(out).data), np.asarray(read_volume(reference).data)
    )


def test_the_cli_reports_memory_errors_in_one_line(monkeypatch, capsys, tmp_path):
    from napari_bnadapt.cli import commands

    def exhausted(args):
        raise MemoryError

    monkeypatch.setitem(commands.HANDLERS, "info", exhausted)
    assert main(["info", "demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err and "Traceback" not in err
