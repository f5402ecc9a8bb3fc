"""Why adaptation works or not: latent distributions, distances, mask quality, a reading, reports."""

from .capture import capture_latents
from .diagnosis import Diagnosis, diagnose, diagnose_steps
from .latents import LatentCapture, LatentConfig
from .report import Report, build_report, write_report

__all__ = [
    "Diagnosis",
    "LatentCapture",
    "LatentConfig",
    "Report",
    "build_report",
    "capture_latents",
    "diagnose",
    "diagnose_steps",
    "write_report",
]
