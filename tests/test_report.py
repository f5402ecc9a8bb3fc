"""The diagnosis and the report: files exist, parse, name their numbers plainly."""

import json

import numpy as np
import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.cli import main
from napari_bnadapt.diagnostics import diagnose
from napari_bnadapt.diagnostics.latents import LatentConfig
from napari_bnadapt.diagnostics.polarity import polarity_check
from napari_bnadapt.diagnostics.tables import layer_overview
from napari_bnadapt.inference import PredictConfig
from napari_bnadapt.io.images import write_tiff
from napari_bnadapt.model import save_model
from napari_bnadapt.report import FIGURES, TABLES, build_report, write_report
from napari_bnadapt.synthetic import SHIFTS, SOURCE, make_volume

LATENT = LatentConfig(device="cpu", patches=8, patch_size=32)
ADAPT = AdaptConfig(device="cpu", patches=8, patch_size=32)


@pytest.fixture
def target():
    return make_volume((3, 48, 48), SHIFTS["brightness"], seed=7)


def test_diagnose_compares_before_after_and_source(small_model_2d, target):
    adapted = adapt(small_model_2d, target[0], ADAPT).model
    source = make_volume((3, 48, 48), SOURCE, seed=8)[0]
    diagnosis = diagnose(small_model_2d, target[0], adapted, source=source, config=LATENT)
    assert diagnosis.reference_label == "source images"
    assert set(diagnosis.sliced) == {"before", "after"}
    assert diagnosis.verdict.reading in ("not needed", "adapt", "uncertain", "risky")
    rows = layer_overview(diagnosis)
    assert [r["layer"] for r in rows] == list(diagnosis.shift_before)
    assert all(r["after"] is not None for r in rows)
    # The stored statistics moved by what adaptation measured.
    assert max(s.score for s in diagnosis.moved.values()) > 0.1


def test_torchscript_models_are_diagnosed_from_stored_statistics(small_model_2d, target):
    adapted = adapt(small_model_2d, target[0], ADAPT).model
    traced = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    scripted = small_model_2d.copy()
    scripted.module, scripted.format = traced, "torchscript"
    diagnosis = diagnose(scripted, target[0], adapted, config=LATENT)
    assert diagnosis.before is None and diagnosis.shift_before is diagnosis.moved
    assert diagnosis.verdict.figures["mean_shift"] > 0


def test_report_files_exist_and_parse(small_model_2d, target, tmp_path):
    image, truth = target
    steps = []
    report = build_report(
        small_model_2d, image, labels=truth, adapt_config=ADAPT,
        predict_config=PredictConfig(device="cpu"), latent_config=LATENT, progress=steps.append,
    )  # fmt: skip
    # Adapt, two predictions and the captures share one progress bar that only moves forward.
    done = [s.done for s in steps]
    assert done == sorted(done) and len({s.total for s in steps}) == 1
    assert done[-1] == steps[-1].total
    paths = write_report(report, tmp_path)
    assert [p.name for p in paths] == ["report.json", *FIGURES, *TABLES]
    header = (tmp_path / "shifts.csv").read_text().splitlines()[0]
    assert header.startswith("layer,channel,") and "wasserstein_empirical_after" in header
    assert "q50_before" in header and "q95_after" in header
    for path in paths[1:-1]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((tmp_path / "report.json").read_text())
    layer = numbers["layers_before"][0]
    for key in ("wasserstein", "wasserstein_standardised", "bhattacharyya", "kl"):
        assert np.isfinite(layer[key]["mean"])
    for key in ("entropy", "confident_fraction", "foreground_fraction", "object_count", "dice"):
        assert key in numbers["quality"]["before"] and key in numbers["quality"]["after"]
    # The field's scores beside Dice, for the structure the ground truth shows.
    after = numbers["quality"]["after"]
    assert after["structure"] in ("boundaries", "objects")
    family = ("rand_f", "vi_split", "vi_merge") if after["structure"] == "boundaries" else ()
    assert all(key in after for key in family or ("object_f1",))
    assert 0 <= numbers["quality"]["agreement_dice"] <= 1
    assert numbers["adaptation"]["mode"] == "standard"
    assert numbers["verdict"]["reading"] and numbers["verdict"]["reasons"]
    # The user's model kept its source statistics.
    assert small_model_2d.state == "source"


def test_cli_report_with_and_without_an_adapted_model(small_model_2d, target, tmp_path, capsys):
    image, truth = target
    model_path, adapted_path = tmp_path / "m.pt", tmp_path / "a.pt"
    save_model(small_model_2d, model_path)
    save_model(adapt(small_model_2d, image, ADAPT).model, adapted_path)
    write_tiff(tmp_path / "t.tif", image)
    write_tiff(tmp_path / "l.tif", truth)
    common = ["--model", str(model_path), "--input", str(tmp_path / "t.tif"), "--device", "cpu"]
    common += ["--patches", "8"]
    assert (
        main(
            ["report", *common, "--labels", str(tmp_path / "l.tif"), "--out", str(tmp_path / "r1")]
        )
        == 0
    )
    assert "Should I adapt?" in capsys.readouterr().out
    assert (
        main(["report", *common, "--adapted", str(adapted_path), "--out", str(tmp_path / "r2")])
        == 0
    )
    second = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert "dice" not in second["quality"]["after"]
    assert (
        main(
            [
                "report",
                "--model",
                str(model_path),
                "--input",
                str(tmp_path / "missing.tif"),
                "--out",
                str(tmp_path / "r3"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "r3").exists()


def test_polarity_check_sees_an_inverted_contrast():
    from napari_bnadapt.diagnostics import capture_latents
    from napari_bnadapt.model import load_model

    model = load_model("demo")
    config = LatentConfig(device="cpu", patches=8)
    source = capture_latents(model, make_volume((2, 128, 128), SOURCE, seed=9)[0], config)
    for shift, inverted in (("brightness", False), ("inverted", True)):
        volume = make_volume((2, 128, 128), SHIFTS[shift], seed=3)[0]
        # Plain AdaBN (polarity kept): the check must see the inversion it leaves.
        plain = AdaptConfig(device="cpu", patches=8, polarity="keep")
        adapted = adapt(model, volume, plain).model
        check = polarity_check(capture_latents(adapted, volume, config), source)
        assert check.inverted is inverted, shift
    assert polarity_check(source, None) is None
