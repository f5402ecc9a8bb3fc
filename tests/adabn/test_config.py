"""AdaptConfig: each stroke cure's own step size and anchor weight, set when made."""

from dataclasses import asdict, replace

import pytest

from napari_bnadapt.adabn.config import STROKE_RECIPES, AdaptConfig
from napari_bnadapt.errors import InputDataError


@pytest.mark.parametrize("cure", ["strokes", "adabn+strokes"])
def test_each_stroke_cure_has_its_own_step_size_and_anchor(cure):
    """After AdaBN the anchor holds (small steps, weight 3); on the source's own
    predictions it gives way (larger steps, weight 0.3): docs/strokes.md."""
    config = AdaptConfig(cure=cure)
    assert (config.stroke_learning_rate, config.stroke_consistency) == STROKE_RECIPES[cure]
    recorded = asdict(config)  # what the model's record keeps: numbers, not None
    assert (recorded["stroke_learning_rate"], recorded["stroke_consistency"]) == STROKE_RECIPES[
        cure
    ]
    assert replace(config, stroke_steps=5).stroke_consistency == STROKE_RECIPES[cure][1]


def test_given_values_win_and_are_still_checked():
    config = AdaptConfig(cure="strokes", stroke_consistency=0.0, stroke_learning_rate=1e-2)
    assert (config.stroke_learning_rate, config.stroke_consistency) == (1e-2, 0.0)
    assert STROKE_RECIPES["strokes"] != STROKE_RECIPES["adabn+strokes"]
    with pytest.raises(InputDataError, match="consistency weight must be ≥ 0"):
        AdaptConfig(cure="strokes", stroke_consistency=-1.0)
    with pytest.raises(InputDataError, match="finite"):
        AdaptConfig(stroke_learning_rate=float("nan"))
