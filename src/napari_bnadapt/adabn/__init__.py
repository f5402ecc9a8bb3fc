"""AdaBN and its variants: BatchNorm statistics measured on target patches, exactly pooled.

The statistics level of adaptation; :mod:`napari_bnadapt.adapt` builds every cure on it.
"""

from ..lazy_exports import lazy_exports

# Imported on first use: importing the package (or its configuration) stays light.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DEFAULT_PATCHES": ".config",
        "AdaptConfig": ".config",
        "Estimate": ".estimation",
        "estimate_steps": ".estimation",
    },
)
