"""Saving from *Segment and adapt*: the current model as a .pt file or a bioimage.io
package, never over the loaded model's file or an opened layer's.

Functions of the widget (its save path, runner and feedback line), so that the widget's
module keeps to laying out and running its flows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import OutputPathError
from ..export.formats import export_model
from ..io.images import check_output_suffix
from ..io.paths import NamedPath, check_outputs_apart, layer_sources
from ..model.checkpoint import save_model
from ..model.loaded import LoadedModel
from ..replacing import model_kept_back, refuse_to_replace
from .help import NEXT_STEP
from .layers import layer_data, recorded_layer
from .workers import one_step

#: The *Segment and adapt* widget (typed loosely: its module imports this one).
AdaptWidget = Any


def save_model_file(widget: AdaptWidget) -> Any:
    """Save the current model (source or adapted, with its record) to the chosen .pt file."""
    model, path = widget.session.current, chosen_path(widget)
    if model is None or path is None:
        say_what_is_missing(widget, model, "choose a file to save the model to (.pt)")
        return None
    if not apart_from_inputs(widget, path, model, "model"):
        return None
    if not replaces_nothing_kept(widget, path, model):
        return None
    return widget.runner.start(
        one_step(save_model, model, str(path)),
        lambda _: widget.feedback.say(
            "info",
            f"Saved the {model.state} model to {path}"
            + (" with the strokes it was taught with." if model.strokes is not None else "."),
            NEXT_STEP["saved"],
        ),
        "saving",
    )


def save_package(widget: AdaptWidget) -> Any:
    """Export the current model as a bioimage.io package (.zip) beside the chosen file,
    with test tensors and a cover cut from the adaptation's target layer."""
    model, path = widget.session.current, chosen_path(widget)
    if model is None or path is None:
        say_what_is_missing(widget, model, "choose a file to save the package to (a .zip)")
        return None
    path = path.with_suffix(".zip")
    if not apart_from_inputs(widget, path, model) or not replaces_nothing_kept(widget, path, model):
        return None
    sample = sample_for(widget, model)
    return widget.runner.start(
        one_step(export_model, model, path, "bioimageio", sample),
        lambda result: widget.feedback.say(
            "info", f"Saved {path}: {result.test_message}", NEXT_STEP["packaged"]
        ),
        "exporting a bioimage.io package",
    )


def chosen_path(widget: AdaptWidget) -> Path | None:
    """The file chosen to save to (None: none chosen)."""
    text = str(widget.save_path.value or "")
    return None if not text or text == "." else Path(text)


def sample_for(widget: AdaptWidget, model: LoadedModel) -> Any:
    """The layer to cut a package's test input from: the adaptation's target, else
    the image to segment (None: a synthetic image)."""
    record = model.adaptation
    target = recorded_layer(widget.viewer, record.target) if record is not None else None
    if target is not None:
        return layer_data(target)
    return layer_data(widget.image.value) if widget.image.value is not None else None


def apart_from_inputs(
    widget: AdaptWidget, path: Path, model: LoadedModel, written: str | None = None
) -> bool:
    """Whether ``path`` spares the loaded model's file and every layer's (and, for a
    ``written`` model, is not named as an image); if not, say so."""
    inputs = layer_sources(widget.viewer.layers)
    if model.path:
        inputs.append(NamedPath.of("loaded model's file", model.path))
    output = NamedPath.of("the file to save", path)
    try:
        check_outputs_apart([output], inputs)
        check_output_suffix(output, written)
    except OutputPathError as exc:
        widget.feedback.say("error", str(exc))
        return False
    return True


def replaces_nothing_kept(widget: AdaptWidget, path: Path, model: LoadedModel) -> bool:
    """Whether saving ``model`` to ``path`` replaces no other network, taught model or file
    that is no model (:mod:`...replacing`: the CLI's rule; a walkthrough lost a taught
    model's strokes so); if it would, say so."""
    try:
        refuse_to_replace("the file to save", path, model_kept_back(path, model), "remove it first")
    except OutputPathError as exc:
        widget.feedback.say("error", str(exc))
        return False
    return True


def say_what_is_missing(widget: AdaptWidget, model: Any, missing_file: str) -> None:
    missing = "load a model first (step 1, Model)" if model is None else missing_file
    widget.feedback.say("error", missing[:1].upper() + missing[1:] + ".")
