"""How the stroke flow's layers look, and where it takes the view: the strokes' colours
and legend, the uncertainty map's colours, and the camera on a region (see
:mod:`.strokes_section`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..adapt.strokes import class_names
from .help import percent
from .layers import geometry_of

#: Colours of the strokes of a one-channel model: magenta background, yellow foreground
#: (apart from the masks' orange, cyan and purple, and from each other for colour-blind
#: eyes; a blue was lost on the cyan of AdaBN's masks).
STROKE_COLOURS = {1: "#ff3ccf", 2: "#ffd21f"}
#: The uncertainty map: transparent where the network is sure (up to 0.25, a probability
#: beyond about 0.96), then redder and more opaque, so that the image and masks stay
#: visible (magma, even additive, hid bright EM under a haze).
UNSURE_COLOURS = ([1.0, 0.15, 0.1, 0.0], [1.0, 0.15, 0.1, 0.0], [1.0, 0.15, 0.1, 0.9])
UNSURE_CONTROLS = (0.0, 0.25, 1.0)


def stroke_colours(model: Any) -> dict[str, Any]:
    """``colormap=`` for the strokes of a one-channel model (napari's for class labels)."""
    if model.out_channels != 1:
        return {}
    from napari.utils.colormaps import DirectLabelColormap

    colours = {None: "transparent", 0: "transparent", **STROKE_COLOURS}
    return {"colormap": DirectLabelColormap(color_dict=colours)}


def legend_of(model: Any) -> str:
    """Which label paints what, in the user's words."""
    names = class_names(model)
    if model.out_channels == 1:
        return (
            f"2 = {names[1]} (yellow) where the mask misses it, 1 = {names[0]} (magenta) "
            "where it marks too much"
        )
    labels = ", ".join(f"{i} = {name}" for i, name in enumerate(names, 1))
    return f"{labels} (choose the label in the layer controls)"


def unsure_colours() -> Any:
    from napari.utils.colormaps import Colormap

    return Colormap(list(UNSURE_COLOURS), controls=list(UNSURE_CONTROLS), name="bnadapt unsure")


def percent_unsure(found: np.ndarray) -> str:
    return percent(float(np.mean(found > 0.5))) if found.size else "0 %"


def go_to(viewer: Any, layer: Any, region: tuple[slice, ...]) -> None:
    """Show ``region`` (slices of ``layer``'s data) in the middle of the canvas: its slice,
    centred, zoomed so that it fills about half the canvas."""
    centre = [(s.start + s.stop - 1) / 2 for s in region]
    world = np.asarray(layer.data_to_world(centre), dtype=float)
    offset = viewer.dims.ndim - len(world)
    displayed = [a - offset for a in viewer.dims.displayed if a >= offset]
    for axis in range(len(world)):
        if axis not in displayed:
            viewer.dims.set_point(axis + offset, world[axis])
    camera = viewer.scene.camera
    camera.center = tuple(world[displayed])
    extent = max((region[a].stop - region[a].start) * abs(layer.scale[a]) for a in displayed)
    camera.zoom = 0.5 * min(viewer.canvas.size) / max(extent, 1e-9)


#: The outline of the region "Next uncertain region" shows: cyan, apart from the map's red
#: and the strokes' yellow and magenta.
REGION_COLOUR = "#00e5ff"


def outline_region(viewer: Any, layer: Any, region: tuple[slice, ...], role: dict) -> Any:
    """Draw ``region`` (slices of ``layer``'s data) as a rectangle on its slice, in a
    shapes layer ``<layer> unsure region`` over ``layer`` (replaced at each call): where to
    look and paint, not only where the view went."""
    (y, x) = region[-2:]
    top, left, bottom, right = y.start - 0.5, x.start - 0.5, y.stop - 0.5, x.stop - 0.5
    corners = [(top, left), (top, right), (bottom, right), (bottom, left)]
    if len(region) == 3:
        corners = [(region[0].start, *c) for c in corners]
    box = np.asarray(corners, dtype=float)
    name = f"{layer.name} unsure region"
    if name in viewer.layers:
        shapes = viewer.layers[name]
        shapes.data = []
        shapes.add_rectangles([box], edge_color=REGION_COLOUR, face_color="transparent")
        return shapes
    return viewer.add_shapes(
        [box], shape_type="rectangle", name=name, edge_color=REGION_COLOUR,
        face_color="transparent", edge_width=max(1.0, (y.stop - y.start) / 64),
        metadata=role, **geometry_of(layer),
    )  # fmt: skip
