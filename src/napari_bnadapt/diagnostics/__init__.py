"""Why adaptation works or not: latent distributions, distances, mask quality, a reading, reports."""

from .capture import capture_latents
from .diagnosis import Diagnosis, diagnose, diagnose_steps
from .latents import LatentCapture, LatentConfig

__all__ = [
    "Diagnosis",
    "LatentCapture",
    "LatentConfig",
    "capture_latents",
    "diagnose",
    "diagnose_steps",
]
