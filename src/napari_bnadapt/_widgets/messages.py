"""User-facing messages from the widgets, as napari notifications."""

from __future__ import annotations

from napari.utils import notifications


def notify(level: str, message: str) -> None:
    """Show ``message`` as an ``error``, ``warning`` or (anything else) ``info`` notification."""
    show = {"error": notifications.show_error, "warning": notifications.show_warning}
    show.get(level, notifications.show_info)(message)
