"""Files: EM volumes and image sets in, masks out, nothing half-written."""

from ..lazy_exports import lazy_exports

# Imported on first use: importing the package (or its configuration) stays light.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "read_image": ".images",
        "read_image_set": ".images",
        "write_tiff": ".images",
        "Volume": ".volumes",
        "read_volume": ".volumes",
    },
)
