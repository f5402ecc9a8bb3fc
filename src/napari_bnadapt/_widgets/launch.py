"""``bnadapt gui``: napari with the sample volumes open and the widgets docked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PLUGIN = "napari-bnadapt"
DOCKED = ("Model", "Segment and adapt", "Compare masks", "Latent histograms")


@dataclass
class Workbench:
    """The viewer, the plugin's widgets and their dock widgets, by display name."""

    viewer: Any
    widgets: dict[str, Any] = field(default_factory=dict)
    docks: dict[str, Any] = field(default_factory=dict)


def open_workbench(viewer: Any | None = None, samples: bool = True) -> Workbench:
    """Open (or fill) a viewer: the sample data, then every widget docked on the right."""
    import napari

    bench = Workbench(viewer or napari.Viewer(title="napari-bnadapt"))
    if samples:
        for key in ("source", "target"):
            bench.viewer.open_sample(PLUGIN, key)
    for name in DOCKED:
        dock, widget = bench.viewer.window.add_plugin_dock_widget(
            PLUGIN, name, tabify=name != DOCKED[0]
        )
        bench.widgets[name], bench.docks[name] = widget, dock
    bench.docks[DOCKED[0]].raise_()
    return bench


def run_gui(samples: bool = True) -> None:
    import napari

    open_workbench(samples=samples)
    napari.run()
