"""The adaptation record: typed in memory, the same JSON in files as it always was."""

import json

import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.errors import ModelFileError
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.checkpoint import FORMAT, FORMAT_VERSION
from napari_bnadapt.model.record import AdaptationRecord, ConvergenceStep

#: A record as napari-bnadapt 0.1.0 wrote it into an adapted model file (verbatim).
OLD_RECORD = {
    "target": "target", "target_shape": [[2, 64, 64]], "mode": "standard", "alpha": 1.0,
    "layers": ["encoder.0.bn1", "encoder.0.bn2"], "statistics": "both", "patches": 4,
    "patch_size": [32, 32], "passes": 1, "fixed_point_changes": [],
    "convergence": [{"batch": 2, "change": 0.19575243361689745}],
    "config": {"mode": "standard", "alpha": 1.0, "prior_strength": None, "layers": "all",
               "statistics": "both", "patches": 4, "patch_size": 32, "batch_size": 2,
               "momentum": 0.1, "max_passes": 3, "tolerance": 0.01, "seed": 0,
               "device": "cpu", "slice_axis": None},
    "device": "cpu", "seconds": 0.049, "created": "2026-11-23T15:23:55+00:00",
    "software": "napari-bnadapt 0.1.0",
}  # fmt: skip


def test_old_record_reads_into_the_typed_record_and_writes_back_identically():
    record = AdaptationRecord.from_dict(OLD_RECORD)
    assert record.patch_size == (32, 32) and record.target_shape == ((2, 64, 64),)
    assert record.convergence == (ConvergenceStep(2, 0.19575243361689745),)
    assert record.last_change == pytest.approx(0.1958, abs=1e-4)
    written = record.to_dict()
    assert {key: written[key] for key in OLD_RECORD} == OLD_RECORD
    assert written["cure"] == "adabn" and written["input_steps"] == []  # what 0.1.0 did


def test_records_from_newer_or_partial_files_still_load():
    record = AdaptationRecord.from_dict({"mode": "consistent", "a_future_field": [1, 2]})
    assert record.mode == "consistent" and record.layers == () and record.last_change is None


def _old_adapted_file(path, small_model_2d, adaptation) -> None:
    """A native model file exactly as version 1 of the format was written."""
    meta = {
        "dims": 2, "in_channels": 1, "out_channels": 1,
        "normalization": small_model_2d.normalization.to_dict(), "classes": ["foreground"],
        "metadata": {"name": "old"}, "adaptation": adaptation,
    }  # fmt: skip
    torch.save(
        {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": {"name": "unet", "config": small_model_2d.config.to_dict()},
            "state_dict": small_model_2d.module.state_dict(),
            "source_bn_stats": small_model_2d.source_stats, "metadata_json": json.dumps(meta),
        },
        path,
    )  # fmt: skip


def test_old_adapted_model_files_load_with_their_record(tmp_path, small_model_2d):
    path = tmp_path / "old.pt"
    _old_adapted_file(path, small_model_2d, OLD_RECORD)
    model = load_model(path)
    assert model.state == "adapted" and model.adaptation.config["seed"] == 0
    save_model(model, tmp_path / "again.pt")
    assert load_model(tmp_path / "again.pt").adaptation == model.adaptation


def test_a_damaged_record_is_a_clear_model_file_error(tmp_path, small_model_2d):
    path = tmp_path / "damaged.pt"
    _old_adapted_file(path, small_model_2d, {"convergence": [{"step": 1}]})
    with pytest.raises(ModelFileError, match="adaptation record is damaged"):
        load_model(path)


def test_adapt_writes_every_field_of_the_record(small_model_2d, source_images):
    images, _ = source_images
    config = AdaptConfig(device="cpu", patches=4, patch_size=32, batch_size=2)
    record = adapt(small_model_2d, images[:2], config, target_name="stack").record
    assert set(OLD_RECORD) <= set(record.to_dict())
    assert record.target == "stack" and record.patches == 4 and record.patch_size == (32, 32)
    assert record.config["batch_size"] == 2 and record.software.startswith("napari-bnadapt")
    assert "4 patches" in record.summary()


@pytest.mark.parametrize(
    ("cure", "layers", "kept", "in_force", "state", "said"),
    [
        ("adabn+strokes", ("bn",), True, "adabn+strokes", "adabn+strokes on stack",
         ", fine-tuned on 7 strokes"),
        ("adabn+strokes", ("bn",), False, "adabn", "adabn on stack (strokes undone)",
         ", learning from the strokes undone (the network is the label-free one)"),
        ("strokes", (), False, "source", "source (strokes on stack undone)",
         "strokes: BatchNorm statistics kept, learning from the strokes undone"),
        ("strokes", (), True, "strokes", "strokes on stack",
         "strokes: BatchNorm statistics kept, fine-tuned on 7 strokes"),
    ],
)  # fmt: skip
def test_a_record_says_what_the_model_carries_when_a_guard_undid_the_strokes(
    cure, layers, kept, in_force, state, said
):
    """An undone stroke run leaves the label-free network: names, status lines and the
    summary say so, not the cure that was asked for."""
    details = {"strokes": {"strokes": 7, "guard": {"kept": kept}}}
    record = AdaptationRecord(target="stack", cure=cure, layers=layers, details=details)
    assert record.in_force == in_force and record.state() == state
    assert record.undone == (None if kept else "strokes")
    assert said in record.summary()


def test_an_undone_tent_leaves_adabn_in_force():
    record = AdaptationRecord(cure="tent", layers=("bn",), details={"guard": {"kept": False}})
    assert record.undone == "tent" and record.in_force == "adabn"
    assert AdaptationRecord(cure="tent", details={"guard": {"kept": True}}).in_force == "tent"
