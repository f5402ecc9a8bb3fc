"""``bnadapt gui``: napari with the sample volumes open and the widgets docked."""

from __future__ import annotations

from typing import Any

PLUGIN = "napari-bnadapt"
DOCKED = ("Model", "Segment & adapt", "Compare masks", "Latent histograms")


def open_workbench(viewer: Any | None = None, samples: bool = True) -> tuple[Any, dict]:
    """Open (or fill) a viewer: the sample data, then every widget docked on the right."""
    import napari

    viewer = viewer or napari.Viewer(title="napari-bnadapt")
    if samples:
        for key in ("source", "target"):
            viewer.open_sample(PLUGIN, key)
    widgets = {}
    for name in DOCKED:
        _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name != DOCKED[0])
        widgets[name] = widget
    return viewer, widgets


def run_gui(samples: bool = True) -> None:
    import napari

    open_workbench(samples=samples)
    napari.run()
