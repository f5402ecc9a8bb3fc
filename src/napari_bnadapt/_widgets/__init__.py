"""The napari dock widgets: thin adapters over the Qt-free core (one job each)."""

from .adapt_widget import AdaptWidget
from .compare_widget import CompareWidget
from .histogram_widget import HistogramWidget
from .model_widget import ModelWidget

__all__ = ["AdaptWidget", "CompareWidget", "HistogramWidget", "ModelWidget"]
