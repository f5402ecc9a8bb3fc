"""What a new mask shows, in words, and what to do next: the Segment and adapt widget's
message after each segmentation (an empty or full mask says so, since on the canvas it
looks like nothing happened), and what Paint corrections says of a model's own strokes."""

from __future__ import annotations

from typing import Any

from ..adabn.config import STROKE_CURES
from ..adapt.stroke_verdict import stroke_verdict
from ..diagnostics.quality import merged_cells
from ..model.painted_strokes import PaintedStrokes
from .help import NEXT_STEP, percent
from .layers import MaskOrigin, foreground_fraction, mask_to_compare, names_layer

#: A mask with at most this foreground fraction is "empty" (at least 1 - it: "full").
EMPTY = 0.001


def extreme(mask: Any) -> str | None:
    """``"empty"``, ``"full"`` or None (a lazy mask is not measured)."""
    fraction = foreground_fraction(mask.data)
    if fraction is None:
        return None
    return "empty" if fraction <= EMPTY else "full" if fraction >= 1 - EMPTY else None


def mask_reading(
    image: str,
    mask: Any,
    state: str,
    before: Any,
    trained: float | None = None,
    taught: bool = False,
) -> tuple[str, str, str]:
    """(level, what the mask of ``image`` shows, the next step); ``before``: the mask to
    compare with (the source statistics', or after strokes the label-free one), when
    ``state`` is a cure's; ``trained``: the foreground fraction of the model's training
    labels (its fingerprint), the yardstick a reader needs; ``taught``: the model came
    from learning strokes (kept or undone): the next step is to paint more, and cells
    merged over the whole target are cautioned about (the cure undoes a run whose painted
    slices' cells merged; elsewhere only the masks can show it)."""
    fraction = foreground_fraction(mask.data) or 0.0
    statistics = (
        "the source statistics"
        if state == "source"
        else f"[{state}]"
        if state in STROKE_CURES
        else f"[{state}] statistics"
    )
    head = f"{percent(fraction)} foreground in {image} with {statistics}"
    details = []
    # By name: napari may hand a plugin a proxy of a layer, never `is` the layer itself.
    if before is not None and state != "source" and before.name != mask.name:
        label = "label-free" if taught and before.name.endswith("[adabn]") else "before"
        details.append(f"{label}: {percent(foreground_fraction(before.data) or 0.0)}")
    if trained is not None:
        details.append(f"training labels: {percent(trained)}")
    if details:
        head += f" ({'; '.join(details)})"
    kind = extreme(mask)
    level = "info" if kind is None else "warning"
    if state == "source":
        if kind == "empty":
            nothing = "nothing" if fraction == 0 else "almost nothing"
            text = (
                f"{head}: the network found {nothing}; the new data probably differ from its "
                "training data."
            )
            return level, text, NEXT_STEP["empty"].format(target=image)
        if kind == "full":
            text = f"{head}: everything reads as foreground."
            return level, text, NEXT_STEP["empty"].format(target=image)
        return level, f"{head}, {mask.name}.", NEXT_STEP["segmented"].format(target=image)
    if kind is not None:
        return level, f"{head}: adaptation did not find the structures.", NEXT_STEP["no gain"]
    if taught:
        # An undone run's mask is the label-free one: nothing to count cells against.
        other = before is not None and before.name != mask.name
        merged = merged_cells(before.data, mask.data) if other else None
        if merged is None:
            return level, f"{head}, {mask.name}.", NEXT_STEP["taught"]
        caution = (
            f"{head}, {mask.name}. Caution: {merged[1]:.0f} cells per slice against "
            f"{merged[0]:.0f} in {before.name}: the strokes may have opened gaps in the "
            "membranes (neighbouring cells merge). Look side by side before trusting it."
        )
        return "warning", caution, NEXT_STEP["taught"]
    if before is None:
        return level, f"{head}, {mask.name}.", NEXT_STEP["adapted, no before"]
    return level, f"{head}.", NEXT_STEP["adapted"]


def new_mask_reading(
    viewer: Any, image: str, mask: Any, state: str, model: Any
) -> tuple[str, str, str, Any, bool]:
    """:func:`mask_reading` of a mask ``model`` just made of ``image``, with what it is
    compared with (the mask it is read against, or None) and whether strokes taught the
    model."""
    record = model.adaptation
    taught = record is not None and record.cure in STROKE_CURES
    before = mask_to_compare(viewer, image, state, taught)
    trained = model.fingerprint.foreground_fraction if model.fingerprint else None
    reading = mask_reading(image, mask, state, before, trained, taught)
    return (*reading, before, taught)


def stroke_reading(record: Any) -> str:
    """What learning from the strokes did, in one sentence from the adaptation ``record``:
    what was painted, how long, how many steps, the held-back strokes before and after (the
    loss too when the accuracy did not move), kept or undone."""
    d = record.details["strokes"]
    slices = d.get("slices")
    where = f", slice{'s' * (len(slices) > 1)} {', '.join(map(str, slices))}" if slices else ""
    seconds = f"{record.seconds:.1f}" if record.seconds < 10 else f"{record.seconds:.0f}"
    head = (
        f"Trained on {d['strokes']} strokes ({d['labelled_pixels']} px, "
        f"{percent(d['labelled_fraction'])} of {record.target}{where}) in {seconds} s, "
        f"{d['steps']} steps"
    )
    fallback = "label-free [adabn]" if record.cure == "adabn+strokes" else "source"
    return f"{head}; {stroke_verdict(d, fallback)}."


#: What Paint corrections says when the layer starts empty.
FIRST_STROKES = "A few thin strokes on one slice are enough to start."


def restored_note(
    kept: PaintedStrokes | None,
    restored: PaintedStrokes | None,
    target: str,
    shape: tuple[int, ...],
) -> tuple[str, str]:
    """What Paint corrections says of the model's own strokes, and at which level: brought
    back, brought back onto a layer of another name (maybe another image), or left out
    because they were painted on a grid of another shape."""
    if restored is not None:
        said = f"Brought back the strokes the model was taught with ({restored.describe()})"
        if names_layer(restored.target, target):
            return f"{said}: paint more where the mask is still wrong.", "info"
        return (
            f"{said}, on {target}: if {target} is another image, clear the layer before "
            "teaching (they say what is where on the other one).",
            "warning",
        )
    if kept is not None:
        size = "×".join(str(n) for n in shape)
        painted = "×".join(str(n) for n in kept.shape)
        return (
            f"The model's strokes were painted on {kept.target} ({painted}), not on this "
            f"{size} layer: choose that image as the target to bring them back. "
            f"{FIRST_STROKES}",
            "info",
        )
    return FIRST_STROKES, "info"


def other_model_note(model: Any, adapted: Any, viewer: Any) -> tuple[str, str]:
    """What *Segment and adapt* says when another model is loaded: which, that the previous
    model's adapted copy (``adapted``, if any) is no longer used, and the next step (the
    masks shown are the model before's, when there are any)."""
    record = adapted.adaptation if adapted is not None else None
    dropped = (
        f" The previous model's copy adapted to {record.target} is no longer used (not "
        "saved? load that model and adapt again)."
        if record is not None
        else ""
    )
    masks = any(MaskOrigin.of(layer) is not None for layer in viewer.layers)
    return f"Now using {model.name}.{dropped}", NEXT_STEP[
        "other model" if masks else "other model, no masks"
    ]


def segment_note(
    model: Any, image: str, shape: tuple[int, ...], voxel_size: Any, config: Any
) -> str | None:
    """What a segmentation of ``image`` says beside its mask's reading: the resampling to
    the model's scale (and where to type a voxel size), a threshold not the model's."""
    note = model.scale_note(image, shape, voxel_size, config.slice_axis)
    if note is not None:
        typed = " (type it in the voxel size (nm) field)" if voxel_size is None else ""
        note = note.rstrip(".") + typed + "."
    return " ".join(p for p in (note, threshold_note(model, config.threshold)) if p) or None


def threshold_note(model: Any, threshold: float | None) -> str | None:
    """What a threshold other than the model's own does to the mask (None: the model's)."""
    own = model.threshold_for(None)
    if threshold is None or abs(threshold - own) < 1e-6:
        return None
    return f"Threshold {threshold:.2f} (the model's: {own:g}): higher draws thinner structures."


def still_in_use(widget: Any, model: Any) -> bool:
    """Whether ``model`` (that a mask was segmented with) is still *Segment and adapt*'s
    model in use; if not, say that its mask is dropped: a walkthrough saw the previous
    model's mask described with the new model's figures."""
    if widget.session.current is model:
        return True
    widget.feedback.say(
        "warning",
        "The model changed while segmenting (another model loaded, an adaptation or a "
        "reset): that mask was discarded. Press Segment for the model in use.",
    )
    return False
