"""Matplotlib figures that look like napari: its theme's colours, dark or light.

As napari-matplotlib does: the figure and axes take the theme's background, text, ticks
and spines take its text colour, and lines drawn in near-black or near-white (the
diagnostics' neutral colours) are swapped to stay visible on the other background. The
figure is styled again whenever the viewer's theme changes.
"""

from __future__ import annotations

from typing import Any

from matplotlib.colors import to_rgb


def theme_colours(viewer: Any) -> tuple[str, str]:
    """(background, text) colours of the viewer's current theme."""
    from napari.utils.theme import get_theme

    name = viewer.theme if viewer.theme in ("dark", "light") else "dark"
    theme = get_theme(name)
    return theme.background.as_hex(), theme.text.as_hex()


def style_figure(figure: Any, viewer: Any) -> None:
    """Give ``figure`` the viewer's theme (call after drawing)."""
    background, text = theme_colours(viewer)
    dark = _luminance(background) < 0.5
    figure.set_facecolor(background)
    for ax in figure.axes:
        ax.set_facecolor(background)
        ax.tick_params(colors=text, which="both")
        for spine in ax.spines.values():
            spine.set_color(text)
        for label in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts):
            label.set_color(text)
        for line in ax.lines:
            if _neutral(line.get_color(), dark):
                line.set_color(text)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(background)
            legend.get_frame().set_edgecolor(text)
            for entry in legend.get_texts():
                entry.set_color(text)
            for handle in legend.legend_handles:
                colour = getattr(handle, "get_color", lambda: None)()
                if colour is not None and _neutral(colour, dark):
                    handle.set_color(text)


def _neutral(colour: Any, dark: bool) -> bool:
    """A grey that would vanish on this background (near-black on dark, near-white on
    light); coloured lines (before red, after blue) keep their colour."""
    red, green, blue = to_rgb(colour)
    grey = max(red, green, blue) - min(red, green, blue) < 0.05
    return grey and (_luminance(colour) < 0.35) == dark


def _luminance(colour: Any) -> float:
    red, green, blue = to_rgb(colour)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
