"""Plain state_dicts of networks from installed libraries (MONAI here), in and out."""

import json

import numpy as np
import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.cli import main
from napari_bnadapt.errors import ModelFileError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.architecture import Architecture
from napari_bnadapt.synthetic import SHIFTS, make_volume

monai = pytest.importorskip("monai")
TARGET = "monai.networks.nets.UNet"
ARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [8, 16, 32],
        "strides": [2, 2], "num_res_units": 1, "norm": "batch"}  # fmt: skip


@pytest.fixture
def state_dict_file(tmp_path):
    torch.manual_seed(0)
    net = monai.networks.nets.UNet(**ARGS).eval()
    path = tmp_path / "unet.pt"
    torch.save({"state_dict": net.state_dict()}, path)  # as Lightning-style checkpoints do
    return path, net


def test_a_state_dict_predicts_as_the_framework_does(state_dict_file):
    path, net = state_dict_file
    model = load_model(path, Architecture(TARGET, ARGS))
    assert (model.dims, model.in_channels, model.out_channels) == (2, 1, 1)
    image = make_volume((1, 64, 64), SHIFTS["brightness"], seed=1)[0][0]
    ours = predict(model, image, PredictConfig(device="cpu", tile_shape=64)).probabilities
    normalised = model.preprocessor(image[None, None])(image.astype(np.float32))
    with torch.no_grad():
        theirs = torch.sigmoid(net(torch.from_numpy(normalised)[None, None])).numpy()[0, 0]
    assert np.abs(ours - theirs).max() < 1e-5


def test_adapted_state_dict_models_save_and_load_back(tmp_path, state_dict_file):
    path, _ = state_dict_file
    model = load_model(path, Architecture(TARGET, ARGS))
    volume = make_volume((2, 64, 64), SHIFTS["brightness"], seed=1)[0]
    result = adapt(model, volume, AdaptConfig(device="cpu", patch_size=64))
    save_model(result.model, tmp_path / "adapted.pt")
    back = load_model(tmp_path / "adapted.pt")  # monai is trusted: rebuilt from the file
    assert back.format == "external" and back.adaptation.cure == "adabn"
    for (name, a), b in zip(
        result.model.module.state_dict().items(), back.module.state_dict().values()
    ):
        assert torch.equal(a, b), name
    for name, stats in model.source_stats.items():
        assert torch.equal(stats["running_mean"], back.source_stats[name]["running_mean"])


def test_an_untrusted_class_in_a_file_is_not_rebuilt(tmp_path, state_dict_file):
    path, _ = state_dict_file
    model = load_model(path, Architecture(TARGET, ARGS))
    model.metadata["architecture"] = {"name": "external", "target": "os.system", "args": {}}
    save_model(model, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match="not from a library trusted"):
        load_model(tmp_path / "evil.pt")


@pytest.mark.parametrize(
    ("target", "args", "message"),
    [
        ("os.system", ARGS, "not a torch.nn.Module class"),
        ("/tmp/evil.py", ARGS, "never imported"),
        ("nonexistent_lib.Net", ARGS, "install the library"),
        (TARGET, {"spatial_dims": 2}, "could not be built"),
        (TARGET, {**ARGS, "channels": [4, 8, 16]}, "do not fit"),
    ],
)
def test_wrong_architectures_say_what_to_do(state_dict_file, target, args, message):
    with pytest.raises(ModelFileError, match=message):
        load_model(state_dict_file[0], Architecture(target, args))


def test_cli_reads_state_dicts_with_architecture_options(tmp_path, state_dict_file, capsys):
    path, _ = state_dict_file
    options = ["--architecture", TARGET, "--architecture-args", json.dumps(ARGS)]
    assert main(["info", str(path), *options]) == 0
    assert "6× BatchNorm2d" in capsys.readouterr().out
    assert main(["info", str(path)]) == 2
    assert "--architecture" in capsys.readouterr().err
    assert main(["info", str(path), "--architecture", TARGET, "--architecture-args", "{bad"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
