"""How every dock widget is laid out, so that no computed result is ever scrolled away.

Top to bottom: the widget's one-line purpose; its controls, in titled sections, in a body
that scrolls only when the screen is too short for them (a 1366×768 laptop with every option
shown); then its results (the feedback line, a table, a reading), pinned under the body,
always in view. A widget describes itself as data (:class:`Section` tuples and a list of
result widgets) and :func:`lay_out` builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qtpy.QtCore import QEvent, QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy

from .docking import tab_beside_siblings
from .help import add_purpose, control_of, wrapping

#: The least height the controls keep when the screen is short (they scroll inside it).
MIN_BODY_HEIGHT = 120
#: Controls up to this tall never scroll (a few rows): the results share the rest. A
#: walkthrough's Latents, its verdict and table shown, scrolled its export row away.
SHORT_BODY = 240


@dataclass(frozen=True)
class Section:
    """A titled group of controls: ``names`` are attributes of the widget (or dotted paths,
    see :func:`~.help.control_of`), in order (``title`` None: no title line)."""

    title: str | None
    names: tuple[str, ...]


def lay_out(
    widget: Any,
    purpose: str,
    sections: Sequence[Section],
    results: Sequence[Any] = (),
    labels: bool = True,
    fill: Any = None,
) -> Any:
    """Build ``widget`` (a magicgui Container without labels) from its sections and results;
    ``fill``: the result that takes the dock's spare height (a table that grows), else the
    results stay right under the controls.

    Returns the body (a labelled Container holding the sections' controls); its titles are
    ``widget.headings`` by title.
    """
    from magicgui.widgets import Container

    body = Container(labels=labels)
    body.margins = (0, 0, 0, 0)
    for section in sections:
        body.extend([control_of(widget, name) for name in section.names])
    widget.extend([body, *results])
    widget.headings = {}
    layout = body.native.layout()
    for section in sections:
        controls = [control_of(widget, name) for name in section.names]
        for control in controls:
            _full_width(control)
        if section.title is not None:
            label = heading(section.title)
            layout.insertWidget(layout.indexOf(_row_of(body, controls[0])), label.native)
            widget.headings[section.title] = label
    layout.addStretch(1)
    _scroll(
        widget, body, None if fill is None else getattr(fill, "root_native_widget", fill.native)
    )
    add_purpose(widget, purpose)
    widget.body = body
    tab_beside_siblings(widget.native, purpose)
    return body


def button_row(*buttons: Any, labels: bool = False) -> Any:
    """Buttons (or controls, with their ``labels``) side by side, across the widget."""
    from magicgui.widgets import Container

    row = Container(widgets=list(buttons), layout="horizontal", labels=labels)
    row.margins = (0, 0, 0, 0)
    return row


def heading(text: str) -> Any:
    """A section title across a widget's full width."""
    from magicgui.widgets import Label

    label = wrapping(Label(value=text))
    label.native.setStyleSheet("font-weight: bold; margin-top: 2px")
    return label


class FittingScrollArea(QScrollArea):
    """A scroll area as tall as its content when there is room, and no taller; shorter
    (scrolling) only when the dock is too short for it. It follows its content: a control
    shown or hidden there changes its size (a plain scroll area keeps its first size)."""

    def setWidget(self, widget: Any) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return False

    def sizeHint(self) -> QSize:
        inner = self.widget()
        if inner is None:
            return super().sizeHint()
        hint = inner.sizeHint()
        frame = 2 * self.frameWidth()
        return QSize(hint.width() + frame, hint.height() + frame)

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        width = inner.minimumSizeHint().width() if inner is not None else 0
        height = self.sizeHint().height()
        return QSize(width, height if height <= SHORT_BODY else MIN_BODY_HEIGHT)


def _scroll(widget: Any, body: Any, filler: Any = None) -> FittingScrollArea:
    """Put ``body`` (already in ``widget``) into a :class:`FittingScrollArea` in its place;
    the spare height goes to ``filler`` (else under the results)."""
    layout = widget.native.layout()
    index = layout.indexOf(body.native)
    layout.removeWidget(body.native)
    area = FittingScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
    area.setWidget(body.native)
    layout.insertWidget(index, area)
    if filler is not None:
        layout.setStretchFactor(filler, 1)
    else:
        layout.addStretch(1)  # the results stay right under the controls
    widget.scroll_area = area
    return area


def scroll_in_place(widget: Any, result: Any) -> QScrollArea:
    """Put ``result`` (a result of ``widget``, laid out) into a scroll area in its place,
    with its stretch: a long text then scrolls, down only (its lines wrap), instead of
    running past the screen's bottom."""
    layout = widget.native.layout()
    index = layout.indexOf(result.native)
    stretch = layout.stretch(index)
    layout.removeWidget(result.native)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(result.native)
    layout.insertWidget(index, area, stretch)
    return area


def _full_width(control: Any) -> None:
    """A row of buttons (a Container) or a line of text across the full width, not in the
    value column."""
    from magicgui.widgets import Container, Label

    if not isinstance(control, Container | Label):
        return
    ref = getattr(control, "_labeled_widget_ref", None)
    labelled = ref() if ref is not None else None
    if labelled is not None:
        labelled._label_widget.visible = False


def _row_of(body: Any, control: Any) -> Any:
    """The body's layout row that holds ``control`` (magicgui wraps labelled controls)."""
    native = control.native
    while native.parentWidget() is not None and native.parentWidget() is not body.native:
        native = native.parentWidget()
    return native
