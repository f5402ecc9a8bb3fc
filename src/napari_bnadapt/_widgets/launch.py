"""``bnadapt gui``: napari with the sample volumes open and the widgets docked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..io.volumes import is_volume_path
from .docking import PLACED, TAB_TITLES
from .layers import kind_of

PLUGIN = "napari-bnadapt"
DOCKED = ("Model", "Segment and adapt", "Compare masks", "Latent histograms")


@dataclass
class Workbench:
    """The viewer, the plugin's widgets and their dock widgets, by display name."""

    viewer: Any
    widgets: dict[str, Any] = field(default_factory=dict)
    docks: dict[str, Any] = field(default_factory=dict)


#: Keyboard shortcuts of the main actions: (key, widget, handler, what it does).
SHORTCUTS = (
    ("Alt-S", "Segment and adapt", "segment", "segment the chosen image"),
    ("Alt-A", "Segment and adapt", "adapt", "adapt to the chosen target"),
    ("Alt-R", "Segment and adapt", "reset", "back to the source statistics"),
    ("Alt-C", "Compare masks", "side_by_side", "masks side by side"),
    ("Alt-L", "Latent histograms", "measure", "measure latents"),
)


def open_workbench(
    viewer: Any | None = None,
    samples: bool = True,
    files: tuple[str, ...] | list[str] = (),
    model: Any = None,
) -> Workbench:
    """Open (or fill) a viewer: the sample data (or ``files``), then every widget docked on
    the right in workflow order, the first step in front, and the keyboard shortcuts."""
    import napari

    bench = Workbench(viewer or napari.Viewer(title="napari-bnadapt"))
    if samples:
        for key in ("source", "target"):
            bench.viewer.open_sample(PLUGIN, key)
    for path in files:
        # Our reader where it applies (no "which plugin?" dialog), napari's elsewhere (PNG).
        bench.viewer.open(path, plugin=PLUGIN if is_volume_path(path) else None)
    for name in DOCKED:
        dock, widget = bench.viewer.window.add_plugin_dock_widget(
            PLUGIN, name, tabify=name != DOCKED[0]
        )
        dock.setWindowTitle(TAB_TITLES[name])
        widget.native.setProperty(PLACED, True)  # in its tab already, in workflow order
        bench.widgets[name], bench.docks[name] = widget, dock
    bench.docks["Latent plots"] = bench.widgets[DOCKED[-1]].plots.show_in_dock()
    if model is not None:
        bench.widgets[DOCKED[0]].use(model)  # what it is said, as when loaded in the tab
    bind_shortcuts(bench)
    select_newest_image(bench.viewer)
    show_first_step(bench)
    return bench


def select_newest_image(viewer: Any) -> None:
    """Select the newest image layer, so the layer controls show an image's settings (not
    the paint tools of a hidden ground-truth layer opened last)."""
    images = [layer for layer in viewer.layers if kind_of(layer) == "Image"]
    if images:
        viewer.layers.selection.active = images[-1]


def show_first_step(bench: Workbench) -> None:
    """Bring the Model tab to the front, now and once the window is shown (a tab raised
    before its window is visible does not stay in front)."""
    from qtpy.QtCore import QTimer

    first = bench.docks[DOCKED[0]]
    first.raise_()
    QTimer.singleShot(0, first.raise_)


def bind_shortcuts(bench: Workbench) -> None:
    """The main actions on the keyboard (napari's keymap for this viewer)."""
    for key, widget, handler, _ in SHORTCUTS:
        action = getattr(bench.widgets[widget], handler)
        bench.viewer.bind_key(key, lambda _viewer, act=action: act(), overwrite=True)


def run_gui(
    samples: bool = True, files: tuple[str, ...] | list[str] = (), model: Any = None
) -> None:
    import napari

    open_workbench(samples=samples, files=files, model=model)
    napari.run()
