"""AdaBN and its variants: BatchNorm statistics measured on target patches, exactly pooled.

The statistics level of adaptation; :mod:`napari_bnadapt.adapt` builds every cure on it.
"""

from .config import DEFAULT_PATCHES, AdaptConfig
from .estimation import Estimate, estimate_steps

__all__ = ["DEFAULT_PATCHES", "AdaptConfig", "Estimate", "estimate_steps"]
