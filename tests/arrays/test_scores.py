"""The field's scores: what they forgive (thickness) and what they punish (splits, merges,
missed objects), on small drawn masks."""

import numpy as np
import pytest
from scipy import ndimage

from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.arrays.scores import (
    boundary_scores,
    cells_of,
    field_scores,
    infer_structure,
    object_scores,
)


def grid(size: int = 64, step: int = 16, width: int = 1) -> np.ndarray:
    """Membranes: lines every ``step`` px, enclosing (size/step)² cells."""
    mask = np.zeros((size, size), np.uint8)
    for start in range(step // 2, size, step):
        mask[start : start + width, :] = 1
        mask[:, start : start + width] = 1
    return mask


def blobs(centres, radius: int = 4, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    for y, x in centres:
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 1
    return mask


def test_a_perfect_boundary_map_scores_perfectly():
    truth = grid()
    scores = boundary_scores(truth, truth)
    assert scores["rand_f"] == pytest.approx(1.0)
    assert scores["vi_split"] == pytest.approx(0.0, abs=1e-9)
    assert scores["vi_merge"] == pytest.approx(0.0, abs=1e-9)
    assert scores["boundary_f1"] == 1.0


def test_a_thicker_membrane_convention_is_not_an_error_but_dice_calls_it_one():
    truth = grid()
    thick = ndimage.binary_dilation(truth, iterations=2)
    scores = boundary_scores(thick, truth)
    assert dice(thick, truth) < 0.5
    assert scores["rand_f"] > 0.99 and scores["boundary_f1"] > 0.95


def test_a_gap_merges_two_cells_and_only_the_merge_scores_fall():
    truth = grid()
    broken = truth.copy()
    broken[8, 16:32] = 0  # one wall between two cells gone
    broken[8:9, 24] = 0
    scores = boundary_scores(broken, truth)
    assert scores["rand_merge"] < 0.99 and scores["vi_merge"] > 0.05
    assert scores["rand_split"] == pytest.approx(1.0) and scores["vi_split"] < 1e-9
    assert scores["rand_f"] < 1.0


def test_an_extra_wall_splits_a_cell_and_only_the_split_scores_fall():
    truth = grid()
    split = truth.copy()
    split[8:25, 32] = 1  # a wall across the cell between rows 8..24 and cols 24..40
    scores = boundary_scores(split, truth)
    assert scores["rand_split"] < 0.99 and scores["vi_split"] > 0.05
    assert scores["rand_merge"] == pytest.approx(1.0) and scores["vi_merge"] < 1e-9
    assert scores["boundary_f1"] < 1.0


def test_a_stack_is_scored_slice_by_slice():
    truth = np.stack([grid(), grid(step=32)])
    assert cells_of(truth).max() == cells_of(truth[0]).max() + cells_of(truth[1]).max()
    assert boundary_scores(truth, truth)["rand_f"] == pytest.approx(1.0)
    swapped = boundary_scores(truth[::-1].copy(), truth)
    assert swapped["rand_f"] < 0.9


def test_no_true_cell_means_nothing_to_score():
    assert set(boundary_scores(np.zeros((8, 8)), np.ones((8, 8))).values()) == {None}


def test_object_f1_matches_at_iou_one_half():
    truth = blobs([(10, 10), (40, 40)])
    # One object found, one shifted by more than its radius (IoU < 0.5), one invented.
    prediction = blobs([(10, 10), (40, 47), (20, 50)])
    scores = object_scores(prediction, truth)
    assert scores["object_precision"] == pytest.approx(1 / 3)
    assert scores["object_recall"] == pytest.approx(1 / 2)
    assert scores["object_f1"] == pytest.approx(2 * 1 / (2 + 3))
    assert object_scores(truth, truth)["object_f1"] == 1.0
    assert set(object_scores(np.zeros((8, 8)), np.zeros((8, 8))).values()) == {None}


def test_the_structure_is_read_from_the_ground_truth_when_not_given():
    assert infer_structure(grid()) == "boundaries"
    assert infer_structure(blobs([(10, 10), (40, 40)])) == "objects"
    assert field_scores(grid(), grid())["structure"] == "boundaries"
    chosen = field_scores(grid(), grid(), structure="objects")
    assert chosen["structure"] == "objects" and "object_f1" in chosen
    with pytest.raises(ValueError):
        field_scores(grid(), grid(), structure="cells")
