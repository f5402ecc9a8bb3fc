"""Latent histograms dock widget: per-channel distributions, distances, a reading."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, SpinBox, Table
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from ..diagnostics.diagnosis import Diagnosis, diagnose_steps
from ..diagnostics.figures import plot_channel_histogram, plot_intensities, plot_layer_overview
from ..diagnostics.latents import LatentConfig
from ..diagnostics.tables import channel_rows, write_shift_csv
from ..model.loaded import LoadedModel
from .help import add_purpose, explain, set_headers, show_as_written, wrapping
from .layers import layer_data, layer_voxel_size, layers_of
from .messages import notify
from .session import session_for
from .theme import style_figure
from .workers import JobRunner, stop_on_close

if TYPE_CHECKING:
    import napari

COLUMNS = (
    "wasserstein_standardised", "wasserstein", "bhattacharyya", "kl",
    "wasserstein_empirical", "wasserstein_empirical_after", "q50_before", "q50_after",
)  # fmt: skip


class HistogramWidget(Container):
    """Measure latents of a target (and optional source) layer; browse layers and channels."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.session = session_for(viewer)
        images = lambda _w=None: layers_of(viewer, "Image")  # noqa: E731
        self.target = ComboBox(label="target", choices=images)
        self.source = ComboBox(label="source images (optional)", choices=images, nullable=True)
        self.patches = SpinBox(label="patches", min=1, max=100_000, value=LatentConfig().patches)
        self.measure_button = PushButton(text="Measure latents")
        self.cancel_button = PushButton(text="Cancel")
        self.layer = ComboBox(label="layer", choices=[])
        self.channel = SpinBox(label="channel", min=0, max=0)
        self.verdict = wrapping(Label(value=""))
        self.table = Table(value={"data": [], "index": [], "columns": ["channel", *COLUMNS]})
        self.table.native.setMinimumHeight(100)
        set_headers(self.table, ["channel", *COLUMNS])
        show_as_written(self.table)
        self.export_path = FileEdit(label="export to", mode="w", filter="*.png *.csv")
        self.export_png = PushButton(text="Export PNG")
        self.export_csv = PushButton(text="Export CSV")
        self.runner = JobRunner([self.measure_button], self.cancel_button)
        self.figure, self.canvas, self.axes = _figure_canvas()
        style_figure(self.figure, viewer)
        self.extend(
            [
                self.target, self.source,
                self.patches,
                Container(widgets=[self.measure_button, self.cancel_button], layout="horizontal"),
                self.layer, self.channel,
            ]
        )  # fmt: skip
        exports = Container(widgets=[self.export_png, self.export_csv], layout="horizontal")
        self.extend([self.table, self.export_path, exports])
        # The reading and the plots under the channel chooser, in a scroll area of their
        # own: they keep a readable size on a 768-pixel-high screen (the reading first, at
        # full width) and fill the dock on a larger one.
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.verdict.native)
        column.addWidget(self.canvas, stretch=1)
        plots = QScrollArea()
        plots.setWidgetResizable(True)
        plots.setWidget(content)
        plots.setMinimumHeight(180)
        plots.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = self.native.layout()
        layout.insertWidget(layout.indexOf(self.channel.native.parent()) + 1, plots, stretch=1)
        add_purpose(self, "Latent histograms")
        explain(self, "Latent histograms")
        self.measure_button.changed.connect(self.measure)
        self.layer.changed.connect(self._layer_changed)
        self.channel.changed.connect(self._draw)
        self.export_png.changed.connect(self.save_png)
        self.export_csv.changed.connect(self.save_csv)
        self.session.diagnosis_changed.connect(self._show)
        viewer.events.theme.connect(self._restyle)
        for event in ("inserted", "removed"):
            getattr(viewer.layers.events, event).connect(self._refresh)
        stop_on_close(self.native, self.runner)
        self._refresh()
        if self.session.diagnosis is not None:
            self._show(self.session.diagnosis)

    def measure(self, *_: object) -> None:
        """Capture latents under the source (and adapted) statistics, in a worker."""
        model, adapted = self.session.model, self.session.adapted
        target = self.target.value
        if model is None or target is None:
            notify("error", "load a model and choose a target image layer")
            return
        data = layer_data(target)
        source = None if self.source.value is None else layer_data(self.source.value)
        config = LatentConfig(patches=int(self.patches.value), device=self.session.device)
        voxel_size = self._voxel_size_of(target, adapted)
        note = model.scale_note(target.name, tuple(data.shape), voxel_size)
        if note is not None:
            notify("info", note)
        self.runner.start(
            lambda: diagnose_steps(
                model, data, adapted, source=source, config=config, voxel_size=voxel_size
            ),
            self.session.set_diagnosis,
            f"measuring latents of {target.name}",
        )

    @staticmethod
    def _voxel_size_of(layer: Any, adapted: LoadedModel | None) -> tuple[float, ...] | None:
        """The voxel size the layer was adapted at (its own, or the one typed in Segment and
        adapt), so before and after are measured at the adaptation's scale; else the
        layer's own."""
        record = adapted.adaptation if adapted is not None else None
        if record is not None and record.target == layer.name and record.voxel_size:
            return record.voxel_size
        return layer_voxel_size(layer)

    def save_png(self, *_: object) -> None:
        path = self._export_path(".png")
        if path:
            self.figure.savefig(path, dpi=120)
            notify("info", f"saved {path}")

    def save_csv(self, *_: object) -> None:
        path = self._export_path(".csv")
        if path and self.session.diagnosis is not None:
            write_shift_csv(self.session.diagnosis, path)
            notify("info", f"saved {path}")

    # -- display ---------------------------------------------------------------------------

    def _show(self, diagnosis: Diagnosis | None) -> None:
        if diagnosis is None:
            return
        self.verdict.value = diagnosis.verdict.to_text()
        names = list(diagnosis.shift_before)
        self.layer.choices = names
        ranked = diagnosis.verdict.figures.get("most_shifted_layer")
        self.layer.value = ranked if ranked in names else names[0]
        self._layer_changed()

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
            "data": [[r[c] if c == "channel" else round(r[c], 4) for c in columns] for r in rows],
            "index": [str(r["channel"]) for r in rows],
            "columns": columns,
        }
        set_headers(self.table, columns)
        self.table.native.setSortingEnabled(True)

    def _draw(self, *_: object) -> None:
        diagnosis = self.session.diagnosis
        if diagnosis is None or self.layer.value is None:
            return
        plot_channel_histogram(self.axes[0], diagnosis, self.layer.value, int(self.channel.value))
        plot_layer_overview(self.axes[1], diagnosis)
        plot_intensities(self.axes[2], diagnosis)
        self._restyle()

    def _restyle(self, *_: object) -> None:
        style_figure(self.figure, self.viewer)
        self.canvas.draw_idle()

    def _export_path(self, suffix: str) -> str | None:
        path = str(self.export_path.value or "")
        if not path or path == ".":
            notify("error", "choose a file to export to")
            return None
        return path if path.endswith(suffix) else path.rsplit(".", 1)[0] + suffix

    def _refresh(self, *_: object) -> None:
        self.reset_choices()
        if self.target.choices and self.target.value is self.target.choices[0]:
            self.target.value = self.target.choices[-1]  # the newest image: likely the target


def _figure_canvas() -> tuple[Any, Any, Any]:
    """A matplotlib figure in a Qt canvas: channel histogram, layer overview, and the input
    intensities against the fingerprint."""
    figure = Figure(figsize=(5, 8), constrained_layout=True)
    axes = figure.subplots(3, 1, height_ratios=[3, 2, 2])
    for ax, hint in zip(axes, ("Measure latents to see the distributions", "")):
        ax.set_axis_off()
        ax.text(0.5, 0.5, hint, ha="center", va="center", transform=ax.transAxes)
    canvas = FigureCanvasQTAgg(figure)
    # Grows and shrinks with the dock (constrained layout re-fits the axes).
    canvas.setMinimumHeight(520)
    canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    return figure, canvas, axes
