"""Files: EM volumes and image sets in, masks out, nothing half-written."""

from .images import read_image, read_image_set, write_tiff
from .volumes import Volume, read_volume

__all__ = ["Volume", "read_image", "read_image_set", "read_volume", "write_tiff"]
