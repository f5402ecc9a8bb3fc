"""What learning from strokes did, in words: one verdict for the CLI and napari."""

import pytest

from napari_bnadapt.adapt.stroke_cure import stroke_summary
from napari_bnadapt.adapt.stroke_verdict import stroke_verdict


def details(kept=True, before=0.5, after=0.9, recalls=None, strokes=(6, 5)):
    return {
        "strokes": sum(strokes), "labelled_pixels": 300, "slices": [1], "steps": 40,
        "stopped": "held-out strokes stopped improving", "guard": {"kept": kept},
        "pixels_per_class": {"background": 200, "foreground": 100},
        "strokes_per_class": dict(zip(("background", "foreground"), strokes)),
        "held_out_before": {"accuracy": before, "loss": 0.4},
        "held_out_after": {"accuracy": after, "loss": 0.2, "recalls": recalls},
    }  # fmt: skip


def test_both_cautions_are_said_when_both_apply():
    """A class mostly wrong on its held-back strokes and a class painted once: neither
    caution hides the other."""
    said = stroke_verdict(details(recalls={"1": 0.1, "2": 1.0}, strokes=(4, 1)))
    assert said.startswith("held-back strokes 50 % → 90 % right: kept; yet only background")
    assert "10 % right: compare it with the label-free mask" in said
    assert "; one foreground stroke only: the check held back a piece of it" in said


@pytest.mark.parametrize(
    ("before", "why"),
    [(1.0, "they were right already: paint where the mask is wrong"),
     (0.6, "learning did not make them more right")],
)  # fmt: skip
def test_an_undone_run_says_why_in_the_cli_line_too(before, why):
    line = stroke_summary(details(kept=False, before=before, after=before))
    assert line.startswith("strokes: 11 strokes, 300 labelled pixels on 1 slice(s); 40 steps")
    assert f"{100 * before:.0f} % right before, no better after ({why}): undone" in line
    assert line.endswith("the network and mask are the label-free ones")


def test_a_clean_kept_run_has_no_caution_and_nothing_held_out_is_unchecked():
    assert stroke_verdict(details(recalls={"1": 0.9, "2": 0.9})).endswith("90 % right: kept")
    unchecked = details()
    unchecked["held_out_before"]["accuracy"] = None
    assert stroke_verdict(unchecked).endswith("kept unchecked")


def test_a_run_undone_because_its_cells_merged_says_so_in_the_cli_line_and_napari():
    guard = {"kept": False, "merged": True, "reason": "cells merged"}
    merged = {**details(), "guard": guard, "cells": {"label_free": 67.0, "taught": 16.0}}
    line = stroke_summary(merged)
    assert "held-back strokes 50 % → 90 % right, but the painted slices kept 16 cells of 67" in line
    assert line.endswith("cells merged): undone, the network and mask are the label-free ones")
