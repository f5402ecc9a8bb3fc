"""A network bundled with everything needed to use and adapt it: :class:`LoadedModel`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..arrays.normalization import NormalizationSpec, fit_normalizer
from ..arrays.resampling import format_sizes, zoom_factors
from .bn_layers import BNStats, read_bn_stats, restore_parameters, write_bn_stats
from .fingerprint import Fingerprint
from .input_steps import InputStep, compose
from .painted_strokes import PaintedStrokes
from .record import AdaptationRecord
from .unet import UNet, UNetConfig

#: Raw region → network input (normalisation, then input steps).
Preprocessor = Callable[[np.ndarray], np.ndarray]


@dataclass
class LoadedModel:
    """A segmentation network with everything needed to use and adapt it.

    ``source_stats`` are the BatchNorm statistics the network was trained with; they
    never change, so the model can always be reset to them. ``adaptation`` is the record
    of the adaptation whose statistics the module currently holds (None: source).
    ``fingerprint`` describes the training data (None for models trained elsewhere until
    one is computed). A cure may add ``input_steps`` (applied to every input after the
    normalisation) or change parameters, whose source values ``source_weights`` keeps; a
    stroke cure leaves the ``strokes`` it learnt from. Build one with :meth:`build` (or :func:`wrap_unet` for a freshly trained U-Net).
    """

    module: nn.Module
    dims: int
    in_channels: int
    out_channels: int
    normalization: NormalizationSpec
    source_stats: dict[str, BNStats]
    classes: tuple[str, ...] = ("foreground",)
    metadata: dict[str, Any] = field(default_factory=dict)
    config: UNetConfig | None = None
    format: str = "native"
    path: str | None = None
    adaptation: AdaptationRecord | None = None
    fingerprint: Fingerprint | None = None
    input_steps: tuple[InputStep, ...] = ()
    source_weights: dict[str, torch.Tensor] | None = None
    strokes: PaintedStrokes | None = None

    @classmethod
    def build(
        cls,
        module: nn.Module,
        normalization: NormalizationSpec,
        *,
        config: UNetConfig | None = None,
        dims: int | None = None,
        in_channels: int | None = None,
        out_channels: int = 1,
        source_stats: dict[str, BNStats] | None = None,
        classes: tuple[str, ...] | list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        format: str = "native",
        adaptation: AdaptationRecord | None = None,
        fingerprint: Fingerprint | None = None,
        input_steps: tuple[InputStep, ...] = (),
        source_weights: dict[str, torch.Tensor] | None = None,
        strokes: PaintedStrokes | None = None,
    ) -> LoadedModel:
        """The one place a model is assembled, whatever file or code it came from.

        A built-in U-Net's ``config`` gives dims and channels; without source statistics
        the module's current ones are the source; classes default to the channel count's.
        """
        if config is not None:
            dims, in_channels, out_channels = config.dims, config.in_channels, config.out_channels
        if dims is None or in_channels is None:
            raise ValueError("give the U-Net config, or dims and in_channels")
        return cls(
            module=module,
            dims=int(dims),
            in_channels=int(in_channels),
            out_channels=int(out_channels),
            normalization=normalization,
            source_stats=source_stats if source_stats else read_bn_stats(module),
            classes=tuple(classes) if classes else default_classes(int(out_channels)),
            metadata=dict(metadata or {}),
            config=config,
            format=format,
            adaptation=adaptation,
            fingerprint=fingerprint,
            input_steps=tuple(input_steps),
            source_weights=source_weights or None,
            strokes=strokes,
        )

    @property
    def divisor(self) -> int:
        """Spatial sizes that the network needs (inputs are padded to a multiple)."""
        if self.config is not None:
            return self.config.divisor
        return int(self.metadata.get("divisor", 16))

    @property
    def feature_width(self) -> int:
        """Feature channels at full resolution: the built-in U-Net's base width; 64 (a
        generous U-Net's) for other networks. What memory estimates of a tile use."""
        return self.config.base_channels if self.config is not None else 64

    def threshold_for(self, requested: float | None) -> float:
        """The foreground threshold to use: ``requested``, else the model's own (a
        package's ``binarize`` step), else 0.5."""
        if requested is not None:
            return float(requested)
        own = (self.metadata.get("bioimageio") or {}).get("threshold")
        return float(own) if own is not None else 0.5

    @property
    def min_size(self) -> int:
        """The smallest spatial input a network declares (bioimage.io packages; else 0)."""
        return int(self.metadata.get("min_size") or 0)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or (Path(self.path).stem if self.path else "model"))

    @property
    def state(self) -> str:
        """``'source'`` or ``'adapted'``: which BatchNorm statistics the module holds."""
        return "source" if self.adaptation is None else "adapted"

    @property
    def voxel_size(self) -> tuple[float, ...] | None:
        """Training voxel size in nm (``(y, x)`` or ``(z, y, x)``), None when unknown."""
        if self.fingerprint is not None and self.fingerprint.voxel_size:
            return self.fingerprint.voxel_size
        size = self.metadata.get("voxel_size")
        return tuple(float(v) for v in size) if size else None

    def zoom_for(
        self,
        shape: tuple[int, ...],
        voxel_size: tuple[float, ...] | None,
        slice_axis: int | None = None,
    ) -> tuple[float, ...] | None:
        """Zoom per axis that brings an input of ``shape`` and ``voxel_size`` (nm) to this
        model's voxel size; None when no resampling is needed or either size is unknown."""
        axis = self.training_axis if slice_axis is None else slice_axis
        return zoom_factors(voxel_size, self.voxel_size, shape, self.dims, axis)

    def scale_note(
        self,
        name: str,
        shape: tuple[int, ...],
        voxel_size: tuple[float, ...] | None,
        slice_axis: int | None = None,
    ) -> str | None:
        """What happens to the scale of input ``name`` (one sentence), or None.

        On real data the scale matters more than any cure, so it is said: the input is
        resampled to this model's voxel size, or, having none, runs at its own pixel size
        although the model was trained at a known one.
        """
        trained = self.voxel_size
        if trained is None:
            return None
        if voxel_size is None:
            return (
                f"{name} has no voxel size: it runs at its own pixel size, while the model "
                f"was trained at {format_sizes(trained)} nm; give its voxel size in nm to "
                "resample it to the model's scale"
            )
        if self.zoom_for(shape, voxel_size, slice_axis) is None:
            return None
        # A 2D model resamples each slice in plane; the slices themselves stay as they are.
        shown = slice(-2, None) if self.dims == 2 else slice(None)
        plane = " in plane" if self.dims == 2 else ""
        return (
            f"{name} ({format_sizes(voxel_size[shown])} nm{plane}) is resampled to the "
            f"model's {format_sizes(trained[shown])} nm, and the result back"
        )

    def preprocessor(self, data: Any) -> Preprocessor:
        """Raw regions of ``data`` → network input: the normalisation fitted once over all
        of ``data``, then the cure's input steps."""
        return compose(fit_normalizer(self.normalization, data), self.input_steps)

    @property
    def training_axis(self) -> int:
        """Axis a 2D model was trained across when given volumes (its slicing plane)."""
        return int(self.metadata.get("training_axis", 0))

    def restore_source(self) -> None:
        """Back to the source, in place and bit for bit: the source statistics and any
        parameters a cure changed are restored, input steps and the record are dropped."""
        write_bn_stats(self.module, self.source_stats)
        if self.source_weights:
            restore_parameters(self.module, self.source_weights)
        self.source_weights = None
        self.input_steps = ()
        self.adaptation = None
        self.strokes = None  # they taught the cure just undone

    def copy(self) -> LoadedModel:
        """A deep copy: adapting the copy never touches this model."""
        return replace(
            self,
            module=copy.deepcopy(self.module),
            source_stats={
                k: {n: t.clone() for n, t in v.items()} for k, v in self.source_stats.items()
            },
            metadata=copy.deepcopy(self.metadata),
            source_weights=None
            if self.source_weights is None
            else {k: v.clone() for k, v in self.source_weights.items()},
        )


def wrap_unet(
    module: UNet,
    normalization: NormalizationSpec,
    metadata: dict[str, Any] | None = None,
    classes: tuple[str, ...] | None = None,
) -> LoadedModel:
    """Bundle a freshly built or trained :class:`UNet`; its current statistics are the source."""
    return LoadedModel.build(
        module, normalization, config=module.config, metadata=metadata, classes=classes
    )


def default_classes(out_channels: int) -> tuple[str, ...]:
    """Class names when a file names none: one foreground, or background + numbered classes."""
    if out_channels == 1:
        return ("foreground",)
    return ("background", *(f"class {i}" for i in range(1, out_channels)))
