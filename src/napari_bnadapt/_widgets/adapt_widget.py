"""Segment and adapt dock widget: segment a layer, adapt BatchNorm statistics, teach it with
painted strokes, reset, save.

The widget is laid out from :data:`SECTIONS` (a title and the controls under it, in order),
and what each button needs is one entry of :meth:`AdaptWidget.button_rules`: a new flow is
a new section, its handlers and its rules (the strokes': :mod:`.strokes_section`; saving:
:mod:`.saving`). The adaptation's finer options (mode, α, patches, layers, ROI, stroke
steps) are shown on demand, so that the whole widget fits a laptop screen. The defaults
follow what the user just did: a new image, or the one selected in the layer list, is the
image to segment; the image just segmented is the unlabeled target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)

from ..adabn.config import CURES, MODES, POLARITY, STROKE_CURES, AdaptConfig
from ..adapt.api import adapt_steps
from ..arrays.resampling import parse_voxel_size
from ..errors import BnAdaptError
from ..inference import PredictConfig, Prediction, predict_steps
from ..model.bn_layers import batchnorm_modules
from ..model.loaded import LoadedModel
from .help import NEXT_STEP, control_of, explain, wrapping
from .layers import (
    ROLE,
    MaskOrigin,
    hide_older_masks,
    hide_opened_truth,
    image_to_follow,
    is_lazy,
    layer_data,
    layer_voxel_size,
    layers_of,
    mask_colours,
    mask_state,
    recorded_layer,
    result_layer,
    roi_mask,
    user_images,
)
from .layout import Section, button_row, lay_out
from .lazy_masks import lazy_job, show_lazy_mask
from .messages import Feedback
from .readings import new_mask_reading, other_model_note, segment_note, still_in_use
from .saving import chosen_path, save_model_file, save_package
from .session import session_for
from .strokes_section import OPTIONS as STROKE_OPTIONS
from .strokes_section import SECTION as STROKES
from .strokes_section import StrokeFlow
from .workers import JobRunner, Rule, stop_on_close

if TYPE_CHECKING:
    import napari

LAYER_CHOICES = ["all", "encoder", "decoder", "bottleneck", "first:2", "first:4"]
#: The adaptation's finer options, shown with "more options".
OPTIONS = ("mode", "alpha", "patches", "bn_layers", "polarity", "roi")

#: The widget's sections, top to bottom: a title and its controls (attribute names).
SECTIONS = (
    Section("Segment", ("image", "voxel_size", "segment_row", "segment_button")),
    Section(
        "Adapt to the new data (no labels needed)",
        ("target", "cure", "checks_row", *OPTIONS, "adapt_row"),
    ),
    STROKES,
    Section("Keep or undo", ("reset_button", "save_path", "save_row")),
)


class AdaptWidget(Container):
    """Image → mask; target → adapted statistics → mask again; reset; save."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self.viewer = viewer
        self.session = session_for(viewer)
        images = lambda _w=None: layers_of(viewer, "Image")  # noqa: E731
        self.image = ComboBox(label="image to segment", choices=images)
        self.voxel_size = LineEdit(label="voxel size (nm)", value="")
        self.voxel_size.native.setPlaceholderText("the layer's (e.g. 50,4.6,4.6)")
        self.probabilities = CheckBox(text="add the probability map", value=False)
        self.threshold = FloatSpinBox(label="threshold", min=0.01, max=0.99, step=0.05, value=0.5)
        self.segment_row = button_row(self.probabilities, self.threshold, labels=True)
        self.segment_button = PushButton(text="Segment")
        self.target = ComboBox(label="unlabeled target", choices=images)
        defaults = AdaptConfig()
        cures = [*CURES, *STROKE_CURES]
        self.cure = ComboBox(label="cure", choices=cures, value=defaults.cure)
        self.mode = ComboBox(label="mode", choices=list(MODES), value=defaults.mode)
        self.alpha = FloatSlider(
            label="α (0 source, 1 adapted)", min=0.0, max=1.0, value=defaults.alpha
        )
        self.patches = SpinBox(label="patches", min=1, max=100_000, value=defaults.patches)
        self.bn_layers = ComboBox(label="BN layers", choices=LAYER_CHOICES, value=defaults.layers)
        # What Latents may advise (an inverted contrast): the CLI's --polarity.
        self.polarity = ComboBox(label="contrast", choices=POLARITY, value=defaults.polarity)
        self.roi = ComboBox(
            label="sampling ROI",
            choices=lambda _w=None: layers_of(viewer, "Shapes", "Labels"),
            nullable=True,
            value=None,
        )
        self.more_options = CheckBox(
            text="more options", tooltip="mode, α, patches, layers, contrast, ROI, steps"
        )
        self.segment_after = CheckBox(text="then segment again", value=True)
        # Side by side: one row less, so that Keep or undo stays in view at 1366×768.
        self.checks_row = button_row(self.more_options, self.segment_after)
        self.adapt_button = PushButton(text="Adapt BatchNorm statistics")
        self.cancel_button = PushButton(text="Cancel")
        self.adapt_row = button_row(self.adapt_button, self.cancel_button)
        self.strokes = StrokeFlow(self)
        #: The model and adapted copy last shown (to tell what a change replaced).
        self._model_seen, self._adapted_seen = self.session.model, self.session.adapted
        self.reset_button = PushButton(text="Reset to source statistics")
        self.save_path = FileEdit(label="save adapted model", mode="w", filter="*.pt")
        self.save_button = PushButton(text="Save model")
        self.package_button = PushButton(text="Save as bioimage.io package")
        self.save_row = button_row(self.save_button, self.package_button)
        self.status = wrapping(Label(value=""))
        self.feedback = Feedback(viewer)
        self.runner = JobRunner(self.button_rules(), self.cancel_button, self.feedback)
        lay_out(self, "Segment and adapt", SECTIONS, [self.status, self.feedback.label])
        self._show_options(False)
        explain(self, "Segment and adapt")
        self._connect()
        self._follow(None)
        self._show_state()
        self.feedback.say("info", NEXT_STEP["start"])

    def button_rules(self) -> dict[Any, Rule]:
        """What each button needs besides an idle widget (nothing it cannot use is enabled)."""
        has_model = lambda: self.session.current is not None  # noqa: E731
        can_save = lambda: has_model() and chosen_path(self) is not None  # noqa: E731
        can_adapt = lambda: self.adaptable() and self.target.value is not None  # noqa: E731
        return {
            self.segment_button: lambda: has_model() and self.image.value is not None,
            self.adapt_button: lambda: can_adapt() and self.strokes.ready_for(self.cure.value),
            **self.strokes.button_rules(),
            self.reset_button: lambda: self.session.adapted is not None,
            self.save_button: can_save,
            self.package_button: can_save,
        }

    def _connect(self) -> None:
        self.segment_button.changed.connect(self.segment)
        self.adapt_button.changed.connect(self.adapt)
        self.reset_button.changed.connect(self.reset)
        self.save_button.changed.connect(self.save)
        self.package_button.changed.connect(self.save_package)
        for control in (self.image, self.target, self.cure, self.save_path):
            control.changed.connect(self.runner.update_buttons)
        self.strokes.connect()
        self.more_options.changed.connect(self._show_options)
        self.session.adapted_changed.connect(self._show_state)
        self.session.model_changed.connect(self._model_changed)
        self.session.model_changed.connect(self._follow_threshold)
        for event in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, event).connect(self._follow)
        self.viewer.layers.selection.events.active.connect(self._selected)
        stop_on_close(self.native, self.runner)

    # -- handlers ---------------------------------------------------------------------------

    def segment(self, *_: object, pending: str | None = None) -> Any:
        """Segment the chosen image with the current statistics (source or adapted);
        ``pending``: what was done before (an adaptation), said with the result."""
        model, layer = self._model(), self._layer(self.image.value, "an image to segment")
        if model is None or layer is None:
            return None
        config = PredictConfig(device=self.session.device, threshold=self.threshold.value)
        data = layer_data(layer)
        try:
            voxel_size = self.voxel_size_of(layer)
        except BnAdaptError as exc:
            self.feedback.say("error", str(exc))
            return None
        if is_lazy(layer):
            return self._segment_lazily(model, layer, config, voxel_size, pending)
        note = segment_note(model, layer.name, tuple(data.shape), voxel_size, config)
        worker = self.runner.start(
            lambda: predict_steps(model, data, config, voxel_size=voxel_size),
            lambda prediction: self._add_masks(prediction, layer, model, note, pending),
            f"segmenting {layer.name}",
        )
        if worker is not None and pending is None:
            self.feedback.say("info", f"Segmenting {layer.name}… (Cancel stops it.)")
        return worker

    def _segment_lazily(
        self,
        model: LoadedModel,
        layer: Any,
        config: PredictConfig,
        voxel_size: Any,
        pending: str | None = None,
    ) -> Any:
        job, note = lazy_job(model, layer, config, voxel_size)
        done = lambda result: show_lazy_mask(self, result, layer, model, note, pending)  # noqa: E731
        return self.runner.start(job, done, f"segmenting {layer.name} block by block")

    def adapt(self, *_: object) -> Any:
        """Re-estimate the statistics on the target layer (on a copy of the source model);
        a stroke cure learns from the target's painted strokes instead."""
        if self.cure.value in STROKE_CURES:
            return self.strokes.adapt()
        model, layer = self.session.model, self._layer(self.target.value, "an unlabeled target")
        if model is None or layer is None:
            if model is None:
                self.feedback.say("error", "Load a model first (step 1, Model).")
            return None
        data = layer_data(layer)
        try:
            voxel_size = self.voxel_size_of(layer)
            roi = roi_mask(self.roi.value, tuple(data.shape))
            config = self.adapt_config(self.cure.value)
        except BnAdaptError as exc:  # invalid ROI or option: say what to do, change nothing
            self.feedback.say("error", str(exc))
            return None
        worker = self.runner.start(
            lambda: adapt_steps(
                model, data, config, roi=roi, target_name=layer.name, voxel_size=voxel_size
            ),
            lambda result: self._adapted(result, model),
            f"adapting to {layer.name}",
        )
        if worker is not None:
            self.feedback.say(
                "info",
                f"Adapting a copy of the network to {layer.name} ({config.cure})… "
                "Cancel stops it with nothing changed.",
            )
        return worker

    def adapt_config(self, cure: str) -> AdaptConfig:
        """The options chosen in the widget, for ``cure`` (raises what is wrong with them)."""
        return AdaptConfig(
            cure=cure, mode=self.mode.value, alpha=float(self.alpha.value),
            patches=int(self.patches.value), layers=self.bn_layers.value,
            polarity=self.polarity.value, device=self.session.device,
        )  # fmt: skip

    def reset(self, *_: object) -> None:
        """Forget the adapted statistics: segmentation uses the source ones again."""
        if self.session.adapted is None:
            self.feedback.say("info", "Nothing to reset: the statistics are the source's.")
            return
        weights = " and weights" if self.session.adapted.source_weights else ""
        self.session.reset()
        self.feedback.say(
            "info", f"Back to the source statistics{weights}, as trained.", NEXT_STEP["reset"]
        )

    def save(self, *_: object) -> Any:
        """Save the current model to the chosen .pt file (never over an input)."""
        return save_model_file(self)

    def save_package(self, *_: object) -> Any:
        """Export the current model as a bioimage.io package beside the chosen file."""
        return save_package(self)

    # -- results (main thread) ---------------------------------------------------------------

    def _adapted(self, result: Any, source: LoadedModel | None = None) -> None:
        if source is not None and self.session.model is not source:
            self.feedback.say(
                "warning", "Another model was loaded while adapting: the result was discarded."
            )
            return
        self.session.set_adapted(result.model)
        record = result.record
        done = f"Adapted to {record.target} ({record.summary()})."
        if not self.segment_after.value:
            self.feedback.say("info", done, NEXT_STEP["adapted, not segmented"])
            return
        target = recorded_layer(self.viewer, record.target)
        if self.image.value is None and target is None:  # closed while it was adapted to
            self.feedback.say("info", done, f"Open {record.target} again to segment it.")
            return
        if self.image.value is None:
            self.image.value = target
        if self.segment(pending=done) is None:  # it could not segment: say both
            self.feedback.say(self.feedback.level, f"{done}\n{self.feedback.text}", toast=False)

    def _add_masks(
        self,
        prediction: Prediction,
        layer: Any,
        model: LoadedModel,
        note: str | None = None,
        pending: str | None = None,
    ) -> None:
        if layer not in self.viewer.layers:
            self.feedback.say(
                "warning", f"{layer.name} was closed while it was segmented: no mask added."
            )
            return
        if not still_in_use(self, model):
            return
        state = mask_state(model)
        origin = MaskOrigin(prediction, state, layer.name, model.name)
        mask = result_layer(
            self.viewer, f"{layer.name} mask [{state}]", prediction.segmentation, layer,
            metadata={MaskOrigin.KEY: origin}, **mask_colours(state, prediction.multiclass),
        )  # fmt: skip
        hide_older_masks(self.viewer, layer.name, mask)
        if self.probabilities.value:
            result_layer(
                self.viewer, f"{layer.name} probability [{state}]", prediction.probabilities,
                layer, kind="image", colormap="magma", opacity=0.6, blending="additive",
                metadata={ROLE: "probability"},
            )  # fmt: skip
        self.viewer.layers.selection.active = mask  # its tools, not a hidden layer's
        if state == "source" and layer in self.target.choices:
            self.target.value = layer  # the image just segmented is the one to adapt to
        level, text, next_step, before, taught = new_mask_reading(
            self.viewer, layer.name, mask, state, model
        )
        parts = [p for p in (pending, note, text) if p]
        self.feedback.say(level, "\n".join(parts), next_step, toast=False)
        if taught:  # stay here, the strokes on top: paint more, teach again
            self.strokes.raise_strokes(layer)
        elif before is not None and before.name != mask.name:
            self.session.masks_ready.emit(before, mask)

    # -- helpers -----------------------------------------------------------------------------

    def _model(self) -> LoadedModel | None:
        if self.session.current is None:
            self.feedback.say("error", "Load a model first (step 1, Model).")
        return self.session.current

    def adaptable(self) -> bool:
        model = self.session.model
        return model is not None and bool(batchnorm_modules(model.module))

    def voxel_size_of(self, layer: Any) -> tuple[float, ...] | None:
        """The voxel size typed in (nm), else the layer's own scale when it is physical."""
        text = str(self.voxel_size.value or "")
        typed = parse_voxel_size(text, layer_data(layer).ndim, "voxel size (nm)")
        return typed or layer_voxel_size(layer)

    def _layer(self, layer: Any, what: str) -> Any:
        if layer is None:
            self.feedback.say(
                "error", f"Choose {what} (open one, or File ▸ Open Sample ▸ napari-bnadapt)."
            )
        return layer

    def _follow(self, event: Any = None) -> None:
        """Refresh the layer choices. At start, and when the user opens an image, the newest
        image is the image to segment and the target; a closed choice falls to the newest."""
        chosen = {combo: combo.value for combo in (self.image, self.target)}
        self.reset_choices()
        for combo, current in chosen.items():
            followed = image_to_follow(self.viewer, event, current)
            if followed is not None:
                combo.value = followed
        hide_opened_truth(event)
        self.runner.update_buttons()

    def _selected(self, event: Any = None) -> None:
        """The image selected in the layer list is the image to segment."""
        layer = self.viewer.layers.selection.active
        if layer is not None and layer in user_images(self.viewer) and not self.runner.running:
            self.image.value = layer

    def _model_changed(self, model: LoadedModel | None) -> None:
        """Another model: say so (the message and masks on screen are of the one before),
        and that its adapted copy, if any, is no longer in use."""
        before, adapted, self._model_seen = self._model_seen, self._adapted_seen, model
        self._show_state()
        if before is not None and model is not None and model is not before:
            self.feedback.say("info", *other_model_note(model, adapted, self.viewer))

    def _follow_threshold(self, model: LoadedModel | None) -> None:  # a package's, else 0.5
        self.threshold.value = model.threshold_for(None) if model is not None else 0.5

    def _show_options(self, shown: bool) -> None:
        for name in (*OPTIONS, *STROKE_OPTIONS):
            control_of(self, name).visible = bool(shown)

    def _show_state(self, *_: object) -> None:
        adapted = self._adapted_seen = self.session.adapted
        if self.session.model is None:
            self.status.value = "Statistics: no model loaded (step 1, Model)."
        elif adapted is None:
            self.status.value = "Statistics: source (as trained)."
        else:
            record = adapted.adaptation
            phrase = record.statistics_phrase() if record else "adapted (?)"
            self.status.value = f"Statistics: {phrase}."
        self.runner.update_buttons()
