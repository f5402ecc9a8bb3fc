"""The Latent histograms widget's plots, in a dock of their own.

Beside the controls, the reading and the table, three plots had a scroll box of ~180 px on a
1366×768 screen (a fifth of the figure visible). In a dock of their own ("Latent plots", a
tab beside the widgets) they get its whole height, follow napari's theme and resize with it.
"""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QDockWidget, QSizePolicy, QVBoxLayout, QWidget

from ..diagnostics.diagnosis import Diagnosis
from ..diagnostics.figures import plot_channel_histogram, plot_intensities, plot_layer_overview
from .theme import style_figure

TITLE = "Latent plots"
HINT = "Measure latents (Latent histograms) to see the distributions here"


class LatentPlots(QWidget):
    """The channel histogram, which layers shifted most, and the input intensities."""

    def __init__(self, viewer: Any) -> None:
        super().__init__()
        self.viewer = viewer
        self.figure = Figure(figsize=(5, 7), constrained_layout=True)
        self.axes = self.figure.subplots(3, 1, height_ratios=[3, 2, 2])
        for ax in self.axes:
            ax.set_axis_off()
        self.axes[0].text(
            0.5, 0.5, HINT, ha="center", va="center", transform=self.axes[0].transAxes
        )
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(240)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.dock: Any = None
        self.restyle()
        viewer.events.theme.connect(self.restyle)

    def draw(self, diagnosis: Diagnosis, layer: str, channel: int) -> None:
        plot_channel_histogram(self.axes[0], diagnosis, layer, channel)
        plot_layer_overview(self.axes[1], diagnosis)
        plot_intensities(self.axes[2], diagnosis)
        self.restyle()

    def restyle(self, *_: object) -> None:
        style_figure(self.figure, self.viewer)
        self.canvas.draw_idle()

    def show_in_dock(self, front: bool = False) -> Any:
        """Dock the plots as a tab beside the other widgets (again, if it was closed);
        ``front``: bring the tab to the front."""
        if not self._docked():
            window = getattr(self.viewer, "window", None)
            if window is None:
                return None
            window.add_dock_widget(self, name=TITLE, area="right", tabify=True)
            self.dock = _dock_of(self)  # the dock itself, not napari's proxy of it
        if front and self.dock is not None:
            self.dock.show()
            self.dock.raise_()
        return self.dock

    def _docked(self) -> bool:
        try:
            return _dock_of(self) is not None
        except RuntimeError:  # the dock was deleted with its window
            return False


def _dock_of(widget: QWidget) -> Any:
    parent = widget.parent()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parent()
    return parent
