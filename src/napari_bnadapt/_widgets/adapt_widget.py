"""Segment and adapt dock widget: segment a layer, adapt BatchNorm statistics, reset, save."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSlider,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)

from ..adabn.config import CURES, MODES, AdaptConfig
from ..adapt.api import adapt_steps
from ..arrays.resampling import parse_voxel_size
from ..blockwise.stream import predict_to_zarr_steps
from ..errors import BnAdaptError
from ..export.formats import export_model
from ..inference import PredictConfig, Prediction, predict_steps
from ..io.volumes import read_volume
from ..model.checkpoint import save_model
from ..model.loaded import LoadedModel
from .help import NEXT_STEP, add_purpose, explain, wrapping
from .layers import (
    MaskOrigin,
    is_lazy,
    layer_data,
    layer_voxel_size,
    layers_of,
    mask_colours,
    mask_state,
    result_layer,
    roi_mask,
)
from .messages import notify
from .session import session_for
from .workers import JobRunner, one_step, stop_on_close

if TYPE_CHECKING:
    import napari

LAYER_CHOICES = ["all", "encoder", "decoder", "bottleneck", "first:2", "first:4"]


class AdaptWidget(Container):
    """Image → mask; target → adapted statistics → mask again; reset; save."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.session = session_for(viewer)
        images = lambda _w=None: layers_of(viewer, "Image")  # noqa: E731
        self.image = ComboBox(label="image to segment", choices=images)
        self.voxel_size = LineEdit(label="voxel size (nm)", value="")
        self.voxel_size.native.setPlaceholderText("the layer's (e.g. 50,4.6,4.6)")
        self.probabilities = CheckBox(text="also add the probability map", value=False)
        self.segment_button = PushButton(text="Segment")
        self.target = ComboBox(label="unlabeled target", choices=images)
        defaults = AdaptConfig()
        self.cure = ComboBox(label="cure", choices=list(CURES), value=defaults.cure)
        self.mode = ComboBox(label="mode", choices=list(MODES), value=defaults.mode)
        self.alpha = FloatSlider(
            label="α (0 source, 1 adapted)", min=0.0, max=1.0, value=defaults.alpha
        )
        self.patches = SpinBox(label="patches", min=1, max=100_000, value=defaults.patches)
        self.bn_layers = ComboBox(label="BN layers", choices=LAYER_CHOICES, value=defaults.layers)
        self.roi = ComboBox(
            label="sampling ROI",
            choices=lambda _w=None: layers_of(viewer, "Shapes", "Labels"),
            nullable=True,
            value=None,
        )
        self.segment_after = CheckBox(text="segment again with the adapted statistics", value=True)
        self.adapt_button = PushButton(text="Adapt BatchNorm statistics")
        self.cancel_button = PushButton(text="Cancel")
        self.reset_button = PushButton(text="Reset to source statistics")
        self.save_path = FileEdit(label="save adapted model", mode="w", filter="*.pt")
        self.save_button = PushButton(text="Save model")
        self.package_button = PushButton(text="Save as bioimage.io package")
        self.status = Label(value="")
        buttons = [self.segment_button, self.adapt_button, self.reset_button, self.save_button]
        self.runner = JobRunner([*buttons, self.package_button], self.cancel_button)
        self.next_step = Label(value="")
        self.extend(
            [
                self.image, self.voxel_size, self.probabilities, self.segment_button,
                self.target, self.cure, self.mode, self.alpha, self.patches, self.bn_layers, self.roi,
                self.segment_after, self.adapt_button, self.cancel_button, self.reset_button,
                self.save_path, self.save_button, self.package_button,
            ]
        )  # fmt: skip
        add_purpose(self, "Segment and adapt")
        for line in (self.status, self.next_step):  # full width, under the buttons
            self.native.layout().addWidget(wrapping(line).native)
        explain(self, "Segment and adapt")
        self.segment_button.changed.connect(self.segment)
        self.adapt_button.changed.connect(self.adapt)
        self.reset_button.changed.connect(self.reset)
        self.save_button.changed.connect(self.save)
        self.package_button.changed.connect(self.save_package)
        self.session.adapted_changed.connect(self._show_state)
        self.session.model_changed.connect(lambda _: self._show_state())
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._refresh_choices)
        stop_on_close(self.native, self.runner)
        self._refresh_choices()
        self._show_state()

    # -- handlers ---------------------------------------------------------------------------

    def segment(self, *_: object) -> Any:
        """Segment the chosen image with the current statistics (source or adapted)."""
        model, layer = self._model(), self._layer(self.image.value, "an image to segment")
        if model is None or layer is None:
            return None
        config = PredictConfig(device=self.session.device)
        data = layer_data(layer)
        try:
            voxel_size = self._voxel_size_of(layer)
        except BnAdaptError as exc:
            notify("error", str(exc))
            return None
        if is_lazy(layer):
            return self._segment_lazily(model, layer, config, voxel_size)
        note = model.scale_note(layer.name, tuple(data.shape), voxel_size, config.slice_axis)
        if note is not None and voxel_size is None:
            note += " (the voxel size (nm) field above)"
        return self.runner.start(
            lambda: predict_steps(model, data, config, voxel_size=voxel_size),
            lambda prediction: self._add_masks(prediction, layer, model, note),
            f"segmenting {layer.name}",
        )

    def _segment_lazily(
        self, model: LoadedModel, layer: Any, config: PredictConfig, voxel_size: Any
    ) -> Any:
        """A lazy layer (a container, a huge file): predicted block by block into an
        OME-Zarr store on disk, then shown lazily, so the mask never sits in RAM."""
        data = layer_data(layer)
        note = model.scale_note(layer.name, tuple(data.shape), voxel_size, config.slice_axis)
        if note is not None:  # resampled block by block, or run at its own pixel size
            notify("info", note)
        folder = Path(tempfile.mkdtemp(prefix="bnadapt-"))
        out = folder / f"{_file_name(layer.name)}-mask.zarr"
        unit = "nm" if voxel_size else None

        def job() -> Any:
            return predict_to_zarr_steps(
                model, data, out, config, scale=voxel_size, unit=unit,
                name=f"{layer.name} mask", voxel_size=voxel_size,
            )  # fmt: skip

        return self.runner.start(
            job,
            lambda result: self._add_lazy_mask(result, layer, model),
            f"segmenting {layer.name} block by block",
        )

    def adapt(self, *_: object) -> Any:
        """Re-estimate the statistics on the target layer (on a copy of the source model)."""
        model, layer = self.session.model, self._layer(self.target.value, "an unlabeled target")
        if model is None or layer is None:
            if model is None:
                notify("error", "load a model first (Model widget)")
            return None
        data = layer_data(layer)
        try:
            voxel_size = self._voxel_size_of(layer)
            roi = roi_mask(self.roi.value, tuple(data.shape))
            config = AdaptConfig(
                cure=self.cure.value, mode=self.mode.value, alpha=float(self.alpha.value),
                patches=int(self.patches.value), layers=self.bn_layers.value,
                device=self.session.device,
            )  # fmt: skip
        except BnAdaptError as exc:  # invalid ROI or option: say what to do, change nothing
            notify("error", str(exc))
            return None
        return self.runner.start(
            lambda: adapt_steps(
                model, data, config, roi=roi, target_name=layer.name, voxel_size=voxel_size
            ),
            lambda result: self._adapted(result, model),
            f"adapting to {layer.name}",
        )

    def reset(self, *_: object) -> None:
        """Forget the adapted statistics: segmentation uses the source ones again."""
        self.session.reset()
        notify("info", "back to the source statistics")

    def save(self, *_: object) -> None:
        model = self.session.current
        path = str(self.save_path.value or "")
        if model is None:
            notify("error", "load a model first (Model widget)")
            return
        if not path or path == ".":
            notify("error", "choose a file to save the model to")
            return

        self.runner.start(
            one_step(save_model, model, path),
            lambda _: notify("info", f"saved the {model.state} model to {path}"),
            "saving",
        )

    def save_package(self, *_: object) -> None:
        """Export the current model as a bioimage.io package (.zip) beside the chosen file,
        with test tensors and a cover cut from the adaptation's target layer."""
        model = self.session.current
        path = Path(str(self.save_path.value or ""))
        if model is None:
            notify("error", "load a model first (Model widget)")
            return
        if not path.name or str(path) == ".":
            notify("error", "choose a file to save the package to (a .zip)")
            return
        path = path.with_suffix(".zip")
        sample = self._sample_for(model)
        self.runner.start(
            one_step(export_model, model, path, "bioimageio", sample),
            lambda result: notify("info", f"saved {path.name}: {result.test_message}"),
            "exporting a bioimage.io package",
        )

    def _sample_for(self, model: LoadedModel) -> Any:
        """The layer to cut a package's test input from: the adaptation's target, else
        the image to segment (None: a synthetic image)."""
        record = model.adaptation
        if record is not None and record.target in self.viewer.layers:
            return layer_data(self.viewer.layers[record.target])
        return layer_data(self.image.value) if self.image.value is not None else None

    # -- results (main thread) ---------------------------------------------------------------

    def _adapted(self, result: Any, source: LoadedModel | None = None) -> None:
        if source is not None and self.session.model is not source:
            notify("warning", "another model was loaded while adapting: the result was discarded")
            return
        self.session.set_adapted(result.model)
        record = result.record
        notify("info", record.summary())
        if self.segment_after.value:
            if self.image.value is None and record.target in self.viewer.layers:
                self.image.value = self.viewer.layers[record.target]
            self.segment()

    def _add_masks(
        self, prediction: Prediction, layer: Any, model: LoadedModel, note: str | None = None
    ) -> None:
        if layer not in self.viewer.layers:
            notify("warning", f"{layer.name} was closed while it was segmented: no mask added")
            return
        if note is not None:  # what happened to the scale matters more than any cure
            notify("info", note)
        state = mask_state(model)
        origin = MaskOrigin(prediction, state, layer.name, model.name)
        mask = result_layer(
            self.viewer, f"{layer.name} mask [{state}]", prediction.segmentation, layer,
            metadata={MaskOrigin.KEY: origin}, **mask_colours(state, prediction.multiclass),
        )  # fmt: skip
        before = f"{layer.name} mask [source]"
        if state != "source" and before in self.viewer.layers:
            self.next_step.value = NEXT_STEP["adapted"]
            self.session.masks_ready.emit(self.viewer.layers[before], mask)
        else:
            self.next_step.value = NEXT_STEP["segmented"]
        if self.probabilities.value:
            result_layer(
                self.viewer, f"{layer.name} probability [{state}]", prediction.probabilities,
                layer, kind="image", colormap="magma", opacity=0.6, blending="additive",
            )  # fmt: skip

    def _add_lazy_mask(self, result: Any, layer: Any, model: LoadedModel) -> None:
        state = mask_state(model)
        mask = read_volume(result.out).data
        result_layer(
            self.viewer, f"{layer.name} mask [{state}]", mask, layer,
            metadata={"source_path": str(result.out), "lazy": True}, **mask_colours(state),
        )  # fmt: skip
        notify("info", f"{layer.name}: mask written block by block to {result.out}")

    # -- helpers -----------------------------------------------------------------------------

    def _model(self) -> LoadedModel | None:
        if self.session.current is None:
            notify("error", "load a model first (Model widget)")
        return self.session.current

    def _voxel_size_of(self, layer: Any) -> tuple[float, ...] | None:
        """The voxel size typed in (nm), else the layer's own scale when it is physical."""
        text = str(self.voxel_size.value or "")
        typed = parse_voxel_size(text, layer_data(layer).ndim, "voxel size (nm)")
        return typed or layer_voxel_size(layer)

    @staticmethod
    def _layer(layer: Any, what: str) -> Any:
        if layer is None:
            notify("error", f"choose {what} (open one, or File ▸ Open Sample ▸ napari-bnadapt)")
        return layer

    def _refresh_choices(self, *_: object) -> None:
        self.reset_choices()
        if self.target.value is None and self.target.choices:
            self.target.value = self.target.choices[-1]

    def _show_state(self, *_: object) -> None:
        adapted = self.session.adapted
        if adapted is None:
            self.status.value = "statistics: source (as trained)"
        else:
            record = adapted.adaptation
            target = f"{record.cure} on {record.target}" if record else "?"
            self.status.value = f"statistics: adapted ({target})"
        self.reset_button.enabled = adapted is not None and not self.runner.running


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "layer"
