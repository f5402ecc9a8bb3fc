"""A package's cover: the sample with the masks of the source and the exported statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..diagnostics.figures import plot_masks
from ..inference import PredictConfig, predict
from ..model.loaded import LoadedModel


def write_cover(model: LoadedModel, crop: np.ndarray, path: Path) -> Path:
    """Draw ``crop`` (``(1, C, *spatial)``) with the source model's mask and this model's
    (the adapted one's) side by side, 2:1 as bioimage.io recommends, into ``path``."""
    image = crop[0] if model.in_channels > 1 else crop[0, 0]
    config = PredictConfig(tile_shape=tuple(crop.shape[2:]), overlap=0.0, device="cpu")
    after = predict(model, image, config).segmentation
    before = after
    if model.adaptation is not None:
        source = model.copy()
        source.restore_source()
        before = predict(source, image, config).segmentation
    plane = crop[0, 0]
    if model.dims == 3:  # the middle slice of a volume
        middle = plane.shape[0] // 2
        plane, before, after = plane[middle], before[middle], after[middle]
    figure = Figure(figsize=(8, 4), constrained_layout=True)
    axes = figure.subplots(1, 2)
    plot_masks(axes, plane, before > 0, after > 0)
    after_title = "adapted statistics" if model.adaptation is not None else "source statistics"
    for ax, title, mask in zip(axes, ("source statistics", after_title), (before, after)):
        ax.set_title(f"{title}: {np.mean(mask > 0):.0%} foreground", fontsize=9)
    figure.savefig(path, dpi=80, format="png")
    return path
