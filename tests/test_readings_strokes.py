"""What Paint corrections says of a model's own strokes: brought back, brought back onto
a layer of another name (a warning), or left out for a grid of another shape."""

import numpy as np

from napari_bnadapt._widgets.readings import FIRST_STROKES, restored_note
from napari_bnadapt.model.painted_strokes import PaintedStrokes

KEPT = PaintedStrokes.of(np.eye(8, dtype=np.uint8) + np.eye(8, k=1, dtype=np.uint8) * 2, "EM")


def test_strokes_brought_back_on_their_own_target_say_paint_more():
    said, level = restored_note(KEPT, KEPT, "EM", (8, 8))
    assert level == "info" and said.startswith("Brought back the strokes")
    assert "15 labelled pixels painted on EM (8×8)" in said and "paint more" in said


def test_strokes_taught_from_the_command_line_name_the_file_of_the_layer():
    """``bnadapt adapt --target vnc10.tif`` records the file; napari names its layer
    ``vnc10``: the same image, no warning (a walkthrough was told it might be another)."""
    from_file = PaintedStrokes.of(KEPT.to_array(), "vnc10.tif")
    said, level = restored_note(from_file, from_file, "vnc10", (8, 8))
    assert level == "info" and "paint more" in said
    assert restored_note(from_file, from_file, "vnc10.tif copy", (8, 8))[1] == "warning"


def test_strokes_brought_back_on_a_layer_of_another_name_warn():
    said, level = restored_note(KEPT, KEPT, "other", (8, 8))
    assert level == "warning" and "if other is another image, clear the layer" in said


def test_strokes_of_another_shape_are_left_out_and_say_where_they_belong():
    said, level = restored_note(KEPT, None, "crop", (4, 8))
    assert level == "info" and "painted on EM (8×8), not on this 4×8 layer" in said
    assert said.endswith(FIRST_STROKES)
    assert restored_note(None, None, "crop", (4, 8)) == (FIRST_STROKES, "info")


def grid(step: int) -> np.ndarray:
    """Membranes every ``step`` pixels, enclosing cells (2 slices)."""
    mask = np.zeros((2, 64, 64), np.uint8)
    for start in range(0, 64, step):
        mask[:, start : start + 2, :] = mask[:, :, start : start + 2] = 1
    return mask


def test_a_taught_mask_whose_cells_merge_is_a_caution_not_a_success():
    """Strokes can open gaps in membranes: Dice may rise while cells merge (Rand F falls).
    The mask's reading compares its cells with the label-free mask's and says so."""
    from types import SimpleNamespace as Layer

    from napari_bnadapt._widgets.readings import mask_reading

    label_free = Layer(name="EM mask [adabn]", data=grid(16))
    merged = Layer(name="EM mask [adabn+strokes]", data=grid(32))
    level, said, _ = mask_reading("EM", merged, "adabn+strokes", label_free, taught=True)
    assert level == "warning" and "Caution: 4 cells per slice against 16 in EM mask" in said
    assert "opened gaps in the membranes" in said
    level, said, _ = mask_reading("EM", label_free, "adabn+strokes", merged, taught=True)
    assert level == "info" and "Caution" not in said  # more cells: nothing to caution
