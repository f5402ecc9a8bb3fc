"""A plain summary of a model: what it expects, and what can be adapted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .bn_layers import NormLayer, adaptability_verdict, list_norm_layers
from .loaded import LoadedModel
from .unet import count_parameters

#: What a model file may say about where it comes from (metadata key, label shown).
ABOUT = (("description", "about"), ("attribution", "data"), ("license", "licence"))


@dataclass(frozen=True)
class ModelDescription:
    """What :func:`describe` reports."""

    name: str
    format: str
    dims: int
    in_channels: int
    out_channels: int
    classes: tuple[str, ...]
    parameters: int
    normalization: str
    norm_layers: tuple[NormLayer, ...]
    state: str
    verdict: str
    fingerprint: str | None = None
    voxel_size: tuple[float, ...] | None = None
    #: (label, text) of the file's description, training-data attribution and licence.
    about: tuple[tuple[str, str], ...] = ()
    #: The strokes the model was taught with, stored in it (None: none).
    strokes: str | None = None

    @property
    def adaptable_layers(self) -> int:
        return sum(layer.adaptable for layer in self.norm_layers)

    def to_text(self, layers: bool = True) -> str:
        """Multi-line text for the terminal and the model widget (``layers``: list them)."""
        kinds = Counter(layer.type_name for layer in self.norm_layers)
        lines = [
            f"model:          {self.name} ({self.format})",
            f"dims:           {self.dims}D",
            f"channels:       {self.in_channels} in → {self.out_channels} out "
            f"({', '.join(self.classes)})",
            f"parameters:     {self.parameters:,}",
            f"input:          {self.normalization}",
            f"statistics:     {self.state}",
            "normalisation:  "
            + (", ".join(f"{n}× {k}" for k, n in kinds.items()) if kinds else "none found"),
            f"adaptable BN:   {self.adaptable_layers}",
            f"verdict:        {self.verdict}",
            "voxel size:     "
            + (
                " × ".join(f"{v:g}" for v in self.voxel_size) + " nm (inputs are resampled to it)"
                if self.voxel_size
                else "unknown (inputs are used at their own pixel size)"
            ),
            self.fingerprint
            or "fingerprint:    none (add one with bnadapt fingerprint --model M --source imgs.tif)",
        ]
        lines += [f"{label + ':':<15} {text}" for label, text in self.about]
        if self.strokes:
            lines.append(f"strokes:        {self.strokes}")
        if not layers:
            return "\n".join(lines)
        lines.append("layers:")
        lines += [
            f"  {layer.name:<28} {layer.type_name:<16} {layer.channels:>4} ch"
            f"{'  adaptable' if layer.adaptable else ''}"
            for layer in self.norm_layers
        ]
        return "\n".join(lines)


def describe(model: LoadedModel) -> ModelDescription:
    """Summarise ``model``: dims, channels, parameter count and every normalisation layer."""
    layers = tuple(list_norm_layers(model.module))
    return ModelDescription(
        name=model.name,
        format=model.format,
        dims=model.dims,
        in_channels=model.in_channels,
        out_channels=model.out_channels,
        classes=model.classes,
        parameters=count_parameters(model.module),
        normalization=model.normalization.describe(),
        norm_layers=layers,
        state=_state_text(model),
        verdict=adaptability_verdict(layers),
        fingerprint=model.fingerprint.summary() if model.fingerprint else None,
        voxel_size=model.voxel_size,
        about=tuple(
            (label, model.metadata[key])
            for key, label in ABOUT
            if isinstance(model.metadata.get(key), str) and model.metadata[key]
        ),
        strokes=strokes_text(model),
    )


def strokes_text(model: LoadedModel) -> str | None:
    """ "20 strokes, 1,234 labelled pixels painted on X (…), stored in the model", or None."""
    if model.strokes is None:
        return None
    details = model.adaptation.details.get("strokes") if model.adaptation else None
    count = details.get("strokes") if isinstance(details, dict) else None
    counted = f"{count} strokes, " if isinstance(count, int) else ""
    return f"{counted}{model.strokes.describe()}, stored in the model"


def _state_text(model: LoadedModel) -> str:
    if model.adaptation is None:
        return "source (as trained)"
    record = model.adaptation
    steps = f", input: {'; '.join(record.input_steps)}" if record.input_steps else ""
    if record.in_force == "source":
        return f"source (as trained): {record.cure} on {record.target} undone by its guard"
    undone = f", {record.undone} undone by its guard" if record.undone else ""
    strokes = record.details.get("strokes")
    if isinstance(strokes, dict) and not record.undone:
        painted = f" from {strokes['from']}" if strokes.get("from") else ""
        taught = f"weights fine-tuned on {strokes.get('strokes', '?')} strokes{painted}"
        if not record.layers:  # --cure strokes: the statistics stayed the source's
            return f"source statistics, {taught} ({record.cure} on {record.target}{steps})"
        undone = f", {taught}"
    return f"adapted ({record.in_force}, {record.mode}) on {record.target}{steps}{undone}"
