"""Adapted models out as bioimage.io packages (spec 0.5) and TorchScript, and back in."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
import yaml

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.cli import main
from napari_bnadapt.export import ExportConfig, export_model
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.model.input_steps import InvertContrast, MatchHistogram, SwapAmplitude
from napari_bnadapt.synthetic import SHIFTS, make_volume

ADAPT = AdaptConfig(patches=16, patch_size=32)


@pytest.fixture
def target() -> np.ndarray:
    return make_volume((4, 96, 96), SHIFTS["brightness"], seed=2)[0]


def rdf_of(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return yaml.safe_load(archive.read("rdf.yaml"))


def test_an_adapted_model_exports_as_a_package_that_passes_test_model(
    small_model_2d, target, tmp_path
):
    adapted = adapt(small_model_2d, target, ADAPT, target_name="cryo.tif").model
    out = tmp_path / "adapted.zip"
    result = export_model(adapted, out, sample=target, config=ExportConfig(authors=("A. User",)))
    assert result.test_passed, result.test_message
    rdf = rdf_of(out)
    assert rdf["format_version"].startswith("0.5") and rdf["authors"] == [{"name": "A. User"}]
    provenance = rdf["config"]["napari_bnadapt"]["provenance"]
    assert provenance["cure"] == "adabn" and provenance["target"] == "cryo.tif"
    assert provenance["patches"] == 16 and provenance["alpha"] == 1.0
    assert provenance["tool"].startswith("napari-bnadapt")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        readme = archive.read("README.md").decode()
    assert {"cover.png", "test_input.npy", "test_output.npy", "bnadapt_tensors.pt"} <= names
    assert "How to undo" in readme and "cryo.tif" in readme


def test_round_trip_predicts_the_same_in_both_tools_and_resets_to_the_source(
    make_package, nets, target, tmp_path
):
    from bioimageio.core import predict as core_predict
    from bioimageio.spec import load_description

    package = make_package(nets.tiny(), zoo_id="tiny-frog")
    imported = load_model(package)
    adapted = adapt(imported, target * 1.3, ADAPT, target_name="target").model
    out = tmp_path / "round.zip"
    assert export_model(adapted, out, sample=target).test_passed
    reopened = load_model(out)
    assert reopened.adaptation.target == "target"
    config = PredictConfig(device="cpu")
    ours = predict(adapted, target[1], config).probabilities
    np.testing.assert_allclose(predict(reopened, target[1], config).probabilities, ours, atol=1e-6)
    plane = target[1].astype(np.float32)[None, None]
    sample = core_predict(model=load_description(out, perform_io_checks=False), inputs=plane)
    theirs = next(iter(sample.members.values())).data.values[0, 0]
    one_tile = predict(adapted, target[1], PredictConfig(device="cpu", tile_shape=96, overlap=0))
    np.testing.assert_allclose(theirs, one_tile.probabilities, atol=1e-4)
    assert rdf_of(out)["parent"] == {"id": "tiny-frog", "version": "1.2"}
    reopened.restore_source()
    source = imported.module.state_dict()
    assert all(torch.equal(v, source[k]) for k, v in reopened.module.state_dict().items())


def test_a_3d_model_exports(small_model_3d, tmp_path):
    result = export_model(small_model_3d, tmp_path / "model3d.zip")
    assert result.test_passed, result.test_message
    axes = [a.get("id", a["type"]) for a in rdf_of(result.path)["inputs"][0]["axes"]]
    assert axes == ["batch", "channel", "z", "y", "x"]


def test_torchscript_export_loads_anywhere(small_model_2d, target, tmp_path):
    out = tmp_path / "model.ts"
    export_model(small_model_2d, out, format="torchscript")
    net = torch.jit.load(str(out))
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), small_model_2d.module(x).numpy(), atol=1e-6)
    assert load_model(out).format == "torchscript"


def test_a_cure_that_changes_the_input_is_compiled_into_the_exported_network(
    small_model_2d, target, tmp_path
):
    """Histogram matching and an amplitude swap (as the cures add them) run inside the
    package's network for other tools, and are input steps again in napari-bnadapt."""
    from bioimageio.core import predict as core_predict
    from bioimageio.spec import load_description

    cured = adapt(small_model_2d, target, ADAPT, target_name="cured").model
    rng = np.random.default_rng(0)
    quantiles = np.sort(rng.normal(size=32))
    cured.input_steps = (
        InvertContrast(center=0.1),
        MatchHistogram.between(quantiles, np.sort(rng.normal(size=32)) * 1.5),
        SwapAmplitude(
            0.05, tuple(np.abs(rng.normal(size=16)) * 3), tuple(np.linspace(0, 0.5, 16)), 0.0
        ),
    )
    out = tmp_path / "cured.zip"
    result = export_model(cured, out, sample=target)
    assert result.test_passed, result.test_message
    reopened = load_model(out)
    assert reopened.input_steps == cured.input_steps
    assert set(reopened.module.state_dict()) == set(cured.module.state_dict())
    one_tile = PredictConfig(device="cpu", tile_shape=96, overlap=0)
    ours = predict(cured, target[2], one_tile).probabilities
    np.testing.assert_allclose(
        predict(reopened, target[2], one_tile).probabilities, ours, atol=1e-6
    )
    plane = target[2].astype(np.float32)[None, None]
    sample = core_predict(model=load_description(out, perform_io_checks=False), inputs=plane)
    theirs = next(iter(sample.members.values())).data.values[0, 0]
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    reopened.restore_source()
    assert (
        reopened.input_steps == ()
        and "input steps" in zipfile.ZipFile(out).read("README.md").decode()
    )


def test_cli_export_writes_and_tests_the_package(small_model_2d, tmp_path, capsys):
    from napari_bnadapt.model import save_model

    model_path = tmp_path / "model.pt"
    save_model(small_model_2d, model_path)
    out = tmp_path / "cli.zip"
    assert (
        main(["export", "--model", str(model_path), "--out", str(out), "--name", "tiny/unet ä"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "test_model passed" in printed and out.is_file()
    assert rdf_of(out)["name"] == "tiny unet"
    bad = tmp_path / "wrong.pt"
    assert main(["export", "--model", str(model_path), "--out", str(bad)]) == 2
    assert ".zip" in capsys.readouterr().err and not bad.exists()
    assert json.dumps(rdf_of(out)["config"])  # plain JSON-able metadata
