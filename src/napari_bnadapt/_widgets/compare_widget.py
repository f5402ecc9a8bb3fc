"""Compare dock widget: masks before/after (and more cures) side by side, a gained/lost
layer, metrics per mask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, Select, Table
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtWidgets import QDockWidget

from ..diagnostics.quality import MaskComparison, compare_many, compare_masks
from .help import add_purpose, explain, show_as_written
from .layers import MaskOrigin, layers_of, prediction_of, result_layer
from .messages import notify
from .session import session_for
from .workers import JobRunner, one_step, stop_on_close

if TYPE_CHECKING:
    import napari

GAINED, LOST = 1, 2
DIFFERENCE_COLOURS = {GAINED: "lime", LOST: "magenta", None: "transparent"}
METRICS = (
    "entropy", "confident_fraction", "foreground_fraction", "object_count", "dice", "iou",
    "rand_f", "vi_split", "vi_merge", "boundary_f1", "object_f1",
)  # fmt: skip
ROW_NAMES = {
    "entropy": "uncertainty (0–1)", "confident_fraction": "confident (%)",
    "foreground_fraction": "foreground (%)", "object_count": "objects", "dice": "Dice",
    "iou": "IoU", "agreement": "Dice with before", "rand_f": "Rand F (ISBI)",
    "vi_split": "VI split", "vi_merge": "VI merge", "boundary_f1": "boundary F1",
    "object_f1": "object F1 (IoU ≥ 0.5)",
}  # fmt: skip
PERCENT = ("confident_fraction", "foreground_fraction")


class CompareWidget(Container):
    """Before/after masks (and any further results) over their image, in linked grid cells."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        labels = lambda _w=None: layers_of(viewer, "Labels")  # noqa: E731
        self.image = ComboBox(label="image", choices=lambda _w=None: layers_of(viewer, "Image"))
        self.before = ComboBox(label="mask before", choices=labels)
        self.after = ComboBox(label="mask after", choices=labels)
        self.more = Select(label="more results", choices=labels, value=[])
        self.more.native.setMaximumHeight(90)
        self.truth = ComboBox(label="ground truth (optional)", choices=labels, nullable=True)
        self.side_button = PushButton(text="Side by side")
        self.normal_button = PushButton(text="Back to the normal view")
        self.difference_button = PushButton(text="Gained / lost layer")
        self.metrics_button = PushButton(text="Compute metrics")
        self.table = Table(value={"data": [], "index": [], "columns": ["before", "after"]})
        self.agreement = Label(value="")
        self.runner = JobRunner([self.metrics_button])
        self._saved: dict[str, Any] | None = None
        self.extend(
            [
                self.image, self.before, self.after, self.more, self.truth,
                self.side_button,
                self.normal_button, self.difference_button, self.metrics_button, self.table,
                self.agreement,
            ]
        )  # fmt: skip
        add_purpose(self, "Compare masks")
        show_as_written(self.table)
        explain(self, "Compare masks")
        session_for(viewer).masks_ready.connect(self.offer)
        self.side_button.changed.connect(self.side_by_side)
        self.normal_button.changed.connect(self.normal_view)
        self.difference_button.changed.connect(self.difference)
        self.metrics_button.changed.connect(self.metrics)
        for event in ("inserted", "removed"):
            getattr(viewer.layers.events, event).connect(self._refresh)
        stop_on_close(self.native, self.runner)
        self._refresh()

    def side_by_side(self, *_: object) -> None:
        """Grid view, one cell per mask over its own copy of the image: [image, before],
        [copy, after], [copy, more…]; one camera, contrast linked between all copies."""
        image, before, after = self._chosen()
        if image is None:
            return
        if self._saved is not None:
            self.normal_view()
        layers = self.viewer.layers
        masks = [before, after, *[m for m in self.more.value if m not in (before, after)]]
        twins = [_twin(self.viewer, image, i) for i in range(1, len(masks))]
        layers.link_layers([image, *twins], ("contrast_limits", "gamma", "colormap"))
        self._saved = {
            "order": [layer for layer in layers if layer not in twins],
            "visible": {layer.name: layer.visible for layer in layers if layer not in twins},
            "twins": twins,
            "stride": self.viewer.canvas.grid.stride,
        }
        # Positive stride groups layers i // stride: put the pairs first, image under mask.
        pairs = [x for pair in zip([image, *twins], masks) for x in pair]
        for layer in layers:
            layer.visible = layer in pairs
        _reorder(layers, pairs + [x for x in layers if x not in pairs])
        self.viewer.canvas.grid.stride = 2
        self.viewer.canvas.grid.enabled = True

    def normal_view(self, *_: object) -> None:
        """Grid off, the copies removed, layer order and visibility as they were."""
        saved, self._saved = self._saved, None
        self.viewer.canvas.grid.enabled = False
        if saved is None:
            return
        self.viewer.canvas.grid.stride = saved["stride"]
        layers = self.viewer.layers
        twins = [twin for twin in saved["twins"] if twin in layers]
        if twins:
            layers.unlink_layers(twins)
            for twin in twins:
                layers.remove(twin)
        _reorder(layers, [x for x in saved["order"] if x in layers])
        for layer in layers:
            layer.visible = saved["visible"].get(layer.name, layer.visible)

    def difference(self, *_: object) -> None:
        """A labels layer: 1 where the adapted mask gained foreground, 2 where it lost it."""
        image, before, after = self._chosen()
        if image is None:
            return
        a, b = np.asarray(before.data) > 0, np.asarray(after.data) > 0
        if a.shape != b.shape:
            notify("error", f"the masks differ in shape ({a.shape} vs {b.shape})")
            return
        diff = np.zeros(a.shape, np.uint8)
        diff[b & ~a] = GAINED
        diff[a & ~b] = LOST
        layer = result_layer(self.viewer, "gained (green) / lost (magenta)", diff, before)
        layer.colormap = _direct_colormap(DIFFERENCE_COLOURS)
        notify(
            "info",
            f"adaptation gained {int((diff == GAINED).sum()):,} and lost "
            f"{int((diff == LOST).sum()):,} foreground voxels",
        )

    def metrics(self, *_: object) -> None:
        """Label-free figures of every mask (and Dice/IoU with ground truth), in a worker."""
        image, before, after = self._chosen()
        if image is None:
            return
        truth = None if self.truth.value is None else np.asarray(self.truth.value.data)
        masks = [before, after, *[m for m in self.more.value if m not in (before, after)]]
        predictions = [prediction_of(mask) for mask in masks]
        names = [mask.name for mask in masks]
        self.runner.start(
            one_step(_compare, predictions, truth),
            lambda result: self._show_metrics(result, names),
            "comparing masks",
        )

    def offer(self, before: Any, after: Any) -> None:
        """The next step after adapting: both masks chosen, this widget's tab in front."""
        self.reset_choices()
        if before in self.viewer.layers and after in self.viewer.layers:
            self.before.value, self.after.value = before, after
            origin = MaskOrigin.of(after)
            if origin is not None and origin.image in self.viewer.layers:
                self.image.value = self.viewer.layers[origin.image]
        dock = self.native.parent()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parent()
        if dock is not None:
            dock.raise_()

    def _show_metrics(self, result: tuple[MaskComparison, list], names: list[str]) -> None:
        pair, table = result
        columns = [dict(quality.to_dict(), agreement=agreement) for quality, agreement in table]
        rows = [key for key in (*METRICS, "agreement") if key in columns[0]]
        self.table.value = {
            "data": [[_fmt(column[k], k in PERCENT) for column in columns] for k in rows],
            "index": [ROW_NAMES.get(k, k) for k in rows],
            "columns": [_short(name) for name in names],
        }
        for index, name in enumerate(names):  # the full layer name on the short header
            item = self.table.native.horizontalHeaderItem(index)
            if item is not None:
                item.setToolTip(name)
        self.agreement.value = f"agreement Dice before/after: {pair.agreement_dice:.3f}"
        self.last_metrics = pair
        self.last_table = dict(zip(names, columns))

    def _chosen(self) -> tuple[Any, Any, Any]:
        image, before, after = self.image.value, self.before.value, self.after.value
        if image is None or before is None or after is None:
            notify("error", "choose an image and the masks before and after adaptation")
            return None, None, None
        if before is after:
            notify("error", "choose two different masks (before and after adaptation)")
            return None, None, None
        return image, before, after

    def _refresh(self, event: Any = None) -> None:
        """Refresh the layer choices; pick the plugin's masks when they appear (or at start),
        never overriding what the user chose for other layers."""
        self.reset_choices()
        inserted = getattr(event, "value", None) if event is not None else None
        candidates = [inserted] if inserted is not None else list(self.viewer.layers)
        for combo, adapted in ((self.before, False), (self.after, True)):
            match = next((x for x in reversed(candidates) if _is_mask(x, adapted)), None)
            if match is not None and match in self.viewer.layers:
                combo.value = match
        origin = MaskOrigin.of(self.after.value)
        if (
            origin is not None
            and origin.image in self.viewer.layers
            and (inserted is None or inserted is self.after.value)
        ):
            self.image.value = self.viewer.layers[origin.image]


def _twin(viewer: Any, image: Any, index: int) -> Any:
    """A copy of ``image`` (same data, geometry and display) for another grid cell."""
    return viewer.add_image(
        image.data, name=f"{image.name} [compare {index}]", scale=image.scale,
        translate=image.translate, colormap=image.colormap, gamma=image.gamma,
        contrast_limits=image.contrast_limits, units=image.units,
    )  # fmt: skip


def _compare(predictions: list, truth: Any) -> tuple[MaskComparison, list]:
    """The before/after comparison and the table of every mask."""
    return compare_masks(predictions[0], predictions[1], truth), compare_many(predictions, truth)


def _is_mask(layer: Any, adapted: bool) -> bool:
    """A mask the plugin made: under the source statistics, or (``adapted``) a cure's."""
    origin = MaskOrigin.of(layer)
    if origin is None:
        return False
    return (origin.state != "source") if adapted else origin.state == "source"


def _short(name: str) -> str:
    """A mask layer's name as a column header: its bracketed state when it has one."""
    return name[name.rindex("[") :] if name.endswith("]") and "[" in name else name


def _reorder(layers: Any, order: list) -> None:
    """Put ``order`` first in the layer list, in that order (bottom to top)."""
    for position, layer in enumerate(order):
        index = layers.index(layer)
        if index != position:
            layers.move(index, position)


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"


def _direct_colormap(colours: dict) -> Any:
    return DirectLabelColormap(color_dict=colours)
