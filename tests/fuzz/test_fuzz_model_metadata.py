"""Hand-edited and hostile model files: every field of the metadata, the architecture and
the fingerprint given a hostile value (NaN, infinities, negative, tiny, astronomical,
wrong type). Each file ends in one line (``ModelFileError``), or in a model that predicts;
never a traceback, never an allocation beyond the budget."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from napari_bnadapt import memory
from napari_bnadapt.cli import main
from napari_bnadapt.errors import BnAdaptError, ModelFileError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.model.checkpoint import DEMO_PATH

#: Where a hostile value goes: (part of the file, path of keys inside it).
FIELDS = [
    ("meta", ("normalization", "mean")), ("meta", ("normalization", "std")),
    ("meta", ("normalization", "low_percentile")), ("meta", ("normalization", "high_percentile")),
    ("meta", ("normalization", "mode")), ("meta", ("classes",)), ("meta", ("dims",)),
    ("meta", ("in_channels",)), ("meta", ("out_channels",)), ("meta", ("metadata", "voxel_size")),
    ("meta", ("metadata", "voxel_size", 0)), ("meta", ("metadata", "divisor")),
    ("meta", ("metadata", "min_size")), ("meta", ("metadata", "halo")),
    ("meta", ("metadata", "training_axis")), ("meta", ("metadata", "name")),
    ("meta", ("metadata",)), ("meta", ("input_steps",)), ("meta", ("adaptation",)),
    ("config", ("depth",)), ("config", ("base_channels",)), ("config", ("dims",)),
    ("config", ("in_channels",)), ("config", ("out_channels",)),
    ("fingerprint", ("voxel_size",)),
]  # fmt: skip
HOSTILE = st.sampled_from(
    [math.nan, math.inf, -math.inf, -5, 0, 1e-300, 1e308, "abc", "16", None, [], {}, 10**12,
     -1, True, 2**40, 1024, 40, [1e-300, 1e-300], ["a", "b"]]
)  # fmt: skip


def set_at(document: dict, keys: tuple, value: object) -> None:
    for key in keys[:-1]:
        document = document[key]
    document[keys[-1]] = value


def hostile_file(folder, part: str, keys: tuple, value: object):
    document = torch.load(DEMO_PATH, weights_only=True)
    if part == "meta":
        meta = json.loads(document["metadata_json"])
        set_at(meta, keys, value)
        document["metadata_json"] = json.dumps(meta)  # NaN and inf as JSON's NaN/Infinity
    elif part == "config":
        set_at(document["architecture"]["config"], keys, value)
    else:
        fingerprint = copy.deepcopy(document["fingerprint"])
        set_at(fingerprint, keys, value)
        document["fingerprint"] = fingerprint
    path = folder / "hostile.pt"
    torch.save(document, path)
    return path


@pytest.fixture
def small_budget(monkeypatch):
    """1 GB free: anything that claims more must be refused before it is allocated."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**9)


@given(field=st.sampled_from(FIELDS), value=HOSTILE)
@example(field=("config", ("base_channels",)), value=1024)
@example(field=("config", ("depth",)), value=40)
@example(field=("meta", ("metadata", "divisor")), value=25000)
@example(field=("meta", ("normalization", "mean")), value=math.nan)
@example(field=("meta", ("metadata", "voxel_size")), value=[-5, -5])
@example(field=("meta", ("metadata", "voxel_size")), value=[1e-300, 1e-300])
@example(field=("meta", ("classes",)), value=1)
@example(field=("meta", ("normalization", "high_percentile")), value=400)
def test_a_hostile_field_is_one_line_or_a_working_model(
    field, value, tmp_path_factory, small_budget, capsys
):
    path = hostile_file(tmp_path_factory.mktemp("hostile"), *field, value)
    try:
        model = load_model(path)
    except BnAdaptError as error:
        message = str(error)
        assert "\n" not in message and len(message) < 400, message
        assert main(["info", str(path)]) == 2
        assert capsys.readouterr().err.count("\n") == 1
        return
    try:  # accepted: it must then work, or fail in one line about the input
        predict(model, np.full((40, 40), 110, np.uint8), PredictConfig(device="cpu"))
    except BnAdaptError as error:
        assert "\n" not in str(error)


def test_a_voxel_size_the_model_claims_is_checked_where_it_is_read(tmp_path):
    path = hostile_file(tmp_path, "meta", ("metadata", "voxel_size"), [-5.0, -5.0])
    with pytest.raises(ModelFileError, match=r"metadata\.voxel_size\.0"):
        load_model(path)
    nan_mean = hostile_file(tmp_path, "meta", ("normalization", "mean"), math.nan)
    with pytest.raises(ModelFileError, match=r"normalization\.mean"):  # not "the input has NaN"
        load_model(nan_mean)


def test_bad_json_in_a_torchscript_extra_file_is_one_line(tmp_path):
    from napari_bnadapt.model.checkpoint import EXTRA_FILE

    path = tmp_path / "scripted.pt"
    net = torch.jit.script(torch.nn.Conv2d(1, 1, 3, padding=1))
    torch.jit.save(net, str(path), _extra_files={EXTRA_FILE: "{not json"})
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path)


@pytest.mark.parametrize(
    ("target", "args", "said"),
    [
        ("..os.system", "{}", "import path"),
        ("monai.networks.nets.UNet", '{"spatial_dims": 2, "in_channels": 1, "out_channels": 1,'
         ' "channels": [-4, 8], "strides": [2]}', "could not be built"),
        ("monai.networks.nets.UNet", '{"spatial_dims": 2, "in_channels": 1, "out_channels": 1,'
         ' "channels": [100000, 200000], "strides": [2]}', "would need about"),
    ],
)  # fmt: skip
def test_hostile_architectures_are_one_line(tmp_path, small_budget, capsys, target, args, said):
    pytest.importorskip("monai")
    weights = tmp_path / "w.pt"
    torch.save({"x": torch.zeros(1)}, weights)
    argv = ["info", str(weights), "--architecture", target, "--architecture-args", args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err
