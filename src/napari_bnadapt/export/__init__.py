"""Models out to other tools: bioimage.io packages and TorchScript files."""

from .bioimageio import ExportConfig, ExportResult, export_bioimageio, test_package
from .formats import EXPORT_FORMATS, export_model

__all__ = [
    "EXPORT_FORMATS",
    "ExportConfig",
    "ExportResult",
    "export_bioimageio",
    "export_model",
    "test_package",
]
