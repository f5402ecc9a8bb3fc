"""User-facing messages from the widgets: a line in the widget, and napari notifications.

Every action ends in a :class:`Feedback` line under the widget's buttons that says what
happened and what to do next. Information stays there, in full: a napari notification
would sit over the image and cut the sentence to the width of its toast. Warnings and
errors are notifications as well (they need attention wherever the user is looking).
"""

from __future__ import annotations

import contextlib
import html
from typing import Any

from napari.utils import notifications
from qtpy.QtWidgets import QMessageBox

#: Feedback levels, least to most severe.
LEVELS = ("info", "warning", "error")


def notify(level: str, message: str) -> None:
    """Show ``message`` as an ``error``, ``warning`` or (anything else) ``info`` notification."""
    show = {"error": notifications.show_error, "warning": notifications.show_warning}
    show.get(level, notifications.show_info)(message)


class Feedback:
    """One wrapping line at the bottom of a widget: what just happened, what to do next.

    ``label`` is the magicgui Label to place; ``text`` and ``level`` are what it shows.
    """

    def __init__(self, viewer: Any) -> None:
        from magicgui.widgets import Label

        from .help import wrapping

        self.viewer = viewer
        self.label = wrapping(Label(value=""))
        self.label.native.setTextInteractionFlags(
            self.label.native.textInteractionFlags() | _selectable()
        )
        self.label.native.setTextFormat(_rich())
        self.level = "info"
        self._text = ""
        self._shown: tuple[str, str | None] = ("", None)
        events = getattr(getattr(viewer, "events", None), "theme", None)
        if events is not None:  # errors keep their contrast when the theme changes
            events.connect(lambda *_: self._render(*self._shown))

    @property
    def text(self) -> str:
        """What the line says, as plain text (lines joined by newlines)."""
        return self._text

    def say(
        self, level: str, text: str, next_step: str | None = None, toast: bool | None = None
    ) -> None:
        """Show ``text`` (and the ``next_step``); warnings and errors also as notifications
        (``toast=False``: a warning that the widget alone shows, e.g. an empty mask)."""
        self.level = level if level in LEVELS else "info"
        self._text = text if not next_step else f"{text}\n{next_step}"
        self._render(text, next_step)
        if toast if toast is not None else self.level != "info":
            notify(self.level, text)

    def _render(self, text: str, next_step: str | None) -> None:
        self._shown = (text, next_step)
        head = "<br>".join(html.escape(line) for line in text.splitlines())
        style = _style(self.level, self.viewer)
        rich = f'<span style="{style}">{head}</span>' if style else head
        if next_step:
            rich += "<br>" + html.escape(next_step)
        with contextlib.suppress(RuntimeError):  # closed: a notification still tells the user
            self.label.value = rich

    def clear(self) -> None:
        self.level, self._text = "info", ""
        self.label.value = ""


def _selectable() -> Any:
    from qtpy.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse


def _rich() -> Any:
    from qtpy.QtCore import Qt

    return Qt.TextFormat.RichText


#: (dark theme, light theme) text colours that keep contrast on napari's backgrounds (the
#: themes' own error red is too dark on the dark background, their warning yellow too pale
#: on the light one).
COLOURS = {"warning": ("#f0c419", "#8a6100"), "error": ("#ff7070", "#b3001b")}


def _style(level: str, viewer: Any) -> str:
    """Errors and warnings in colours that read in the dark and the light theme."""
    if level == "info":
        return ""
    light = getattr(viewer, "theme", "dark") == "light"
    return f"color: {COLOURS[level][light]}; font-weight: bold"


def confirm(parent: Any, title: str, question: str) -> bool:
    """Ask a yes/no ``question`` in a dialog over ``parent``; No is the default answer."""
    answer = QMessageBox.question(
        parent, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )  # fmt: skip
    return answer == QMessageBox.StandardButton.Yes
