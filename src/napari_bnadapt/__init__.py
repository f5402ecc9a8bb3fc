"""napari-bnadapt: label-free BatchNorm adaptation of pretrained U-Nets for EM segmentation.

The core (model, inference, training, adaptation, diagnostics, I/O, CLI) imports no Qt,
napari or magicgui; the napari widgets live in :mod:`napari_bnadapt._widgets`.
"""

__version__ = "0.1.0"
