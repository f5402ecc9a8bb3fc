"""The network and its files: the built-in U-Net, BatchNorm layer facts, checkpoints, a summary."""

from .checkpoint import LoadedModel, load_model, save_model
from .description import ModelDescription, describe
from .unet import UNet, UNetConfig

__all__ = [
    "LoadedModel",
    "ModelDescription",
    "UNet",
    "UNetConfig",
    "describe",
    "load_model",
    "save_model",
]
