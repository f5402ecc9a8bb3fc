"""Models out to other tools: bioimage.io packages and TorchScript files."""

from ..lazy_exports import lazy_exports

# Imported on first use: importing the package (or its configuration) stays light.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EXPORT_FORMATS": ".format_names",
        "ExportConfig": ".bioimageio",
        "ExportResult": ".bioimageio",
        "export_bioimageio": ".bioimageio",
        "export_model": ".formats",
        "test_package": ".bioimageio",
    },
)
