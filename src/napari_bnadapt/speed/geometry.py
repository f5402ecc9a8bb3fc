"""Tile size and overlap of a prediction, from the network and the image."""

from __future__ import annotations

from ..arrays.tiling import fitted_tile
from ..errors import require
from ..model.loaded import LoadedModel
from ..predict_config import DEFAULT_TILE
from .receptive import overlap_for, receptive_radius


def geometry_for(
    model: LoadedModel,
    tile_shape: int | tuple[int, ...] | None,
    overlap: float | None,
    spatial: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tile and overlap per axis on ``spatial``.

    With ``overlap`` None (the default): the overlap the network needs (half its
    receptive-field radius, rounded up to its down-sampling; :mod:`.receptive`) and tiles
    fitted to the image (:func:`~napari_bnadapt.arrays.tiling.fitted_tile`). With a
    fraction: the asked tile clipped to the image, overlapping by that fraction (the former
    fixed grid). Either way at least twice the halo a package declares (the border its
    network gets wrong), so that blending hides it.
    """
    tile = tile_shape_for(tile_shape, model.dims, spatial)
    halo = int(model.metadata.get("halo") or 0)
    if overlap is not None:
        overlaps = tuple(
            min(t - 1, max(round(t * overlap), 2 * halo)) if t < n else 0
            for t, n in zip(tile, spatial)
        )
        return tile, overlaps
    if all(t >= n for t, n in zip(tile, spatial)):
        return tile, (0,) * len(tile)
    # The largest reach, on every axis: along one axis the probe can fall short where
    # ReLUs cut paths (a trained 3D U-Net: 38, 29 and 34 px for one radius of about 46).
    radius = widest(
        receptive_radius(model.module, model.dims, model.in_channels, model.divisor, model.min_size)
    )
    tiles, overlaps_ = [], []
    for t, n in zip(tile, spatial):
        needed = max(overlap_for(radius, t, model.divisor), min(2 * halo, t // 2))
        length, stride = fitted_tile(n, t, needed, model.divisor)
        tiles.append(length)
        overlaps_.append(length - stride if length < n else 0)
    return tuple(tiles), tuple(overlaps_)


def tile_shape_for(
    tile: int | tuple[int, ...] | None, dims: int, spatial: tuple[int, ...]
) -> tuple[int, ...]:
    """The tile of a ``dims``-D model on ``spatial``: the asked size (or the default),
    clipped to the image."""
    if tile is None:
        tile = DEFAULT_TILE[dims]
    sizes = (tile,) * dims if isinstance(tile, int) else tuple(int(t) for t in tile)
    require(len(sizes) == dims, f"a {dims}D model needs {dims} tile sizes, got {tile}")
    return tuple(min(t, n) for t, n in zip(sizes, spatial))


def widest(radius: tuple[int | None, ...]) -> int | None:
    """The largest radius over the axes (None, unbounded, when any is)."""
    return None if any(r is None for r in radius) else max(radius, default=0)
