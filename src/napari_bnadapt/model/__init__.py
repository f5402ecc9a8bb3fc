"""The network and its files: the built-in U-Net, BatchNorm layer facts, checkpoints, a summary."""

from ..lazy_exports import lazy_exports

# Imported on first use: importing the package (or its configuration) stays light.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "LoadedModel": ".checkpoint",
        "ModelDescription": ".description",
        "UNet": ".unet",
        "UNetConfig": ".unet",
        "describe": ".description",
        "load_model": ".checkpoint",
        "save_model": ".checkpoint",
    },
)
