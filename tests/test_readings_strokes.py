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


def test_strokes_brought_back_on_a_layer_of_another_name_warn():
    said, level = restored_note(KEPT, KEPT, "other", (8, 8))
    assert level == "warning" and "if other is another image, clear the layer" in said


def test_strokes_of_another_shape_are_left_out_and_say_where_they_belong():
    said, level = restored_note(KEPT, None, "crop", (4, 8))
    assert level == "info" and "painted on EM (8×8), not on this 4×8 layer" in said
    assert said.endswith(FIRST_STROKES)
    assert restored_note(None, None, "crop", (4, 8)) == (FIRST_STROKES, "info")
