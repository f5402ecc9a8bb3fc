"""Strokes kept with a taught model: sparse and exact, through every file format, checked
on load as strictly as the weights, dropped on reset."""

import numpy as np
import pytest
import torch

from napari_bnadapt.errors import ModelFileError
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.painted_strokes import PaintedStrokes


@pytest.fixture
def painted() -> np.ndarray:
    strokes = np.zeros((3, 40, 48), np.uint8)
    strokes[1, 5, 3:30] = 2
    strokes[1, 20:35, 40] = 1
    strokes[2, 7, 7] = 1
    return strokes


def test_sparse_strokes_give_back_the_painted_array(painted):
    kept = PaintedStrokes.of(painted, "stack.tif")
    assert kept.pixels == int((painted > 0).sum()) and kept.fits((3, 40, 48))
    assert not kept.fits((3, 40, 47))
    np.testing.assert_array_equal(kept.to_array(), painted)
    assert kept.describe() == f"{kept.pixels:,} labelled pixels painted on stack.tif (3×40×48)"


@pytest.mark.parametrize("scripted", [False, True])
def test_strokes_travel_in_native_and_torchscript_files(
    tmp_path, small_model_3d, painted, scripted
):
    model = small_model_3d.copy()
    if scripted:
        probe = torch.randn(1, 1, 16, 16, 16)
        model.module = torch.jit.trace(model.module.eval(), probe)
        model.format, model.config = "torchscript", None
    model.strokes = PaintedStrokes.of(painted, "stack.tif")
    loaded = load_model(save_model(model, tmp_path / "taught.pt"))
    assert loaded.strokes.target == "stack.tif"
    np.testing.assert_array_equal(loaded.strokes.to_array(), painted)
    loaded.restore_source()
    assert loaded.strokes is None  # they belonged to the cure just undone
    assert load_model(save_model(loaded, tmp_path / "reset.pt")).strokes is None


def document(painted: np.ndarray) -> dict:
    return PaintedStrokes.of(painted, "stack.tif").to_document()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda d: d.pop("coords"), "missing"),
        (lambda d: d.update(shape=[3, -40, 48]), "not a 2D or 3D shape"),
        (lambda d: d.update(shape=[3, 40, 48, 2, 2]), "not a 2D or 3D shape"),
        (lambda d: d.update(coords=d["coords"].tolist()), "not arrays"),
        (lambda d: d.update(coords=d["coords"][:-1]), "do not match"),
        (lambda d: d.update(coords=d["coords"].float()), "do not match"),
        (lambda d: d.update(coords=d["coords"] + 100), "outside its grid"),
        (lambda d: d.update(coords=d["coords"] - 100), "outside its grid"),
        (lambda d: d.update(labels=d["labels"] * 3), "outside 1…2"),
        (lambda d: d.update(labels=d["labels"] - 2), "outside 1…2"),
    ],
)
def test_damaged_strokes_are_refused_in_one_line(painted, damage, why):
    broken = document(painted)
    damage(broken)
    with pytest.raises(ModelFileError, match=why) as error:
        PaintedStrokes.from_document(broken, 2, "taught.pt")
    assert "\n" not in str(error.value) and "taught.pt" in str(error.value)


def test_a_file_with_damaged_strokes_does_not_load(tmp_path, small_model_2d):
    model = small_model_2d.copy()
    model.strokes = PaintedStrokes.of(np.eye(32, dtype=np.uint8) * 2 + 0, "t")
    path = save_model(model, tmp_path / "taught.pt")
    document = torch.load(path, weights_only=True)
    document["strokes"]["labels"][0] = 7
    torch.save(document, path)
    with pytest.raises(ModelFileError, match="strokes stored with the model are damaged"):
        load_model(path)
