"""Label-free quality proxies on hand-made masks."""

import numpy as np
import pytest

from napari_bnadapt.diagnostics.quality import (
    cells_per_slice,
    compare_masks,
    confident_fraction,
    mean_entropy,
    merged_cells,
    object_count,
    structure_of,
)
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.inference import Prediction


def test_entropy_is_one_when_unsure_and_zero_when_certain():
    assert mean_entropy(np.full((8, 8), 0.5)) == pytest.approx(1.0)
    assert mean_entropy(np.eye(8)) == pytest.approx(0.0, abs=1e-5)
    three = np.full((3, 4, 4), 1 / 3)
    assert mean_entropy(three, classes_axis=0) == pytest.approx(1.0)


def test_confident_fraction_counts_both_classes():
    p = np.array([0.95, 0.05, 0.5, 0.8])
    assert confident_fraction(p) == 0.5


def test_object_count_in_2d_and_3d():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:5, 2:5] = 1
    mask[10:15, 10:12] = 1
    assert object_count(mask) == 2
    volume = np.zeros((4, 10, 10), np.uint8)
    volume[0:2, 1:3, 1:3] = 1
    volume[3, 6:8, 6:8] = 1
    assert object_count(volume) == 2


def test_compare_masks_with_and_without_truth():
    truth = np.zeros((10, 10), np.uint8)
    truth[:5] = 1
    before = Prediction(np.full((10, 10), 0.4), np.zeros((10, 10), np.uint8))
    after = Prediction(truth * 0.98 + 0.01, truth.copy())
    out = compare_masks(before, after, truth)
    assert out.agreement_dice == 0.0
    assert out.before.dice == 0.0 and out.after.dice == 1.0
    assert out.after.iou == 1.0 and out.after.foreground_fraction == 0.5
    assert out.after.entropy < out.before.entropy
    assert out.after.object_count == 1 and out.before.object_count == 0
    assert "after" not in compare_masks(before).to_dict()
    # The field's scores join Dice: halves are two objects' worth of "objects" here.
    scores = out.to_dict()["after"]
    assert scores["structure"] == "objects" and scores["object_f1"] == 1.0
    assert "object_f1" not in compare_masks(before, after).to_dict()["after"]
    with pytest.raises(InputDataError, match="ground truth"):
        compare_masks(before, after, truth[:5])


def test_a_model_says_what_it_segments_by_metadata_or_its_words(small_model_2d):
    from napari_bnadapt.model import load_model

    assert structure_of(load_model("membranes-fibsem")) == "boundaries"
    assert structure_of(small_model_2d) is None  # the ground truth will decide
    small_model_2d.classes = ("mitochondria",)
    assert structure_of(small_model_2d) == "objects"
    small_model_2d.metadata["structure"] = "boundaries"
    assert structure_of(small_model_2d) == "boundaries"


def membranes(across: int, down: int, shape=(3, 64, 64)) -> np.ndarray:
    """2-px membranes every ``across`` rows and every ``down`` columns, enclosing cells."""
    mask = np.zeros(shape, np.uint8)
    for start in range(0, shape[1], across):
        mask[:, start : start + 2, :] = 1
    for start in range(0, shape[2], down):
        mask[:, :, start : start + 2] = 1
    return mask


def test_cells_are_counted_per_slice_and_merges_are_flagged():
    closed = membranes(16, 16)
    assert cells_per_slice(closed) == 16 and cells_per_slice(closed[0]) == 16
    assert cells_per_slice(membranes(16, 21)) == 12
    assert merged_cells(closed, membranes(16, 21)) is None  # three quarters: not merged
    assert merged_cells(closed, membranes(16, 32)) == (16.0, 8.0)  # membranes opened
    assert merged_cells(closed, membranes(32, 32)) == (16.0, 4.0)
    assert merged_cells(membranes(32, 32), closed) is None  # more cells: gaps closed
    blobs = np.zeros((3, 64, 64), np.uint8)
    blobs[:, 10:20, 10:20] = 1
    assert merged_cells(blobs, np.zeros_like(blobs)) is None  # objects, not boundaries
