"""Adapting a model to target data: AdaBN and the other label-free cures, and the cure
that learns from a few painted strokes."""

from ..lazy_exports import lazy_exports

# Imported on first use: importing the package (or its configuration) stays light.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CURES": "..adabn.config",
        "STROKE_CURES": "..adabn.config",
        "AdaptConfig": "..adabn.config",
        "AdaptResult": ".engine",
        "adapt": ".api",
        "adapt_steps": ".api",
        "reset": ".api",
    },
)
