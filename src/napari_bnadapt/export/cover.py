"""A package's cover: the sample with the masks of the source and the exported statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..diagnostics.figures import plot_masks
from ..inference import predict, segment_probabilities
from ..model.loaded import LoadedModel
from .test_tensors import TestTensors, image_of, one_tile


def write_cover(model: LoadedModel, tensors: TestTensors, path: Path) -> Path:
    """Draw the test input with the source model's mask and this model's (the adapted
    one's, from the test output) side by side, 2:1 as bioimage.io recommends."""
    crop = tensors.input
    after = segment_probabilities(tensors.output[0], model.threshold_for(None)).segmentation
    before = after
    if model.adaptation is not None:
        source = model.copy()
        source.restore_source()
        before = predict(source, image_of(model, crop), one_tile(crop)).segmentation
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
