"""Masks side by side in napari's grid: one captioned cell per mask over its own copy of
the image, the camera fitted so that every cell shows its whole image, and the layers put
back exactly as they were afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .layers import ROLE, MaskOrigin, foreground_fraction

#: What each grid cell's caption calls its mask, by position (further masks: none).
CELL_ROLES = ("before", "after")
#: A mask with at most this foreground fraction is captioned "empty".
EMPTY = 0.001


@dataclass
class SideBySide:
    """The grid view of one viewer, and what to restore when it ends."""

    viewer: Any
    _saved: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self._saved is not None

    def show(self, image: Any, masks: list[Any]) -> list[str]:
        """Grid cells ``[copy of image, mask]`` for each mask, captioned (the captions are
        returned); one camera fitted to every whole image; contrast linked between copies."""
        self.restore()
        layers = self.viewer.layers
        captions = [caption(i, mask) for i, mask in enumerate(masks)]
        twins = [_twin(self.viewer, image, text) for text in captions]
        layers.link_layers([image, *twins], ("contrast_limits", "gamma", "colormap"))
        grid = self.viewer.canvas.grid
        self._saved = {
            "order": [layer for layer in layers if layer not in twins],
            "visible": {layer.name: layer.visible for layer in layers if layer not in twins},
            "twins": twins,
            "cells": [image, *masks],
            "stride": grid.stride,
            "shape": grid.shape,
        }
        # Positive stride groups layers i // stride: put the pairs first, image under mask.
        pairs = [x for pair in zip(twins, masks) for x in pair]
        for layer in layers:
            layer.visible = layer in pairs
        _reorder(layers, pairs + [x for x in layers if x not in pairs])
        grid.stride = 2
        grid.shape = grid_shape(len(masks), self.viewer.canvas.size, image)
        grid.enabled = True
        self.viewer.reset_view()  # every cell shows its whole image, not its middle
        return captions

    def shows(self, layer: Any) -> bool:
        """Whether ``layer`` (the image, a mask or a copy) is in a cell of the grid view."""
        saved = self._saved or {}
        return any(layer is x for x in (*saved.get("cells", ()), *saved.get("twins", ())))

    def restore(self) -> bool:
        """Grid off, the copies removed, layer order and visibility as they were; whether
        there was a grid view to end."""
        saved, self._saved = self._saved, None
        grid = self.viewer.canvas.grid
        grid.enabled = False
        if saved is None:
            return False
        grid.stride, grid.shape = saved["stride"], saved["shape"]
        layers = self.viewer.layers
        twins = [twin for twin in saved["twins"] if twin in layers]
        if twins:
            layers.unlink_layers(twins)
            for twin in twins:
                layers.remove(twin)
        _reorder(layers, [x for x in saved["order"] if x in layers])
        for layer in layers:
            layer.visible = saved["visible"].get(layer.name, layer.visible)
        self.viewer.reset_view()
        return True


def caption(index: int, mask: Any) -> str:
    """``1 before [source], empty``, ``2 after [adabn]``, ``3 [histogram+adabn]``: short
    enough for a grid cell (every cell shows the same image, so its name is left out)."""
    role = CELL_ROLES[index] if index < len(CELL_ROLES) else ""
    name = mask.name
    if MaskOrigin.of(mask) is not None and name.endswith("]") and "[" in name:
        name = name[name.rindex("[") :]
    return " ".join(p for p in (str(index + 1), role, name) if p) + (
        ", empty" if is_empty(mask) else ""
    )


def is_empty(mask: Any) -> bool:
    """Whether an in-memory mask has (almost) no foreground: its cell looks like the bare
    image, which the caption and the message must say."""
    fraction = foreground_fraction(mask.data)
    return fraction is not None and fraction <= EMPTY


def grid_shape(cells: int, canvas: tuple[int, int], image: Any) -> tuple[int, int]:
    """The rows and columns that show ``cells`` images of ``image``'s shape largest on a
    canvas of ``canvas`` (height, width) pixels."""
    extent = np.asarray(image.extent.world[1] - image.extent.world[0], float)[-2:]
    height, width = (float(v) if v > 0 else 1.0 for v in extent)
    best, best_zoom = (1, cells), 0.0
    for rows in range(1, cells + 1):
        columns = -(-cells // rows)
        zoom = min(canvas[0] / rows / height, canvas[1] / columns / width)
        if zoom > best_zoom + 1e-9:
            best, best_zoom = (rows, columns), zoom
    return best


def _twin(viewer: Any, image: Any, text: str) -> Any:
    """A copy of ``image`` (same data, geometry and display) for one grid cell, named
    ``text``, which napari draws at the top of the cell."""
    twin = viewer.add_image(
        image.data, name=text, scale=image.scale, translate=image.translate,
        colormap=image.colormap, gamma=image.gamma, contrast_limits=image.contrast_limits,
        units=image.units, axis_labels=image.axis_labels, metadata={ROLE: "compare"},
    )  # fmt: skip
    twin.name_overlay.visible = True
    twin.name_overlay.box = True
    twin.name_overlay.font_size = 9
    return twin


def _reorder(layers: Any, order: list) -> None:
    """Put ``order`` first in the layer list, in that order (bottom to top)."""
    for position, layer in enumerate(order):
        index = layers.index(layer)
        if index != position:
            layers.move(index, position)
