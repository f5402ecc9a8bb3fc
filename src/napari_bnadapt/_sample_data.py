"""npe2 sample data: synthetic source and shifted target EM-like volumes with ground truth.

Returns napari LayerData tuples; needs no napari import.
"""

from __future__ import annotations

from typing import Any

from .demo import VOXEL_SIZE, SampleVolume, source_volume, target_volume

LayerData = tuple[Any, dict[str, Any], str]


def make_source_sample() -> list[LayerData]:
    """File ▸ Open Sample ▸ napari-bnadapt ▸ Source volume (synthetic)."""
    return _layers(source_volume(), "source")


def make_target_sample() -> list[LayerData]:
    """File ▸ Open Sample ▸ napari-bnadapt ▸ Shifted target volume (synthetic)."""
    return _layers(target_volume(), "target")


def _layers(volume: SampleVolume, short: str) -> list[LayerData]:
    # Axis names: napari's slider then reads "z", not "-3".
    common = {"scale": VOXEL_SIZE, "units": ("nm", "nm", "nm"), "axis_labels": ("z", "y", "x")}
    return [
        (volume.image, {"name": f"{short} EM", **common}, "image"),
        (
            volume.truth,
            {"name": f"{short} ground truth", "opacity": 0.4, "visible": False, **common},
            "labels",
        ),
    ]
