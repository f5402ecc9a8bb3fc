"""Latent histograms dock widget: per-channel distributions, distances, a reading.

The controls scroll if they must; the reading ("Should I adapt?") and the per-channel table
are pinned under them, and the plots have a dock of their own (:mod:`.latent_plots`), so
that every result is in view on a 1366×768 screen.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, SpinBox, Table
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHeaderView, QSizePolicy

from ..diagnostics.diagnosis import Diagnosis, diagnose_steps
from ..diagnostics.latents import LatentConfig
from ..diagnostics.tables import channel_rows, write_shift_csv
from ..errors import BnAdaptError, OutputPathError
from ..io.files import atomic_output
from ..model.loaded import LoadedModel
from ..replacing import refuse_unnamed
from .help import NEXT_STEP, explain, set_headers, show_as_written, wrapping
from .latent_plots import TITLE, LatentPlots
from .layers import (
    image_to_follow,
    layer_data,
    layer_voxel_size,
    layers_of,
    names_layer,
    recorded_layer,
)
from .layout import Section, lay_out
from .messages import Feedback
from .saving import apart_from_inputs
from .session import session_for
from .workers import JobRunner, Rule, stop_on_close

if TYPE_CHECKING:
    import napari

COLUMNS = (
    "wasserstein_standardised", "wasserstein", "bhattacharyya", "kl",
    "wasserstein_empirical", "wasserstein_empirical_after", "q50_before", "q50_after",
)  # fmt: skip
SECTIONS = (
    Section(None, ("target", "source", "measure_row", "browse_row", "export_path", "export_row")),
)
#: Rows the channel table shows at least (it has the rest of the dock's height).
TABLE_ROWS = 6


class HistogramWidget(Container):
    """Measure latents of a target (and optional source) layer; browse layers and channels."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self.viewer = viewer
        self.session = session_for(viewer)
        images = lambda _w=None: layers_of(viewer, "Image")  # noqa: E731
        self.target = ComboBox(label="target", choices=images)
        self.source = ComboBox(label="source images (optional)", choices=images, nullable=True)
        self.patches = SpinBox(label="patches", min=1, max=100_000, value=LatentConfig().patches)
        self.measure_button = PushButton(text="Measure latents")
        self.cancel_button = PushButton(text="Cancel")
        self.measure_row = _row(self.patches, self.measure_button, self.cancel_button)
        self.layer = ComboBox(label="layer", choices=[])
        self.channel = SpinBox(label="channel", min=0, max=0)
        self.browse_row = _row(self.layer, self.channel)
        self.export_path = FileEdit(label="export to", mode="w", filter="*.png *.csv")
        self.export_png = PushButton(text="Export PNG")
        self.export_csv = PushButton(text="Export CSV")
        self.plots_button = PushButton(text="Show the plots")
        self.export_row = _row(self.export_png, self.export_csv, self.plots_button)
        self.verdict = wrapping(Label(value=""))
        #: (model, adapted copy) the plots shown were measured with.
        self._measured_networks: tuple[Any, Any] = (None, None)
        self.verdict.native.setTextFormat(Qt.TextFormat.RichText)
        self.table = Table(value={"data": [], "index": [], "columns": ["channel", *COLUMNS]})
        self.feedback = Feedback(viewer)
        self.runner = JobRunner(self.button_rules(), self.cancel_button, self.feedback)
        self.plots = LatentPlots(viewer)
        self.figure, self.canvas, self.axes = self.plots.figure, self.plots.canvas, self.plots.axes
        _table_fills(self.table)
        results = [self.verdict, self.table, self.feedback.label]
        lay_out(self, "Latent histograms", SECTIONS, results, fill=self.table)
        set_headers(self.table, ["channel", *COLUMNS])
        self.verdict.visible = self.table.visible = False  # until measured
        explain(self, "Latent histograms")
        self._connect()
        self._refresh()
        if self.session.diagnosis is not None:
            self._show(self.session.diagnosis)
        else:
            self.feedback.say(
                "info", "Choose the target (and, optionally, images like the training data).",
                "Then press Measure latents.",
            )  # fmt: skip

    def button_rules(self) -> dict[Any, Rule]:
        """What each button needs besides an idle widget."""
        measured = lambda: self.session.diagnosis is not None  # noqa: E731
        chosen = lambda: str(self.export_path.value or "") not in ("", ".")  # noqa: E731
        return {
            self.measure_button: lambda: (
                self.session.model is not None and self.target.value is not None
            ),
            self.export_png: lambda: measured() and chosen(),
            self.export_csv: lambda: measured() and chosen(),
            self.plots_button: lambda: True,
        }

    def _connect(self) -> None:
        self.measure_button.changed.connect(self.measure)
        self.layer.changed.connect(self._layer_changed)
        self.channel.changed.connect(self._draw)
        self.export_png.changed.connect(self.save_png)
        self.export_csv.changed.connect(self.save_csv)
        self.plots_button.changed.connect(lambda *_: self.plots.show_in_dock(front=True))
        for control in (self.target, self.export_path):
            control.changed.connect(self.runner.update_buttons)
        self.session.diagnosis_changed.connect(self._show)
        self.session.model_changed.connect(lambda _: self._network_changed())
        self.session.adapted_changed.connect(self._adapted)
        for event in ("inserted", "removed"):
            getattr(self.viewer.layers.events, event).connect(self._refresh)
        stop_on_close(self.native, self.runner)

    def measure(self, *_: object) -> None:
        """Capture latents under the source (and adapted) statistics, in a worker."""
        model, adapted = self.session.model, self.session.adapted
        target = self.target.value
        if model is None or target is None:
            self.feedback.say("error", "Load a model and choose a target image layer.")
            return
        data = layer_data(target)
        source = None if self.source.value is None else layer_data(self.source.value)
        config = LatentConfig(patches=int(self.patches.value), device=self.session.device)
        voxel_size = self._voxel_size_of(target, adapted)
        note = model.scale_note(target.name, tuple(data.shape), voxel_size)
        self._measured = (target.name, note.rstrip(".") + "." if note else None)
        worker = self.runner.start(
            lambda: diagnose_steps(
                model, data, adapted, source=source, config=config, voxel_size=voxel_size
            ),
            lambda diagnosis: self._show_measured(diagnosis, (model, adapted)),
            f"measuring latents of {target.name}",
        )
        if worker is not None:
            statistics = "the source and the adapted" if adapted is not None else "the source"
            self.feedback.say(
                "info", f"Measuring the latents of {target.name} under {statistics} "
                "statistics… (Cancel stops it.)",
            )  # fmt: skip

    def _show_measured(self, diagnosis: Diagnosis, networks: tuple[Any, Any]) -> None:
        self._measured_networks = networks
        self.session.set_diagnosis(diagnosis)

    @staticmethod
    def _voxel_size_of(layer: Any, adapted: LoadedModel | None) -> tuple[float, ...] | None:
        """The voxel size the layer was adapted at (its own, or the one typed in Segment and
        adapt), so before and after are measured at the adaptation's scale; else the
        layer's own."""
        record = adapted.adaptation if adapted is not None else None
        if record is not None and names_layer(record.target, layer.name) and record.voxel_size:
            return record.voxel_size
        return layer_voxel_size(layer)

    def save_png(self, *_: object) -> None:
        """The plots as a PNG (never over an opened layer's file or the model's)."""
        path = self._export_path(".png")
        if path is not None and self._written(lambda: save_figure(self.figure, path)):
            self.feedback.say("info", f"Saved the plots to {path}.")

    def save_csv(self, *_: object) -> None:
        """Every layer's per-channel distances as CSV (never over an input either)."""
        path = self._export_path(".csv")
        diagnosis = self.session.diagnosis
        write = lambda: write_shift_csv(diagnosis, path)  # noqa: E731 (atomic itself)
        if path is not None and diagnosis is not None and self._written(write):
            self.feedback.say("info", f"Saved the per-channel distances of every layer to {path}.")

    def _written(self, write: Callable[[], Any]) -> bool:
        """Whether ``write`` (an atomic write) succeeded; a refusal or a failed write is
        said in one line."""
        try:
            write()
        except BnAdaptError as exc:
            self.feedback.say("error", str(exc))
            return False
        return True

    # -- display ---------------------------------------------------------------------------

    def _show(self, diagnosis: Diagnosis | None) -> None:
        self.runner.update_buttons()
        if diagnosis is None:
            return
        self.verdict.value = reading_html(diagnosis.verdict.to_text())
        self.verdict.visible = self.table.visible = True
        names = list(diagnosis.shift_before)
        self.layer.choices = names
        ranked = diagnosis.verdict.figures.get("most_shifted_layer")
        self.layer.value = ranked if ranked in names else names[0]
        self._layer_changed()
        self.plots.show_in_dock()
        name, note = getattr(self, "_measured", (None, None))
        done = f"Measured the latents of {name}" if name else "Measured the latents"
        done += "; layer and channel open on the most shifted."
        self.feedback.say("info", " ".join(p for p in (done, note) if p), NEXT_STEP["measured"])

    def _layer_changed(self, *_: object) -> None:
        diagnosis = self.session.diagnosis
        if diagnosis is None or self.layer.value is None:
            return
        shift = diagnosis.shift_before[self.layer.value]
        self.channel.max = shift.channels - 1
        most = int(shift.ranked_channels()[0])
        if self.channel.value != most:
            self.channel.value = most  # triggers _draw
        else:
            self._draw()
        rows = channel_rows(diagnosis, self.layer.value)
        columns = ["channel", *[c for c in COLUMNS if c in rows[0]]]
        self.table.native.setSortingEnabled(False)  # sorting while filling scrambles rows
        self.table.value = {
            "data": [[r[c] if c == "channel" else f"{r[c]:.2f}" for c in columns] for r in rows],
            "index": [str(r["channel"]) for r in rows],
            "columns": columns,
        }
        set_headers(self.table, columns)
        self.table.native.setSortingEnabled(True)

    def _draw(self, *_: object) -> None:
        diagnosis = self.session.diagnosis
        if diagnosis is None or self.layer.value is None:
            return
        self.plots.draw(diagnosis, self.layer.value, int(self.channel.value))

    def _export_path(self, suffix: str) -> Path | None:
        """The file chosen, with ``suffix`` (the folder's own dots kept), if it spares every
        opened layer's file and the model's; else None, and the reason said."""
        text = str(self.export_path.value or "")
        if not text or text == ".":
            self.feedback.say("error", "Choose a file to export to (export to).")
            return None
        path = Path(text).with_suffix(suffix)
        try:
            refuse_unnamed(text, path)  # a file the user did not name is kept
        except OutputPathError as exc:
            self.feedback.say("error", str(exc))
            return None
        model = self.session.current
        return path if model is None or apart_from_inputs(self, path, model) else None

    def _refresh(self, event: Any = None) -> None:
        """Refresh the choices; an image the user opens (or the newest, at start) is the
        target."""
        current = self.target.value
        self.reset_choices()
        followed = image_to_follow(self.viewer, event, current)
        if followed is not None:
            self.target.value = followed
        self.runner.update_buttons()

    def _adapted(self, adapted: LoadedModel | None) -> None:
        """After adapting, the target is the layer adapted to (what step 4 explains)."""
        record = adapted.adaptation if adapted is not None else None
        layer = recorded_layer(self.viewer, record.target) if record is not None else None
        if layer is not None and layer in self.target.choices:
            self.target.value = layer
        self._network_changed()

    def _network_changed(self) -> None:
        """Plots of a network the session no longer uses (a reset, another adaptation or
        model) stay, said to be out of date: a reset used to leave "after adaptation the
        distance fell" on screen with nothing adapted."""
        self.runner.update_buttons()
        measured, now = self._measured_networks, (self.session.model, self.session.adapted)
        if measured == (None, None) or all(a is b for a, b in zip(measured, now)):
            return
        self.feedback.say("warning", STALE_PLOTS, toast=False)


#: What the Latents tab says when its plots are of a network no longer in use.
STALE_PLOTS = (
    "Out of date: these plots and the reading are of the network before the last change "
    "(a reset, an adaptation or another model). Press Measure latents again."
)


def save_figure(figure: Any, path: Path) -> None:
    """``figure`` as a PNG at ``path``, moved into place only once complete."""
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=120, format="png")


def reading_html(text: str) -> str:
    """The reading: its first line (the answer) in bold, each reason on a line of its own."""
    head, *reasons = text.splitlines()
    lines = [f"<b>{html.escape(head)}</b>", *(html.escape(r) for r in reasons)]
    return "<br>".join(lines)


def _row(*widgets: Any) -> Container:
    row = Container(widgets=list(widgets), layout="horizontal", labels=True)
    row.margins = (0, 0, 0, 0)
    return row


def _table_fills(table: Any) -> None:
    """The table takes the dock's remaining height (at least :data:`TABLE_ROWS` rows), every
    column in view, without the row-number column (the channel column says it)."""
    native = table.native
    show_as_written(table)
    native.verticalHeader().setVisible(False)
    native.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    rows = native.fontMetrics().height() + 6  # compact rows: more channels in view
    native.verticalHeader().setDefaultSectionSize(rows)
    native.setMinimumHeight(2 * rows + 8 + TABLE_ROWS * rows)
    native.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


__all__ = ["TITLE", "HistogramWidget"]
