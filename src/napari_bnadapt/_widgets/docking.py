"""Where the plugin's docks go: one tab each, side by side, however they were opened.

``bnadapt gui`` docks every widget as a tab. Opened one after another from napari's
*Plugins* menu, they were stacked instead: each keeps its least height, and with three or
four of them the window grew past a 1366×768 screen (1308 px in a walkthrough), messages
were cut and tables overlapped their text. So each widget, once napari has put it in a
dock, joins the tabs of the plugin's docks already there, with a short tab title.
"""

from __future__ import annotations

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QWidget

#: The tabs' titles: the step number and a name short enough that five tabs fit a laptop's
#: dock uncut ("Segment and adapt (napari-bnadapt)" was cut to "Segment and adapt …").
TAB_TITLES = {
    "Model": "1 Model",
    "Segment and adapt": "2 Segment, adapt",
    "Compare masks": "3 Compare",
    "Latent histograms": "4 Latents",
}
#: The Qt property that marks a widget of this plugin (its docks are found by it).
MARK = "napari_bnadapt_dock"
#: The Qt property of a widget whose dock was placed already (``bnadapt gui`` tabs its own).
PLACED = "napari_bnadapt_placed"


def tab_beside_siblings(native: QWidget, name: str) -> None:
    """Mark ``native`` (a widget named ``name``) as the plugin's and, once napari has
    docked it (after this event), put its dock in a tab beside the plugin's other docks."""
    native.setProperty(MARK, name)
    QTimer.singleShot(0, lambda: join_tabs(native, name))


def join_tabs(native: QWidget, name: str) -> None:
    """Tab ``native``'s dock with the plugin's other docks in its area, titled for a tab;
    nothing when it is in no dock, already in tabs, or placed (``bnadapt gui`` tabs its own)."""
    try:
        dock = dock_of(native)
        if native.property(PLACED):
            return
    except RuntimeError:  # closed before the event loop came back
        return
    window = dock.parentWidget() if dock is not None else None
    if not isinstance(window, QMainWindow) or window.tabifiedDockWidgets(dock):
        return
    area = window.dockWidgetArea(dock)
    siblings = [
        other
        for other in window.findChildren(QDockWidget)
        if other is not dock
        and not other.isFloating()
        and window.dockWidgetArea(other) == area
        and _is_ours(other)
    ]
    if name in TAB_TITLES:
        dock.setWindowTitle(TAB_TITLES[name])
    if siblings:
        window.tabifyDockWidget(siblings[-1], dock)
        dock.show()
        dock.raise_()  # the widget just opened is the one in front


def dock_of(native: QWidget) -> QDockWidget | None:
    """The dock widget holding ``native``, if any."""
    parent = native.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def _is_ours(dock: QDockWidget) -> bool:
    return any(child.property(MARK) for child in dock.findChildren(QWidget))
