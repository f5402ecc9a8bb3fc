"""Adapting a model to unlabeled target data: AdaBN and the other label-free cures."""

from ..adabn.config import CURES, AdaptConfig
from .api import adapt, adapt_steps, reset
from .engine import AdaptResult

__all__ = ["CURES", "AdaptConfig", "AdaptResult", "adapt", "adapt_steps", "reset"]
