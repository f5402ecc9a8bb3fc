"""The source fingerprint: computed from images, stored in both model formats, shown."""

import numpy as np
import pytest
import tifffile
import torch

from napari_bnadapt.cli import main
from napari_bnadapt.diagnostics import diagnose
from napari_bnadapt.diagnostics.fingerprinting import compute_fingerprint
from napari_bnadapt.diagnostics.latents import LatentConfig
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.bn_layers import batchnorm_modules
from napari_bnadapt.synthetic import SHIFTS, SOURCE, make_volume

CONFIG = LatentConfig(device="cpu", patches=8, patch_size=32)


@pytest.fixture
def source():
    return make_volume((3, 48, 48), SOURCE, seed=2)


def test_fingerprint_holds_intensities_spectrum_scale_and_latents(small_model_2d, source):
    image, truth = source
    fingerprint = compute_fingerprint(
        small_model_2d, image, voxel_size=(10, 5, 5), labels=truth, config=CONFIG
    )
    assert np.all(np.diff(fingerprint.quantiles) >= 0) and fingerprint.quantiles.size == 257
    normalised = (image.astype(np.float64) - 100.0) / 40.0  # the fixture's normalisation
    assert fingerprint.quantiles[128] == pytest.approx(np.median(normalised), abs=0.1)
    assert fingerprint.spectrum.shape == fingerprint.frequencies.shape
    assert fingerprint.spectrum[0] > fingerprint.spectrum[-1] > 0  # EM-like: more at low f
    assert fingerprint.voxel_size == (10.0, 5.0, 5.0)
    assert fingerprint.foreground_fraction == pytest.approx(truth.mean())
    assert set(batchnorm_modules(small_model_2d.module)) <= set(fingerprint.latents)


@pytest.mark.parametrize("kind", ["native", "torchscript"])
def test_fingerprint_survives_the_model_file(small_model_2d, source, tmp_path, kind):
    small_model_2d.fingerprint = compute_fingerprint(small_model_2d, source[0], config=CONFIG)
    if kind == "torchscript":
        small_model_2d.module = torch.jit.trace(small_model_2d.module, torch.zeros(1, 1, 32, 32))
        small_model_2d.format = "torchscript"
    save_model(small_model_2d, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt").fingerprint
    assert np.array_equal(loaded.quantiles, small_model_2d.fingerprint.quantiles)
    layer = next(iter(loaded.latents))
    assert np.array_equal(
        loaded.latents[layer].counts, small_model_2d.fingerprint.latents[layer].counts
    )


def test_the_fingerprint_is_the_reference_without_source_images(small_model_2d, source):
    target = make_volume((3, 48, 48), SHIFTS["brightness"], seed=4)[0]
    assert diagnose(small_model_2d, target, config=CONFIG).reference_label.startswith(
        "source statistics"
    )
    small_model_2d.fingerprint = compute_fingerprint(small_model_2d, source[0], config=CONFIG)
    diagnosis = diagnose(small_model_2d, target, config=CONFIG)
    assert diagnosis.reference_label == "source fingerprint"
    # The plot names it so: no source images were given.
    from matplotlib.figure import Figure

    from napari_bnadapt.diagnostics.figures import plot_channel_histogram

    ax = Figure().subplots()
    plot_channel_histogram(ax, diagnosis, next(iter(diagnosis.shift_before)), 0)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "source (fingerprint)" in legend and "source images" not in legend


def test_cli_fingerprint_and_info(tmp_path, capsys, source):
    image, truth = source
    tifffile.imwrite(tmp_path / "src.tif", image)
    tifffile.imwrite(tmp_path / "lbl.tif", truth)
    out = tmp_path / "fp.pt"
    assert main(["fingerprint", "--model", "demo", "--source", str(tmp_path / "src.tif"),
                 "--labels", str(tmp_path / "lbl.tif"), "--voxel-size", "10,5,5",
                 "--patches", "8", "--device", "cpu", "--out", str(out)]) == 0  # fmt: skip
    assert load_model(out).voxel_size == (10.0, 5.0, 5.0)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fingerprint:" in text and "10 × 5 × 5 nm" in text and "foreground" in text
