"""Adapting a model to target data: AdaBN and the other label-free cures, and the cure
that learns from a few painted strokes."""

from ..adabn.config import CURES, STROKE_CURES, AdaptConfig
from .api import adapt, adapt_steps, reset
from .engine import AdaptResult

__all__ = ["CURES", "STROKE_CURES", "AdaptConfig", "AdaptResult", "adapt", "adapt_steps", "reset"]
