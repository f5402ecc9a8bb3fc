"""Teaching the network with a few painted strokes: a section of *Segment and adapt*.

"Paint corrections" adds a labels layer over the unlabeled target (1 = background,
2 = foreground for a one-channel model; class index + 1 for a multi-class one), the brush
ready; "Adapt with strokes" hands its data to the one core job,
:func:`~napari_bnadapt.adapt.api.adapt_steps` with a stroke cure, and segments the target
again; "Where to paint next" shows :func:`~napari_bnadapt.diagnostics.uncertainty.uncertainty_steps`
as a layer and "Next uncertain region" moves the view to
:func:`~napari_bnadapt.diagnostics.uncertainty.next_uncertain_region`. The section is data
(:data:`SECTION`), handlers and :meth:`StrokeFlow.button_rules`, like every flow of the
widget; it reads the widget's target, cure and options, and reports in its feedback line.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from magicgui.widgets import PushButton, SpinBox

from ..adabn.config import STROKE_CURES, AdaptConfig
from ..adapt.api import adapt_steps
from ..adapt.strokes import FOREGROUND, brush_width, class_names
from ..diagnostics.uncertainty import next_uncertain_region, uncertainty_steps
from ..errors import BnAdaptError
from ..inference import PredictConfig
from ..io.volumes import STROKES_TARGET
from ..memory import array_bytes
from ..model.painted_strokes import PaintedStrokes
from .help import NEXT_STEP
from .layers import (
    ROLE,
    is_lazy,
    kind_of,
    layer_data,
    names_layer,
    result_layer,
    roi_mask,
    role_of,
)
from .layout import Section, button_row
from .readings import FIRST_STROKES, restored_note, stroke_reading
from .stroke_layers import (
    go_to,
    legend_of,
    outline_region,
    percent_unsure,
    stroke_colours,
    unsure_colours,
)
from .workers import Rule

#: The *Segment and adapt* widget (typed loosely: its module imports this one).
AdaptWidget = Any

#: The section's controls (attributes of ``AdaptWidget.strokes``); ``steps`` is shown with
#: the widget's "more options".
SECTION = Section(
    "Not right yet? Teach it with a few strokes",
    ("strokes.paint_row", "strokes.steps", "strokes.where_row"),
)
OPTIONS = ("strokes.steps",)
#: The cure "Adapt with strokes" runs unless a stroke cure is chosen in the cure menu.
DEFAULT_CURE = "adabn+strokes"
#: A target on disk (HDF5, zarr) up to this size is read into memory to be taught and
#: mapped; larger ones are refused (a crop opened as an image is painted instead).
IN_MEMORY_LIMIT = 512 * 2**20
#: Edge (target pixels) of the regions "Next uncertain region" goes to.
REGION = 64


class StrokeFlow:
    """The stroke section of ``widget``: its controls, handlers and button rules."""

    def __init__(self, widget: AdaptWidget) -> None:
        self.widget = widget
        self.viewer = widget.viewer
        self.paint_button = PushButton(text="Paint corrections")
        self.adapt_button = PushButton(text="Adapt with strokes")
        self.paint_row = button_row(self.paint_button, self.adapt_button)
        steps = AdaptConfig().stroke_steps
        self.steps = SpinBox(label="stroke steps (at most)", min=1, max=5000, value=steps)
        self.map_button = PushButton(text="Where to paint next")
        self.next_button = PushButton(text="Next uncertain region")
        self.where_row = button_row(self.map_button, self.next_button)
        #: The uncertainty map shown (its layer, the layer it was made of), the regions
        #: visited on it.
        self.uncertainty: np.ndarray | None = None
        self.mapped: Any = None
        self.map_of: Any = None
        self.visited: list[tuple[slice, ...]] = []

    def button_rules(self) -> dict[Any, Rule]:
        """What each of the section's buttons needs besides an idle widget."""
        session, target = self.widget.session, lambda: self.widget.target.value
        return {
            self.paint_button: lambda: session.model is not None and target() is not None,
            self.adapt_button: lambda: self.widget.adaptable() and self.painted(target()),
            self.map_button: lambda: session.current is not None and target() is not None,
            self.next_button: lambda: self.mapped in self.viewer.layers,
        }

    def connect(self) -> None:
        self.paint_button.changed.connect(self.paint)
        self.adapt_button.changed.connect(self.adapt)
        self.map_button.changed.connect(self.show_uncertainty)
        self.next_button.changed.connect(self.next_region)
        session = self.widget.session
        for event in (session.adapted_changed, session.model_changed):
            event.connect(lambda *_: self.forget_map())
        self.viewer.layers.events.inserted.connect(lambda event: self._watch(event.value))
        for layer in self.viewer.layers:
            self._watch(layer)

    # -- handlers ---------------------------------------------------------------------------

    def paint(self, *_: object) -> Any:
        """Add (or select) the strokes layer of the target, in paint mode, foreground ready."""
        widget = self.widget
        model, target = widget.session.model, widget.target.value
        if model is None or target is None:
            missing = "Load a model first (step 1, Model)" if model is None else None
            widget.feedback.say("error", missing or "Choose an unlabeled target to paint on.")
            return None
        if self._refuse_lazy(target):
            return None
        layer, start, level = self.strokes_layer(target), FIRST_STROKES, "info"
        if layer is None:
            kept = self.kept_strokes()
            shape = tuple(np.shape(layer_data(target)))
            restored = kept if kept is not None and kept.fits(shape) else None
            layer = self._add_strokes_layer(target, restored)
            if layer is None:
                return None
            start, level = restored_note(kept, restored, target.name, shape)
        self.viewer.layers.selection.active = layer
        layer.visible = True
        layer.mode = "paint"
        layer.selected_label = FOREGROUND
        widget.feedback.say(
            level, f"Paint on {layer.name}: {legend_of(model)}. {start}", NEXT_STEP["painting"]
        )
        return layer

    def kept_strokes(self) -> PaintedStrokes | None:
        """The strokes the current (else the loaded) model was taught with, if any."""
        session = self.widget.session
        for model in (session.current, session.model):
            if model is not None and model.strokes is not None:
                return model.strokes
        return None

    def adapt(self, *_: object) -> Any:
        """Teach a copy of the network with the target's strokes, then segment it again."""
        widget = self.widget
        model, target = widget.session.model, self._target_for(widget.session.model)
        if target is None:
            return None
        layer = self.strokes_layer(target)
        if not self.painted(target):
            widget.feedback.say(
                "error",
                f"Nothing painted on {target.name} yet: press Paint corrections and paint a "
                "few strokes of each label.",
            )
            return None
        cure = widget.cure.value if widget.cure.value in STROKE_CURES else DEFAULT_CURE
        if self._refuse_lazy(target):
            return None
        # Read once (a small volume on disk too); the strokes copied: painting may go on.
        data, strokes = np.asarray(layer_data(target)), np.array(layer.data)
        try:
            voxel_size = widget.voxel_size_of(target)
            roi = roi_mask(widget.roi.value, tuple(np.shape(data)))  # AdaBN's patches
            config = replace(widget.adapt_config(cure), stroke_steps=int(self.steps.value))
        except BnAdaptError as exc:
            widget.feedback.say("error", str(exc))
            return None
        worker = widget.runner.start(
            lambda: adapt_steps(
                model, data, config, roi=roi, target_name=target.name, voxel_size=voxel_size,
                strokes=strokes, strokes_name=layer.name,
            ),
            lambda result: self._taught(result, model, target),
            f"learning from the strokes on {target.name}",
        )  # fmt: skip
        if worker is not None:
            widget.feedback.say(
                "info",
                f"Teaching a copy of the network with the strokes of {layer.name} ({cure}, "
                f"at most {config.stroke_steps} steps)… Cancel stops it with nothing changed.",
            )
        return worker

    def show_uncertainty(self, *_: object) -> Any:
        """Map where the current network is unsure on the target, as a layer."""
        widget = self.widget
        model, target = widget.session.current, self._target_for(widget.session.current)
        if target is None:
            return None
        if self._refuse_lazy(target):
            return None
        data = np.asarray(layer_data(target))  # a small volume on disk is read once
        try:
            voxel_size = widget.voxel_size_of(target)
        except BnAdaptError as exc:
            widget.feedback.say("error", str(exc))
            return None
        config = PredictConfig(device=widget.session.device)
        worker = widget.runner.start(
            lambda: uncertainty_steps(model, data, "entropy", config, voxel_size=voxel_size),
            lambda found: self._show_map(found, target, model.state),
            f"mapping where the network is unsure on {target.name}",
        )
        if worker is not None:
            widget.feedback.say("info", f"Mapping where the network is unsure on {target.name}…")
        return worker

    def next_region(self, *_: object) -> tuple[slice, ...] | None:
        """Move the view to the most unsure region not visited yet nor painted."""
        feedback, target = self.widget.feedback, self._mapped_target()
        if self.uncertainty is None or target is None:
            feedback.say("error", "Press Where to paint next first (the map is gone).")
            return None
        strokes = self.strokes_layer(target)
        painted = None
        if strokes is not None and np.shape(strokes.data) == self.uncertainty.shape:
            painted = np.asarray(strokes.data)
        region = next_uncertain_region(self.uncertainty, REGION, self.visited, painted=painted)
        if region is None:
            feedback.say(
                "info",
                f"No unsure region of {target.name} is left unvisited or unpainted.",
                "Press Adapt with strokes, then Where to paint next again for a new map.",
            )
            return None
        self.visited.append(region)
        go_to(self.viewer, target, region)
        outline_region(self.viewer, target, region, {ROLE: "region"})
        if strokes is not None:
            self.raise_strokes(target)  # over the outline, selected, ready to paint
        mean = float(self.uncertainty[region].mean())
        where = ", ".join(f"{s.start}–{s.stop - 1}" for s in region[-2:])
        plane = f"slice {region[0].start}, " if self.uncertainty.ndim == 3 else ""
        feedback.say(
            "info",
            f"Unsure region {len(self.visited)} of {target.name}: {plane}y, x {where} "
            f"(uncertainty {mean:.2f}; 0 sure, 1 a coin toss).",
            NEXT_STEP["region"],
        )
        return region

    # -- what the buttons need ------------------------------------------------------------

    def _target_for(self, model: Any) -> Any:
        """The chosen target when ``model`` and a target are there; else None, said."""
        target = self.widget.target.value
        if model is None or target is None:
            self.widget.feedback.say("error", "Load a model and choose the unlabeled target first.")
            return None
        return target

    def strokes_layer(self, target: Any) -> Any:
        """The strokes layer painted for ``target`` (made by Paint corrections, or a labels
        layer named ``<target> strokes``, e.g. saved strokes opened again), or None."""
        if target is None:
            return None
        shape = np.shape(layer_data(target))
        for layer in reversed(self.viewer.layers):
            if kind_of(layer) != "Labels" or np.shape(layer.data) != shape:
                continue
            meta = getattr(layer, "metadata", {})
            painted_on = str(meta.get(STROKES_TARGET) or "")
            if names_layer(painted_on, target.name) or layer.name == f"{target.name} strokes":
                return layer
        return None

    def ready_for(self, cure: str) -> bool:
        """Whether ``cure`` can run on the target: a label-free one, or strokes painted."""
        return cure not in STROKE_CURES or self.painted(self.widget.target.value)

    def painted(self, target: Any) -> bool:
        layer = self.strokes_layer(target)
        return layer is not None and bool(np.any(layer.data))

    def raise_strokes(self, target: Any) -> None:
        """Keep the target's strokes above a mask just added, ready to paint more."""
        layer = self.strokes_layer(target)
        if layer is None:
            return
        layers = self.viewer.layers
        layers.move(layers.index(layer), len(layers))
        layers.selection.active = layer
        layer.mode = "paint"

    # -- results (main thread) -----------------------------------------------------------

    def _taught(self, result: Any, source: Any, target: Any) -> None:
        widget = self.widget
        if widget.session.model is not source:
            widget.feedback.say(
                "warning", "Another model was loaded while learning: the result was discarded."
            )
            return
        widget.session.set_adapted(result.model)
        done = stroke_reading(result.record)
        if target not in self.viewer.layers:
            widget.feedback.say("info", done, "Open the target again to segment it.")
            return
        widget.image.value = target  # the strokes were painted on it: segment it again
        if widget.segment(pending=done) is None:
            widget.feedback.say(widget.feedback.level, f"{done}\n{widget.feedback.text}")

    def _show_map(self, found: np.ndarray, target: Any, state: str) -> None:
        if target not in self.viewer.layers:
            self.widget.feedback.say("warning", f"{target.name} was closed: no map added.")
            return
        layer = result_layer(
            self.viewer, f"{target.name} uncertainty", found, target, kind="image",
            colormap=unsure_colours(), blending="translucent", contrast_limits=(0.0, 1.0),
            metadata={ROLE: "uncertainty"},
        )  # fmt: skip
        self.uncertainty, self.mapped, self.map_of, self.visited = found, layer, target, []
        strokes = self.strokes_layer(target)
        if strokes is not None:
            self.raise_strokes(target)  # the strokes over the map, still paintable
        self.widget.feedback.say(
            "info",
            f"{layer.name}: the redder, the less sure the {state} network is "
            f"({percent_unsure(found)} of the pixels unsure, above 0.5).",
            NEXT_STEP["mapped"],
        )
        self.widget.runner.update_buttons()

    def _add_strokes_layer(self, target: Any, restored: PaintedStrokes | None) -> Any:
        widget, model = self.widget, self.widget.session.model
        shape = tuple(np.shape(layer_data(target)))
        try:
            width = brush_width(model, shape, widget.voxel_size_of(target))
        except BnAdaptError as exc:
            widget.feedback.say("error", str(exc))
            return None
        names = ("not labelled", *class_names(model))
        data = restored.to_array() if restored is not None else np.zeros(shape, np.uint8)
        layer = result_layer(
            self.viewer, f"{target.name} strokes", data, target,
            features={"class": list(names)}, opacity=1.0, **stroke_colours(model),
            metadata={ROLE: "strokes", STROKES_TARGET: target.name},
        )  # fmt: skip
        layer.brush_size = width
        return layer

    def _refuse_lazy(self, target: Any) -> bool:
        """A layer that stays on disk is taught and mapped from memory: one too large for
        that is refused, and said (a small HDF5 or zarr volume was refused whole)."""
        data = layer_data(target)
        size = array_bytes(np.shape(data), np.dtype(data.dtype).itemsize)
        refused = is_lazy(target) and size > IN_MEMORY_LIMIT
        if refused:
            self.widget.feedback.say(
                "error",
                f"{target.name} stays on disk ({size / 2**30:.1f} GiB): strokes are taught "
                "and mapped in memory, up to 0.5 GiB; open a crop of it as an image to paint "
                "on (bnadapt predict works block by block on the whole).",
            )
        return refused

    def forget_map(self) -> None:
        """A map of another network is out of date: hidden (with its outline), and Next
        uncertain region waits for a new one (it would send the user to the old doubts)."""
        if self.mapped is None:
            return
        for layer in self.viewer.layers:
            if role_of(layer) in ("uncertainty", "region"):
                layer.visible = False
        self.uncertainty, self.mapped, self.map_of, self.visited = None, None, None, []
        self.widget.runner.update_buttons()

    def _mapped_target(self) -> Any:
        """The layer the shown map was made of (None: the map or the layer was closed)."""
        if self.mapped not in self.viewer.layers or self.map_of not in self.viewer.layers:
            return None
        return self.map_of

    def _watch(self, layer: Any) -> None:
        """Painting on a strokes layer may enable Adapt with strokes (masks are not watched:
        their redraw on every slice would check the strokes again each time)."""
        strokes = role_of(layer) == "strokes" or str(layer.name).endswith(" strokes")
        if kind_of(layer) == "Labels" and strokes:
            for event in (layer.events.paint, layer.events.set_data, layer.events.data):
                event.connect(lambda *_: self.widget.runner.update_buttons())
