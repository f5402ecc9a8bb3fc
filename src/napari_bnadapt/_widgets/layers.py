"""Small helpers between napari layers and the core: data in, result layers out."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, ClassVar

import numpy as np

from ..diagnostics.figures import CURE_COLOUR, STATE_COLOURS
from ..errors import InputDataError
from ..inference import Prediction
from ..io.images import to_grey
from ..io.volumes import voxel_size_nm


@dataclass(frozen=True)
class MaskOrigin:
    """Where a mask layer came from, kept in its ``metadata[MaskOrigin.KEY]``.

    The prediction keeps the probabilities the label-free figures need (None for a mask
    written block by block to disk: its probabilities are not kept); the mask itself is
    read back from the layer, so edits the user painted count.
    """

    KEY: ClassVar[str] = "bnadapt"

    prediction: Prediction | None
    state: str
    image: str
    model: str

    @classmethod
    def of(cls, layer: Any) -> MaskOrigin | None:
        origin = getattr(layer, "metadata", {}).get(cls.KEY)
        return origin if isinstance(origin, cls) else None


def kind_of(layer: Any) -> str:
    """The layer's kind (``"Labels"``, ``"Image"``, ...), also through the proxy napari
    hands plugins (``type()`` of a ``PublicOnlyProxy`` names the proxy, not the layer)."""
    return layer.__class__.__name__


#: ``metadata[ROLE]`` of the helper layers the widgets add (a probability map, a grid
#: cell's copy of the image, the gained/lost layer): never a default choice of an input.
ROLE = "bnadapt_role"
#: A labels layer whose name says it is the correct segmentation.
TRUTH_NAME = re.compile(r"ground[ _-]?truth|\bgt\b|\btruth\b|annotation|groundtruth", re.I)


def role_of(layer: Any) -> str | None:
    """The helper role of a layer the widgets added (None: the user's own or a mask);
    a labels layer named ``<image> strokes`` is strokes, as when saved strokes are opened
    again (the file keeps the layer's name, not its metadata)."""
    role = getattr(layer, "metadata", {}).get(ROLE)
    if role is None and kind_of(layer) == "Labels":
        return "strokes" if str(getattr(layer, "name", "")).endswith(" strokes") else None
    return role


def hide_older_masks(viewer: Any, image: str, newest: Any) -> None:
    """Show only the newest mask of ``image``: an older one left under it fills its gaps
    and hides what changed (Compare masks sets them side by side). By name: napari hands
    plugins proxies of layers."""
    for layer in viewer.layers:
        origin = MaskOrigin.of(layer)
        if origin is not None and origin.image == image and layer.name != newest.name:
            layer.visible = False


def says_truth(layer: Any) -> bool:
    """Whether a layer's name says it is ground truth (``target ground truth``, ``gt``)."""
    return bool(TRUTH_NAME.search(str(getattr(layer, "name", ""))))


def user_images(viewer: Any) -> list[Any]:
    """The image layers the user brought (not the widgets' probability maps or copies)."""
    return images_in(viewer.layers)


def images_in(layers: Any) -> list[Any]:
    """The user's image layers of a layer list (see :func:`user_images`)."""
    return [x for x in layers if kind_of(x) == "Image" and role_of(x) is None]


def names_layer(recorded: str, layer_name: str) -> bool:
    """Whether a record's target names the layer: the layer's own name (napari), or the
    file the command line was given, whose layer napari names after the file's stem."""
    return recorded == layer_name or (
        PurePath(recorded).suffix != "" and PurePath(recorded).stem == layer_name
    )


def recorded_layer(viewer: Any, recorded: str) -> Any:
    """The open layer a record's target names (see :func:`names_layer`), else None."""
    if recorded in viewer.layers:
        return viewer.layers[recorded]
    return next((x for x in viewer.layers if names_layer(recorded, x.name)), None)


def inserted_layer(event: Any) -> Any:
    """The layer a layer-list event inserted (None for any other event)."""
    return getattr(event, "value", None) if getattr(event, "type", None) == "inserted" else None


def image_to_follow(viewer: Any, event: Any, current: Any) -> Any:
    """The image a layer choice shows after a layer-list ``event`` (None: at start): an
    image the user just opened, else ``current`` while it is still open, else the newest
    image (None when there is none)."""
    images = user_images(viewer)
    inserted = inserted_layer(event)
    if inserted is not None and inserted in images:
        return inserted
    if event is not None and current is not None and current in images:
        return current
    return images[-1] if images else None


def hide_opened_truth(event: Any) -> None:
    """File ▸ Open Sample adds the hidden ground truth last and napari selects it: its
    paint tools would show for a layer nobody sees. Once napari is done, the newest image
    is selected instead."""
    inserted = inserted_layer(event)
    if inserted is not None and says_truth(inserted) and not inserted.visible:
        from qtpy.QtCore import QTimer

        layers = getattr(event, "source", None)  # the list itself, not a plugin's proxy
        if layers is not None:
            QTimer.singleShot(0, lambda: select_image_instead(inserted, layers))


def select_image_instead(layer: Any, layers: Any) -> None:
    """Select the newest user image in ``layers`` if ``layer`` is the selected one. Given
    the layer list an event came from, not the widget's view of the viewer: napari may hand
    plugins a proxy, through which a selection is not set."""
    images = images_in(layers)
    if layers.selection.active is layer and images:
        layers.selection.active = images[-1]


def foreground_fraction(data: Any) -> float | None:
    """The fraction of nonzero voxels of an in-memory mask (None for a lazy one)."""
    if type(data).__module__.startswith(("dask", "zarr")):
        return None
    array = np.asarray(data)
    return float(np.count_nonzero(array)) / array.size if array.size else 0.0


def prediction_of(layer: Any) -> Prediction:
    """The prediction a labels layer shows: its current data, with the probabilities and
    the class meaning of the prediction it came from (none for a layer made elsewhere)."""
    origin = MaskOrigin.of(layer)
    data = np.asarray(layer_data(layer))
    if origin is None or origin.prediction is None:
        return Prediction.of_segmentation(data)
    before = origin.prediction
    return Prediction.of_segmentation(data, before.probabilities, before.multiclass)


def geometry_of(like: Any) -> dict[str, Any]:
    """What a layer over ``like`` takes to sit on it: scale, translate, and its units and
    axis labels (the slider reads "z", not "-3"; napari warns when units differ)."""
    geometry = {"scale": like.scale, "translate": like.translate}
    for key in ("units", "axis_labels"):
        value = getattr(like, key, None)
        if value is not None:
            geometry[key] = value
    return geometry


def result_layer(
    viewer: Any, name: str, data: Any, like: Any, kind: str = "labels", **kwargs: Any
) -> Any:
    """Add a layer named ``name`` over ``like`` (same scale, translate, units), or replace
    the data of the existing layer of that name when it still holds what was written there.
    A layer of that name changed since (a mask corrected by hand, strokes painted) or not
    written here is renamed ``<name> (kept)`` and kept, with a notification: a walkthrough
    lost a hand-corrected mask to Segment again, and painted strokes to Paint corrections."""
    geometry = geometry_of(like)
    if name in viewer.layers:
        layer = viewer.layers[name]
        if as_written(layer, kind):
            layer.data = data
            layer.visible = True  # a fresh result: hidden by a newer mask before, shown again
            for key, value in kwargs.items():
                if key == "metadata":
                    layer.metadata.update(value)
            layer.metadata[WRITTEN] = digest_of(layer.data)
            return layer
        set_aside(layer)
    add = viewer.add_labels if kind == "labels" else viewer.add_image
    layer = add(data, name=name, **geometry, **kwargs)
    layer.metadata[WRITTEN] = digest_of(layer.data)
    return layer


#: ``metadata[WRITTEN]``: a digest of the data a result layer was given, to tell whether
#: the user changed it since.
WRITTEN = "bnadapt_written"


def digest_of(data: Any) -> str:
    """A digest of an in-memory array's values and shape; ``"lazy"`` for a volume on disk
    (dask, zarr: napari does not paint there, and reading it whole is what it avoids)."""
    if not isinstance(data, np.ndarray):
        return "lazy"
    found = hashlib.blake2b(digest_size=16)
    found.update(f"{data.shape}{data.dtype}".encode())
    found.update(np.ascontiguousarray(data).data)
    return found.hexdigest()


def as_written(layer: Any, kind: str) -> bool:
    """Whether ``layer`` is a ``kind`` layer written here and unchanged since."""
    if kind_of(layer) != ("Labels" if kind == "labels" else "Image"):
        return False
    written = getattr(layer, "metadata", {}).get(WRITTEN)
    return written is not None and written == digest_of(layer.data)


def set_aside(layer: Any) -> None:
    """Rename ``layer`` out of the way of a new result, and say so."""
    from napari.utils import notifications

    old = layer.name
    layer.name = f"{old} (kept)"  # napari numbers it if that name is taken
    layer.metadata.pop(WRITTEN, None)
    notifications.show_warning(
        f"{old} was changed since it was made here (painted, or edited by hand), or is "
        f"not one of napari-bnadapt's: kept as {layer.name}; the new result is {old}."
    )


def roi_mask(layer: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """A boolean ROI of ``shape`` from a Shapes or Labels layer (None when no layer).

    Shapes drawn on one slice of a volume apply to every slice (a region of the sample,
    not of one section).
    """
    if layer is None:
        return None
    kind = kind_of(layer)
    if kind == "Labels":
        data = np.asarray(layer.data)
        if data.shape != tuple(shape):
            raise InputDataError(
                f"the ROI labels layer {layer.name!r} has shape {data.shape}, the target "
                f"{tuple(shape)}: paint the ROI on a labels layer made for the target"
            )
        return data != 0
    if kind == "Shapes":
        if len(layer.data) == 0:
            raise InputDataError(f"the ROI shapes layer {layer.name!r} holds no shape: draw one")
        ndim = layer.ndim
        plane = tuple(shape[-2:]) if ndim == 2 else tuple(shape[-ndim:])
        mask = np.asarray(layer.to_labels(labels_shape=plane)) != 0
        while mask.ndim > 2:  # shapes on some slices: the union over those slices
            mask = mask.any(axis=0)
        return np.broadcast_to(mask, tuple(shape)).copy()
    raise InputDataError(f"{layer.name!r} is neither a Shapes nor a Labels layer")


def layer_data(layer: Any) -> Any:
    """The array of an image layer (the full-resolution level of a multiscale one); an RGB
    layer as grey (EM is often saved as colour)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return to_grey(data) if getattr(layer, "rgb", False) else data


def mask_colours(state: str, multiclass: bool = False) -> dict[str, Any]:
    """``colormap=`` for a binary mask layer of ``state`` (class labels keep napari's)."""
    if multiclass:
        return {}
    from napari.utils.colormaps import DirectLabelColormap

    colour = STATE_COLOURS.get(state, CURE_COLOUR)
    return {
        "colormap": DirectLabelColormap(
            color_dict={None: "transparent", 0: "transparent", 1: colour}
        )
    }


def is_lazy(layer: Any) -> bool:
    """Whether a layer's pixels stay on disk (a container, a multiscale image, a dask
    array): such layers are segmented block by block, never loaded whole."""
    if getattr(layer, "multiscale", False):
        return True
    data = layer_data(layer)
    return type(data).__module__.startswith(("dask", "zarr")) or bool(
        getattr(layer, "metadata", {}).get("lazy")
    )


def layers_of(viewer: Any, *kinds: str) -> list[tuple[str, Any]]:
    """(name, layer) choices of the given layer class names, for combo boxes (the grid
    cells' temporary copies of an image and the unsure region's outline left out)."""
    return [
        (layer.name, layer)
        for layer in viewer.layers
        if kind_of(layer) in kinds and role_of(layer) not in ("compare", "region")
    ]


def layer_voxel_size(layer: Any) -> tuple[float, ...] | None:
    """A layer's voxel size in nm (its scale in physical units), None in pixel units."""
    units = getattr(layer, "units", None)
    if units is None:
        return None
    return voxel_size_nm(tuple(float(s) for s in layer.scale), tuple(str(u) for u in units))


def mask_state(model: Any) -> str:
    """What a mask layer's name says of the statistics that made it: source or the cure."""
    return "source" if model.adaptation is None else model.adaptation.in_force


def mask_to_compare(viewer: Any, image: str, state: str, taught: bool) -> Any:
    """The mask of ``image`` a new one (made in ``state``) is read against: after strokes
    the label-free one (what the strokes changed), else the source statistics' (what
    adapting changed); None for a source mask or when there is none."""
    if state == "source":
        return None
    names = [f"{image} mask [adabn]"] if taught else []
    names.append(f"{image} mask [source]")
    return next((viewer.layers[n] for n in names if n in viewer.layers), None)
