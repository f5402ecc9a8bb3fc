"""Physical sizes this package believes: a voxel size outside them is a mistake.

EM voxels of cells and tissue range from about an ångström (cryo-electron tomography) to a
few micrometres (light microscopy that shares the tools). A model file or an image header claiming 1e-300 nm or
1e308 nm, zero or negative sizes, would otherwise end far from its cause, in a resampling
to petabytes or in "the input is empty".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The smallest and largest voxel edge accepted, in nm (1 Å to 1 mm).
VOXEL_NM_MIN, VOXEL_NM_MAX = 0.1, 1e6


def is_sane_voxel_size(values: Sequence[float]) -> bool:
    """Whether every edge is a finite number of nm within the accepted range."""
    try:
        sizes = [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return bool(sizes) and all(
        math.isfinite(v) and VOXEL_NM_MIN <= v <= VOXEL_NM_MAX for v in sizes
    )


def voxel_range_text() -> str:
    return f"between {VOXEL_NM_MIN:g} nm and {VOXEL_NM_MAX:g} nm"
