"""Re-estimating BatchNorm statistics on unlabeled target data (AdaBN and variants)."""

from .engine import AdaptConfig, AdaptResult, adapt, adapt_steps, reset

__all__ = ["AdaptConfig", "AdaptResult", "adapt", "adapt_steps", "reset"]
