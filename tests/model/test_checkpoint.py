import io
import pickle
import zipfile

import pytest
import torch

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.errors import ModelFileError
from napari_bnadapt.model import load_model, save_model


def test_native_round_trip_keeps_weights_statistics_and_metadata(tmp_path, small_model_2d):
    path = save_model(small_model_2d, tmp_path / "m.pt")
    loaded = load_model(path)
    assert loaded.format == "native" and loaded.config == small_model_2d.config
    for key, value in small_model_2d.module.state_dict().items():
        assert torch.equal(value, loaded.module.state_dict()[key]), key
    assert loaded.normalization == small_model_2d.normalization
    assert loaded.metadata["name"] == "small2d"
    assert loaded.classes == ("foreground",)
    for name, stats in small_model_2d.source_stats.items():
        assert torch.equal(stats["running_mean"], loaded.source_stats[name]["running_mean"])
    assert loaded.adaptation is None


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        # Would create the marker file if the loader unpickled arbitrary objects.
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "napari-bnadapt-model", "payload": _RunsCode(str(marker))}, path)
    with pytest.raises(ModelFileError, match="could run code"):
        load_model(path)
    assert not marker.exists()


def test_plain_pickle_file_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned2"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04garbage"])
def test_garbage_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"bad\.pt"):
        load_model(path)


def test_truncated_model_file_gives_a_clear_error(tmp_path, small_model_2d):
    good = save_model(small_model_2d, tmp_path / "good.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError, match=r"cut\.pt"):
        load_model(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(ModelFileError, match="folder"):
        load_model(tmp_path)


def test_bare_state_dict_of_the_builtin_unet_loads(tmp_path, small_model_2d):
    path = tmp_path / "sd.pt"
    torch.save(small_model_2d.module.state_dict(), path)
    loaded = load_model(path)
    assert loaded.config == small_model_2d.config
    assert loaded.normalization == NormalizationSpec(mode="percentile")


def test_torchscript_round_trip_keeps_metadata_and_source_stats(tmp_path, small_model_2d):
    scripted = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    model = small_model_2d.copy()
    model.module, model.format, model.config = scripted, "torchscript", None
    model.metadata["divisor"] = 4
    path = save_model(model, tmp_path / "ts.pt")
    loaded = load_model(path)
    assert loaded.format == "torchscript"
    assert loaded.dims == 2 and loaded.in_channels == 1 and loaded.divisor == 4
    assert loaded.normalization == small_model_2d.normalization
    assert set(loaded.source_stats) == set(small_model_2d.source_stats)


def test_foreign_torchscript_file_loads_with_inferred_defaults(tmp_path, small_model_3d):
    path = tmp_path / "foreign.pt"
    torch.jit.save(
        torch.jit.trace(small_model_3d.module.eval(), torch.randn(1, 1, 8, 8, 8)), str(path)
    )
    loaded = load_model(path)
    assert (loaded.dims, loaded.in_channels) == (3, 1)
    assert len(loaded.source_stats) == 2 * (2 + 1 + 2)


def test_demo_model_is_bundled_and_small():
    model = load_model("demo")
    assert model.dims == 2 and model.normalization.mode == "fixed"
    from napari_bnadapt.model.checkpoint import DEMO_PATH

    assert DEMO_PATH.stat().st_size < 5_000_000
    assert zipfile.is_zipfile(DEMO_PATH) and io  # a torch zip archive


def test_bundled_membrane_model_carries_its_scale_fingerprint_and_attribution():
    model = load_model("membranes-fibsem")
    assert model.path == "membranes-fibsem" and model.dims == 2
    assert model.voxel_size == (10.0, 10.0, 10.0) and model.fingerprint is not None
    assert model.fingerprint.foreground_fraction == pytest.approx(0.10, abs=0.02)
    assert (
        "CC BY" in model.metadata["attribution"] and "NeuroProof" in model.metadata["attribution"]
    )
    assert model.metadata["provenance"]["recipe"].startswith("scripts/make_membrane_model.py")
