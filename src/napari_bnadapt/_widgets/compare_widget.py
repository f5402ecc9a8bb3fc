"""Compare dock widget: masks before/after (and more cures) side by side, a gained/lost
layer, metrics per mask.

Side by side (:mod:`.grid_view`) shows each mask over its own copy of the image in a grid
cell captioned with what it is (before, after, another cure; empty masks say so), the camera
fitted so that every cell shows its whole image; :mod:`.mask_table` shows the metrics. The
choices follow the masks the plugin made: the masks before and after adapting, the other masks of the same image as "more results", and a
labels layer whose name says ground truth as the ground truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, PushButton, Select, Table
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtWidgets import QDockWidget

from ..adabn.config import STROKE_CURES
from ..diagnostics.quality import MaskComparison, compare_many, compare_masks
from .grid_view import SideBySide, is_empty
from .help import NEXT_STEP, explain, show_as_written
from .layers import (
    ROLE,
    MaskOrigin,
    kind_of,
    layers_of,
    prediction_of,
    result_layer,
    role_of,
    says_truth,
    user_images,
)
from .layout import Section, lay_out
from .mask_table import fill_table, fit_rows, metrics_reading
from .messages import Feedback
from .session import session_for
from .workers import JobRunner, Rule, one_step, stop_on_close

if TYPE_CHECKING:
    import napari

GAINED, LOST = 1, 2
DIFFERENCE_COLOURS = {GAINED: "lime", LOST: "magenta", None: "transparent"}
SECTIONS = (Section(None, ("image", "before", "after", "more", "truth")),)


class CompareWidget(Container):
    """Before/after masks (and any further results) over their image, in linked grid cells."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self.viewer = viewer
        masks = lambda _w=None: self._masks()  # noqa: E731
        self.image = ComboBox(label="image", choices=lambda _w=None: layers_of(viewer, "Image"))
        self.before = ComboBox(label="mask before", choices=masks)
        self.after = ComboBox(label="mask after", choices=masks)
        self.more = Select(label="more results", choices=lambda _w=None: self._more(), value=[])
        self.truth = ComboBox(
            label="ground truth (optional)",
            choices=lambda _w=None: [
                (x.name, x) for x in viewer.layers if _is_labels(x) and role_of(x) is None
            ],
            nullable=True,
        )
        self.side_button = PushButton(text="Side by side")
        self.normal_button = PushButton(text="Back to the normal view")
        self.difference_button = PushButton(text="Gained / lost layer")
        self.metrics_button = PushButton(text="Compute metrics")
        self.view_row = _row(self.side_button, self.normal_button)
        self.measure_row = _row(self.difference_button, self.metrics_button)
        self.table = Table(value={"data": [], "index": [], "columns": ["before", "after"]})
        self.feedback = Feedback(viewer)
        self.runner = JobRunner(self.button_rules(), None, self.feedback)
        self.grid = SideBySide(viewer)
        self._picked_truth: Any = None  # the ground truth this widget chose (not the user)
        # The buttons pinned under the choices, with the results: with "more results" and a
        # ground truth shown, the table squeezed the choices and scrolled them away.
        lay_out(
            self, "Compare masks", SECTIONS,
            [self.view_row, self.measure_row, self.table, self.feedback.label],
        )  # fmt: skip
        show_as_written(self.table)
        fit_rows(self.table)
        self.table.visible = False  # until there is something to show
        explain(self, "Compare masks")
        session_for(viewer).masks_ready.connect(self.offer)
        self.side_button.changed.connect(self.side_by_side)
        self.normal_button.changed.connect(self.normal_view)
        self.difference_button.changed.connect(self.difference)
        self.metrics_button.changed.connect(self.metrics)
        for combo in (self.image, self.before, self.after):
            combo.changed.connect(self._choices_changed)
        self.truth.changed.connect(self.runner.update_buttons)
        self.truth.changed.connect(self._offer_more)
        for event in ("inserted", "removed"):
            getattr(viewer.layers.events, event).connect(self._refresh)
        viewer.layers.events.removed.connect(self._closed)
        viewer.canvas.grid.events.enabled.connect(self._grid_toggled)
        stop_on_close(self.native, self.runner)
        self._refresh()
        self.feedback.say(
            "info", "Choose the image and its masks before and after adapting.",
            "Then press Side by side, or Compute metrics.",
        )  # fmt: skip

    def button_rules(self) -> dict[Any, Rule]:
        """What each button needs besides an idle widget."""
        return {
            self.side_button: self._pair_chosen,
            self.normal_button: lambda: self.grid.active,
            self.difference_button: lambda: self._pair_chosen() and self._same_shape(),
            self.metrics_button: self._pair_chosen,
        }

    # -- handlers ---------------------------------------------------------------------------

    def side_by_side(self, *_: object) -> None:
        """Grid view, one captioned cell per mask over its own copy of the image; one
        camera fitted to show every whole image; contrast linked between all copies."""
        image, before, after = self._chosen()
        if image is None:
            return
        masks = self._masks_compared(before, after)
        captions = self.grid.show(image, masks)
        self.runner.update_buttons()
        empty = [m.name for m in masks if is_empty(m)]
        hint = f"\n{', '.join(empty)}: empty, so its cell shows the bare image." if empty else ""
        self.feedback.say(
            "info", "Side by side: " + " · ".join(captions) + ". One camera: zoom and pan "
            "move every cell." + hint, NEXT_STEP["side by side"],
        )  # fmt: skip

    def normal_view(self, *_: object) -> None:
        """Grid off, the copies removed, layer order and visibility as they were."""
        restored = self.grid.restore()
        self.runner.update_buttons()
        if restored:
            self.feedback.say("info", "Back to the normal view: your layers as they were.")

    def difference(self, *_: object) -> None:
        """A labels layer: 1 where the adapted mask gained foreground, 2 where it lost it."""
        image, before, after = self._chosen()
        if image is None:
            return
        a, b = np.asarray(before.data) > 0, np.asarray(after.data) > 0
        if a.shape != b.shape:
            self.feedback.say("error", f"The masks differ in shape ({a.shape} vs {b.shape}).")
            return
        self.grid.restore()  # a new layer would be a grid cell of its own
        diff = np.zeros(a.shape, np.uint8)
        diff[b & ~a] = GAINED
        diff[a & ~b] = LOST
        layer = result_layer(
            self.viewer, "gained (green) / lost (magenta)", diff, before,
            metadata={ROLE: "difference"},
        )  # fmt: skip
        layer.colormap = _direct_colormap(DIFFERENCE_COLOURS)
        self.runner.update_buttons()
        self.feedback.say(
            "info",
            f"{after.name} gained {int((diff == GAINED).sum()):,} (green) and lost "
            f"{int((diff == LOST).sum()):,} (magenta) foreground voxels against {before.name}.",
            "Compute metrics measures every mask.",
        )

    def metrics(self, *_: object) -> None:
        """Label-free figures of every mask (and Dice/IoU with ground truth), in a worker."""
        image, before, after = self._chosen()
        if image is None:
            return
        truth = None if self.truth.value is None else np.asarray(self.truth.value.data)
        masks = self._masks_compared(before, after)
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
            origin = MaskOrigin.of(after)
            if origin is not None and origin.image in self.viewer.layers:
                self.image.value = self.viewer.layers[origin.image]
            self.before.value, self.after.value = before, after
            self._choices_changed()
            self._say_chosen()
        dock = self.native.parent()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parent()
        if dock is not None:
            dock.raise_()

    def _say_chosen(self) -> None:
        before, after = self.before.value, self.after.value
        self._said = (before, after)
        self.feedback.say(
            "info", f"Chosen: {before.name} (before) and {after.name} (after).",
            "Press Side by side, or Compute metrics.",
        )  # fmt: skip

    # -- results -------------------------------------------------------------------------------

    def _show_metrics(self, result: tuple[MaskComparison, list], names: list[str]) -> None:
        pair, table = result
        columns = [dict(quality.to_dict(), agreement=agreement) for quality, agreement in table]
        self.last_metrics = pair
        self.last_table = dict(zip(names, columns))
        fill_table(self.table, self.last_table)
        reading = metrics_reading(pair, self.last_table, self.truth.value)
        # Latent histograms explain changed statistics, not weights the strokes changed.
        taught = any(n.endswith(tuple(f"[{c}]" for c in STROKE_CURES)) for n in names)
        self.feedback.say("info", reading, NEXT_STEP["compared, taught" if taught else "compared"])

    # -- choices -------------------------------------------------------------------------------

    def _masks(self) -> list[tuple[str, Any]]:
        """Labels layers that can be masks: not a ground truth, not a helper layer."""
        return [
            (x.name, x)
            for x in self.viewer.layers
            if _is_labels(x) and role_of(x) is None and not says_truth(x)
        ]

    def _more(self) -> list[tuple[str, Any]]:
        """Further masks of the chosen image: not the two chosen, not a ground truth."""
        image = getattr(self, "image", None)
        shape = None if image is None or image.value is None else _shape(image.value)
        chosen = (getattr(self, "before", None), getattr(self, "after", None))
        truth = getattr(self, "truth", None)  # the chosen ground truth is no result
        taken = [c.value for c in (*chosen, truth) if c is not None]
        return [
            (name, x)
            for name, x in self._masks()
            if x not in taken and (shape is None or _shape(x) == shape)
        ]

    def _choices_changed(self, *_: object) -> None:
        """Keep "more results" and the ground truth in line with the image and masks."""
        self._offer_more()
        self._pick_truth()

    def _offer_more(self, *_: object) -> None:
        """ "More results": the image's other masks (a ground truth chosen is not one)."""
        offered = [c for _, c in self._more()]
        kept = [x for x in self.more.value if x in offered]
        self.more.reset_choices()
        self.more.value = kept
        self.more.visible = bool(offered)  # no empty box when there is nothing more
        rows = self.more.native.sizeHintForRow(0) if offered else 0
        self.more.native.setFixedHeight(min(3, max(1, len(offered))) * max(rows, 18) + 6)
        self.runner.update_buttons()

    def _pick_truth(self) -> None:
        """A labels layer whose name says ground truth, of the image's shape (the one whose
        name starts like the image's first), unless the user chose one of that shape."""
        image = self.image.value
        if image is None:
            return
        shape = _shape(image)
        current = self.truth.value
        chosen_by_user = current is not None and current is not self._picked_truth
        if chosen_by_user and _shape(current) == shape and current in self.viewer.layers:
            return
        self.truth.reset_choices()
        candidates = [x for x in self.viewer.layers if _is_labels(x) and says_truth(x)]
        candidates = [x for x in candidates if _shape(x) == shape]
        first = image.name.split()[0].lower() if image.name.split() else ""
        candidates.sort(key=lambda x: not x.name.lower().startswith(first))
        self._picked_truth = candidates[0] if candidates else None
        self.truth.value = self._picked_truth

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
        elif self.image.value is not None and role_of(self.image.value) is not None:
            images = user_images(self.viewer)
            self.image.value = images[-1] if images else None
        self._choices_changed()
        said = getattr(self, "_said", None)
        pair = (self.before.value, self.after.value)
        if said is not None and said != pair and self._pair_chosen():
            self._say_chosen()  # a new mask was picked: the message names it, not the old

    def _chosen(self) -> tuple[Any, Any, Any]:
        image, before, after = self.image.value, self.before.value, self.after.value
        if image is None or before is None or after is None:
            self.feedback.say("error", "Choose an image and the masks before and after adapting.")
            return None, None, None
        if before is after:
            self.feedback.say("error", "Choose two different masks (before and after adapting).")
            return None, None, None
        return image, before, after

    def _pair_chosen(self) -> bool:
        before, after = self.before.value, self.after.value
        return self.image.value is not None and None not in (before, after) and before is not after

    def _same_shape(self) -> bool:
        return _shape(self.before.value) == _shape(self.after.value)

    def _masks_compared(self, before: Any, after: Any) -> list[Any]:
        return [before, after, *[m for m in self.more.value if m not in (before, after)]]

    def _closed(self, event: Any) -> None:
        """A layer of the grid view closed: its cells no longer pair what they say (a
        walkthrough's captions stacked in one cell, "before" became "after"), so the
        normal view comes back, and the message says why."""
        layer = getattr(event, "value", None)
        if layer is None or not self.grid.shows(layer):
            return
        self.grid.restore()
        self.runner.update_buttons()
        self.feedback.say(
            "info",
            f"{layer.name} was closed: back to the normal view, your other layers as they were.",
            "Choose the masks again and press Side by side.",
        )

    def _grid_toggled(self, event: Any = None) -> None:
        """napari's own grid button turned the grid off: put the layers back as well."""
        if not self.viewer.canvas.grid.enabled and self.grid.active:
            self.normal_view()


def _compare(predictions: list, truth: Any) -> tuple[MaskComparison, list]:
    """The before/after comparison and the table of every mask."""
    return compare_masks(predictions[0], predictions[1], truth), compare_many(predictions, truth)


def _is_labels(layer: Any) -> bool:
    return kind_of(layer) == "Labels"


def _shape(layer: Any) -> tuple[int, ...]:
    return tuple(np.shape(layer.data[0] if getattr(layer, "multiscale", False) else layer.data))


def _is_mask(layer: Any, adapted: bool) -> bool:
    """A mask the plugin made: under the source statistics, or (``adapted``) a cure's."""
    origin = MaskOrigin.of(layer)
    if origin is None:
        return False
    return (origin.state != "source") if adapted else origin.state == "source"


def _row(*buttons: Any) -> Container:
    row = Container(widgets=list(buttons), layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    return row


def _direct_colormap(colours: dict) -> Any:
    return DirectLabelColormap(color_dict=colours)
