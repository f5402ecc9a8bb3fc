"""An output replaces only what the same step can make again: a walkthrough lost a ground
truth to ``predict --out``, a trained network to ``adapt --out`` and a taught model's
strokes to the widget's Save model."""

import numpy as np
import pytest

from napari_bnadapt.cli import main
from napari_bnadapt.io.images import read_image, write_tiff
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.painted_strokes import PaintedStrokes
from napari_bnadapt.replacing import model_kept_back, prediction_kept_back, source_identity
from napari_bnadapt.synthetic import TARGET, make_volume


@pytest.fixture
def image(tmp_path):
    volume, truth = make_volume((2, 48, 48), TARGET, seed=4)
    write_tiff(tmp_path / "em.tif", volume, (50.0, 4.6, 4.6), "nm")
    write_tiff(tmp_path / "truth.tif", truth.astype(np.uint8), (50.0, 4.6, 4.6), "nm", labels=True)
    return tmp_path / "em.tif"


def predict_args(image, out, *extra):
    return ["predict", "--model", "demo", "--input", str(image), "--out", str(out), *extra]


def test_a_prediction_replaces_only_what_predict_wrote(tmp_path, image, capsys):
    truth = tmp_path / "truth.tif"
    kept = read_image(truth)
    assert prediction_kept_back(tmp_path / "none.tif") is None
    assert "not written by bnadapt predict" in prediction_kept_back(truth)
    assert main(predict_args(image, truth)) == 2
    assert "add --force" in capsys.readouterr().err
    np.testing.assert_array_equal(read_image(truth), kept)  # the ground truth is intact
    # Its own earlier mask and map are replaced (a re-run), and opened as labels still.
    mask, probs = tmp_path / "mask.tif", tmp_path / "probs.tif"
    for _ in range(2):
        assert main(predict_args(image, mask, "--probabilities", str(probs))) == 0
    assert prediction_kept_back(mask) is None and prediction_kept_back(probs) is None
    from napari_bnadapt.io.volumes import read_volume

    assert read_volume(mask).labels and not read_volume(probs).labels
    # A file that is no TIFF, and a probability map over a ground truth, are refused too.
    notes = tmp_path / "notes.tif"
    notes.write_text("not an image")
    assert main(predict_args(image, notes)) == 2
    assert main(predict_args(image, tmp_path / "m2.tif", "--probabilities", str(truth))) == 2
    assert not (tmp_path / "m2.tif").exists()  # refused before any prediction
    assert main(predict_args(image, truth, "--force")) == 0
    assert prediction_kept_back(truth) is None


def test_a_folder_prediction_checks_every_mask_before_writing_one(tmp_path, image, capsys):
    folder, out = tmp_path / "images", tmp_path / "masks"
    folder.mkdir(), out.mkdir()
    for name in ("a", "b"):
        write_tiff(folder / f"{name}.tif", read_image(image)[0])
    write_tiff(out / "b.tif", np.ones((48, 48), np.uint8), labels=True)  # corrected by hand
    assert main(predict_args(folder, out)) == 2
    assert "b.tif" in capsys.readouterr().err
    assert not (out / "a.tif").exists()
    assert main(predict_args(folder, out, "--force")) == 0
    assert main(predict_args(folder, out)) == 0  # its own masks now


def test_a_model_replaces_only_an_earlier_copy_of_the_same_network(tmp_path, image, capsys):
    assert (
        main(["adapt", "--model", "demo", "--target", str(image), "--out", str(tmp_path / "a.pt")])
        == 0
    )
    adapted = load_model(tmp_path / "a.pt")
    assert model_kept_back(tmp_path / "a.pt", load_model("demo")) is None  # same network
    assert (
        main(["adapt", "--model", "demo", "--target", str(image), "--out", str(tmp_path / "a.pt")])
        == 0
    )
    assert (
        main(
            ["adapt", "--reset", "--model", str(tmp_path / "a.pt"), "--out", str(tmp_path / "r.pt")]
        )
        == 0
    )
    assert source_identity(load_model(tmp_path / "r.pt")) == source_identity(adapted)
    # Another network: trained anew, or another file's.
    train = [
        "train",
        "--images",
        str(image),
        "--labels",
        str(tmp_path / "truth.tif"),
        "--steps",
        "2",
    ]
    assert main([*train, "--out", str(tmp_path / "a.pt")]) == 2
    assert "holds another network" in capsys.readouterr().err
    assert source_identity(load_model(tmp_path / "a.pt")) == source_identity(adapted)
    assert main([*train, "--out", str(tmp_path / "t.pt")]) == 0
    again = ["adapt", "--model", "demo", "--target", str(image), "--out", str(tmp_path / "t.pt")]
    assert main(again) == 2 and "another network" in capsys.readouterr().err
    assert main([*again, "--force"]) == 0
    # export follows the same rule (its own TorchScript again; never another network's).
    script = [
        "export",
        "--model",
        "demo",
        "--format",
        "torchscript",
        "--out",
        str(tmp_path / "s.pt"),
    ]
    assert main(script) == 0 and main(script) == 0
    assert main([*train, "--out", str(tmp_path / "other.pt")]) == 0
    assert main([*script[:-1], str(tmp_path / "other.pt")]) == 2
    # A file that is no model.
    (tmp_path / "notes.pt").write_text("my notes")
    assert main([*again[:-1], str(tmp_path / "notes.pt")]) == 2
    assert (tmp_path / "notes.pt").read_text() == "my notes"


def test_a_taught_model_is_never_replaced_without_being_told(tmp_path):
    model = load_model("demo")
    taught = model.copy()
    taught.strokes = PaintedStrokes.of(
        np.pad(np.array([[1, 2]], np.uint8), ((0, 7), (0, 6))), "target"
    )
    save_model(taught, tmp_path / "taught.pt")
    lost = model_kept_back(tmp_path / "taught.pt", model)
    assert "taught with painted strokes" in lost and "bnadapt strokes" in lost


def test_a_report_replaces_only_an_earlier_report(tmp_path, image, capsys):
    """A walkthrough's own report.json and shifts.csv in a results folder were replaced."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "shifts.csv").write_text("my table")
    argv = ["report", "--model", "demo", "--input", str(image), "--patches", "4"]
    assert main([*argv, "--out", str(folder)]) == 2
    assert "shifts.csv" in capsys.readouterr().err
    assert (folder / "shifts.csv").read_text() == "my table"
    assert main([*argv, "--out", str(tmp_path / "new")]) == 0
    assert main([*argv, "--out", str(tmp_path / "new")]) == 0  # its own report again
    assert main([*argv, "--out", str(folder), "--force"]) == 0
