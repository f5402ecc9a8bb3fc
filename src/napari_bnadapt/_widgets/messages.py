"""User-facing messages from the widgets, as napari notifications."""

from __future__ import annotations

from typing import Any

from napari.utils import notifications
from qtpy.QtWidgets import QMessageBox


def notify(level: str, message: str) -> None:
    """Show ``message`` as an ``error``, ``warning`` or (anything else) ``info`` notification."""
    show = {"error": notifications.show_error, "warning": notifications.show_warning}
    show.get(level, notifications.show_info)(message)


def confirm(parent: Any, title: str, question: str) -> bool:
    """Ask a yes/no ``question`` in a dialog over ``parent``; No is the default answer."""
    answer = QMessageBox.question(
        parent, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )  # fmt: skip
    return answer == QMessageBox.StandardButton.Yes
