"""bioimage.io packages opened offline: weight formats, processing, axes, trust, refusals."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import tifffile
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.cli import main
from napari_bnadapt.errors import ModelFileError, UntrustedCodeError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import describe, load_model
from napari_bnadapt.model.package import is_package

CONFIG = PredictConfig(device="cpu", tile_shape=32, overlap=0.0)


def image(seed: int = 1, shape=(32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).normal(110, 50, shape).astype(np.float32)


def expected(net, x: np.ndarray, mean=100.0, std=40.0) -> np.ndarray:
    with torch.no_grad():
        out = net(torch.from_numpy((x - mean) / (std + 1e-6))[None, None].float())
    return torch.sigmoid(out).numpy()[0, 0]


def test_a_torchscript_package_predicts_as_its_network(make_package, nets):
    net = nets.tiny()
    path = make_package(net)
    assert is_package(path)
    model = load_model(path)
    assert (model.format, model.dims, model.in_channels, model.out_channels) == (
        "bioimageio",
        2,
        1,
        1,
    )
    assert model.normalization.mode == "fixed" and model.normalization.mean == 100.0
    x = image()
    ours = predict(model, x, CONFIG).probabilities
    np.testing.assert_allclose(ours, expected(net, x), atol=1e-5)
    assert model.metadata["bioimageio"]["authors"] == ["Test Author"]


def test_a_folder_package_and_its_rdf_open_too(make_package, nets, tmp_path):
    path = make_package(nets.tiny())
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    assert is_package(folder) and is_package(folder / "rdf.yaml")
    for source in (folder, folder / "rdf.yaml"):
        assert load_model(source).format == "bioimageio"


def test_a_state_dict_of_a_trusted_library_needs_no_trust(make_package, nets):
    monai = pytest.importorskip("monai")
    args = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [4, 8],
            "strides": [2], "num_res_units": 0, "norm": "batch"}  # fmt: skip
    torch.manual_seed(0)
    net = monai.networks.nets.UNet(**args).eval()
    path = make_package(net, weights="library", library=("monai.networks.nets", "UNet", args))
    model = load_model(path)
    x = image()
    np.testing.assert_allclose(predict(model, x, CONFIG).probabilities, expected(net, x), atol=1e-5)


def test_package_code_runs_only_when_trusted(make_package, nets, capsys):
    net = nets.tiny()
    path = make_package(net, weights="file")
    with pytest.raises(UntrustedCodeError, match="--trust-code") as refused:
        load_model(path)
    assert "tiny_net.py" in str(refused.value)
    assert main(["info", str(path)]) == 2
    assert "--trust-code" in capsys.readouterr().err
    model = load_model(path, trust_code=True)
    x = image()
    np.testing.assert_allclose(predict(model, x, CONFIG).probabilities, expected(net, x), atol=1e-5)
    assert main(["info", str(path), "--trust-code"]) == 0
    assert "reproduced" in capsys.readouterr().out


def test_info_reports_whether_the_test_tensors_are_reproduced(make_package, nets, capsys):
    assert main(["info", str(make_package(nets.tiny()))]) == 0
    assert "test tensors:   reproduced" in capsys.readouterr().out


@pytest.mark.parametrize(
    "step, mode",
    [
        ("scale_range", "percentile"),
        ("zero_mean_unit_variance", "zscore"),
        ("fixed_zero_mean_unit_variance", "fixed"),
    ],
)
def test_preprocessing_is_applied(make_package, nets, step, mode):
    spec = nets.spec
    steps = {
        "scale_range": spec.ScaleRangeDescr(
            kwargs=spec.ScaleRangeKwargs(min_percentile=1.0, max_percentile=99.0)
        ),
        "zero_mean_unit_variance": spec.ZeroMeanUnitVarianceDescr(),
        "fixed_zero_mean_unit_variance": spec.FixedZeroMeanUnitVarianceDescr(
            kwargs=spec.FixedZeroMeanUnitVarianceKwargs(mean=90.0, std=30.0)
        ),
    }
    net = nets.tiny()
    path = make_package(net, name=f"pre {step}", preprocessing=[steps[step]])
    model = load_model(path)
    assert model.normalization.mode == mode
    x = image(2)
    if mode == "percentile":
        low, high = np.percentile(x, [1.0, 99.0])
        mean, std = low, high - low
    elif mode == "zscore":
        mean, std = x.mean(), x.std()
    else:
        mean, std = 90.0, 30.0
    np.testing.assert_allclose(
        predict(model, x, CONFIG).probabilities, expected(net, x, mean, std), atol=1e-4
    )


def test_channels_last_unbatched_and_probability_outputs_are_adapted_to(make_package, nets):
    inner = nets.tiny()
    last = make_package(nets.ChannelsLast(inner), name="channels last", axes="byxc")
    probs = make_package(nets.Probabilities(inner), name="own sigmoid", postprocessing=[])
    unbatched = make_package(nets.Unbatched(inner), name="no batch axis", axes="cyx")
    x = image(3)
    for path in (last, probs, unbatched):
        model = load_model(path)
        np.testing.assert_allclose(
            predict(model, x, CONFIG).probabilities, expected(inner, x), atol=1e-5
        )


def test_a_groupnorm_package_segments_and_says_why_it_cannot_adapt(
    make_package, nets, capsys, tmp_path
):
    path = make_package(nets.tiny(norm="group"), name="group norm")
    model = load_model(path)
    assert predict(model, image(), CONFIG).mask.shape == (32, 32)
    verdict = describe(model).verdict
    assert "nothing to adapt" in verdict and "GroupNorm" in verdict
    target = tmp_path / "target.tif"
    tifffile.imwrite(target, image(5, (64, 64)))
    out = tmp_path / "adapted.pt"
    assert main(["adapt", "--model", str(path), "--target", str(target), "--out", str(out)]) == 2
    assert "nothing to adapt" in capsys.readouterr().err and not out.exists()


def test_an_imported_package_adapts(make_package, nets):
    model = load_model(make_package(nets.tiny()))
    result = adapt(model, image(4, (64, 64)) * 1.5, AdaptConfig(patches=8, patch_size=32))
    assert result.model.adaptation is not None
    assert not torch.equal(
        result.model.module.state_dict()["bn.running_mean"],
        model.module.state_dict()["bn.running_mean"],
    )


@pytest.mark.parametrize(
    "kind, message",
    [
        ("two inputs", "one-input"),
        ("time axis", "time axis"),
        ("missing weights", "missing or unreadable"),
        ("corrupt zip", "not a readable"),
        ("broken description", "bioimage.io"),
        ("onnx only", "only onnx weights"),
        ("remote weights", "works offline"),
    ],
)
def test_unusable_packages_get_one_line(
    make_package, nets, tmp_path, capsys, damaged, kind, message
):
    net = nets.tiny()
    if kind == "two inputs":
        path = make_package(net, name="two inputs", inputs=2)
    elif kind == "time axis":
        path = make_package(net, name="with time", axes="btcyx")
    elif kind == "missing weights":
        path = damaged(
            make_package(net, name="no weights"), tmp_path / "missing.zip",
            lambda name, data: None if name == "weights.pt" else data,
        )  # fmt: skip
    elif kind == "corrupt zip":
        data = make_package(net, name="corrupt").read_bytes()
        path = tmp_path / "corrupt.zip"
        path.write_bytes(data[: len(data) // 2])
    elif kind == "broken description":
        path = damaged(
            make_package(net, name="broken"), tmp_path / "broken_rdf.zip",
            lambda name, data: b"inputs: [oops\n  - : :" if name == "rdf.yaml" else data,
        )  # fmt: skip
    elif kind == "remote weights":
        url = b"source: https://example.org/w.pt"

        def remote(name: str, data: bytes) -> bytes | None:
            if name == "weights.pt":
                return None
            return data.replace(b"source: weights.pt", url) if name == "rdf.yaml" else data

        path = damaged(make_package(net, name="remote"), tmp_path / "remote_weights.zip", remote)
    else:
        path = make_package(net, name="onnx only", weights="onnx")
    with pytest.raises(ModelFileError, match=message):
        load_model(path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


SPEC_04 = """
format_version: 0.4.10
type: model
name: tiny spec 04
description: a tiny test network in the 0.4 format
authors: [{name: Test Author}]
cite: [{text: test, url: "https://example.org"}]
license: MIT
documentation: README.md
timestamp: "2024-01-01T00:00:00"
test_inputs: [in.npy]
test_outputs: [out.npy]
inputs:
  - name: raw
    axes: bcyx
    data_type: float32
    data_range: [-.inf, .inf]
    shape: {min: [1, 1, 16, 16], step: [0, 0, 8, 8]}
    preprocessing:
      - name: scale_range
        kwargs: {mode: per_sample, axes: xy, min_percentile: 1, max_percentile: 99}
outputs:
  - name: prob
    axes: bcyx
    data_type: float32
    data_range: [0, 1]
    shape: {reference_tensor: raw, scale: [1, 1, 1, 1], offset: [0, 0, 0, 0]}
    postprocessing:
      - name: sigmoid
weights:
  torchscript:
    source: weights.pt
"""


def test_a_spec_0_4_package_opens(nets, tmp_path):
    net = nets.tiny(seed=3)
    folder = tmp_path / "v04"
    folder.mkdir()
    (folder / "rdf.yaml").write_text(SPEC_04)
    (folder / "README.md").write_text("# tiny\n")
    torch.jit.save(torch.jit.script(net), str(folder / "weights.pt"))
    x = image(6)
    low, high = np.percentile(x, [1, 99])
    np.save(folder / "in.npy", x[None, None])
    np.save(folder / "out.npy", expected(net, x, low, high - low)[None, None])
    model = load_model(folder)
    assert model.normalization.mode == "percentile" and model.divisor == 8
    np.testing.assert_allclose(
        predict(model, x, CONFIG).probabilities, expected(net, x, low, high - low), atol=1e-4
    )


def test_size_hints_and_halo_are_honoured(make_package, nets):
    from napari_bnadapt.inference import tile_geometry

    net = nets.tiny()
    model = load_model(make_package(net, name="hinted", size=(48, 16), halo=6))
    assert (model.divisor, model.min_size, model.metadata["halo"]) == (16, 48, 6)
    tile, overlap = tile_geometry(model, PredictConfig(tile_shape=32, overlap=0.1), (100, 100))
    assert tile == (32, 32) and overlap == (12, 12)  # at least twice the halo
    x = image(7, (20, 20))  # smaller than the smallest input: padded up to 48
    result = predict(model, x, PredictConfig(device="cpu"))
    padded = np.pad((x - 100.0) / (40.0 + 1e-6), ((0, 28), (0, 28)), mode="edge")
    with torch.no_grad():
        expected_p = torch.sigmoid(net(torch.from_numpy(padded)[None, None].float()))[
            0, 0, :20, :20
        ]
    np.testing.assert_allclose(result.probabilities, expected_p.numpy(), atol=1e-5)


def test_a_binarize_step_sets_the_mask_threshold(make_package, nets):
    spec = nets.spec
    post = [spec.SigmoidDescr(), spec.BinarizeDescr(kwargs=spec.BinarizeKwargs(threshold=0.8))]
    model = load_model(make_package(nets.tiny(), name="binarised", postprocessing=post))
    result = predict(model, image(8), CONFIG)
    np.testing.assert_array_equal(result.mask, (result.probabilities >= 0.8).astype(np.uint8))
    explicit = predict(model, image(8), PredictConfig(device="cpu", threshold=0.3))
    np.testing.assert_array_equal(explicit.mask, (explicit.probabilities >= 0.3).astype(np.uint8))


def test_adaptation_patches_reach_a_packages_smallest_input(make_package, nets):
    from napari_bnadapt.errors import InputDataError

    model = load_model(make_package(nets.tiny(), name="large minimum", size=(48, 16)))
    with pytest.raises(InputDataError, match="at least 48 px"):
        adapt(model, image(9, (96, 96)), AdaptConfig(patches=4, patch_size=32))
    assert adapt(model, image(9, (96, 96)), AdaptConfig(patches=4, patch_size=48)).model.adaptation
