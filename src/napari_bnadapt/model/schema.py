"""One schema for everything a model file says about itself, checked before it is used.

The native checkpoint's ``metadata_json``, a TorchScript file's ``bnadapt.json`` and a
bioimage.io package's ``config.napari_bnadapt`` are the same document
(:func:`~.documents.metadata_document`), and the built-in U-Net's architecture is a small
dict beside it. Hand-edited or hostile values (a string where a number belongs, NaN, a
negative or absurd voxel size, a billion channels) used to surface deep inside as a
traceback or a misleading message about the *input*; here they end as one line naming the
field. Values are checked by type, range and finiteness with pydantic; fields this version
does not know are kept (newer files stay readable).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ModelFileError
from ..units import VOXEL_NM_MAX, VOXEL_NM_MIN

#: Bounds of the built-in U-Net: beyond them a file is damaged, not ambitious.
MAX_DEPTH, MAX_BASE_CHANNELS, MAX_IN_CHANNELS, MAX_CLASSES = 10, 1024, 64, 1024
#: A network's divisor, smallest input and halo (pixels); inputs are padded to them.
MAX_DIVISOR, MAX_MIN_SIZE, MAX_HALO = 1024, 8192, 2048

Finite = Annotated[float, Field(allow_inf_nan=False)]
Edge = Annotated[float, Field(ge=VOXEL_NM_MIN, le=VOXEL_NM_MAX, allow_inf_nan=False)]
VoxelSize = Annotated[list[Edge], Field(min_length=1, max_length=3)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class _Open(BaseModel):
    """Unknown fields are kept: a newer file may carry more."""

    model_config = ConfigDict(extra="allow")


class UNetSchema(BaseModel):
    """The built-in U-Net's architecture (:class:`~.unet.UNetConfig`)."""

    model_config = ConfigDict(extra="forbid")
    dims: Literal[2, 3] = 2
    in_channels: int = Field(1, ge=1, le=MAX_IN_CHANNELS)
    out_channels: int = Field(1, ge=1, le=MAX_CLASSES)
    depth: int = Field(3, ge=1, le=MAX_DEPTH)
    base_channels: int = Field(16, ge=1, le=MAX_BASE_CHANNELS)


class NormalizationSchema(BaseModel):
    """:class:`~..arrays.normalization.NormalizationSpec`."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["fixed", "percentile", "zscore", "none"] = "fixed"
    mean: Finite = 0.0
    std: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    low_percentile: Percent = 1.0
    high_percentile: Percent = 99.8

    @field_validator("high_percentile")
    @classmethod
    def _above_low(cls, high: float, info: Any) -> float:
        low = info.data.get("low_percentile")
        if low is not None and high <= low:
            raise ValueError(f"must be above low_percentile ({low:g})")
        return high


class BioimageioFacts(_Open):
    threshold: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


class ModelMetadata(_Open):
    """The ``metadata`` part: name, provenance, training voxel size and input geometry."""

    name: Annotated[str, Field(max_length=1000)] | None = None
    voxel_size: VoxelSize | None = None
    divisor: int = Field(16, ge=1, le=MAX_DIVISOR)
    training_axis: int = Field(0, ge=0, le=2)
    min_size: int = Field(0, ge=0, le=MAX_MIN_SIZE)
    halo: int = Field(0, ge=0, le=MAX_HALO)
    bioimageio: BioimageioFacts | None = None


class MetadataDocument(_Open):
    """What every model file carries beside its network."""

    dims: Literal[2, 3] | None = None
    in_channels: int | None = Field(None, ge=1, le=MAX_IN_CHANNELS)
    out_channels: int | None = Field(None, ge=1, le=MAX_CLASSES)
    normalization: NormalizationSchema | None = None
    classes: Annotated[list[str], Field(max_length=MAX_CLASSES)] | None = None
    metadata: ModelMetadata | None = None
    adaptation: dict[str, Any] | None = None
    input_steps: list[dict[str, Any]] | None = None
    source_bn_stats: dict[str, dict[str, list[Finite]]] | None = None

    @field_validator("classes")
    @classmethod
    def _one_name_per_channel(cls, classes: list[str] | None, info: Any) -> list[str] | None:
        channels = info.data.get("out_channels")
        if classes is not None and channels is not None and len(classes) != channels:
            raise ValueError(f"{len(classes)} names for {channels} output channels")
        return classes


def check_document(document: Any, name: str) -> dict[str, Any]:
    """``document`` (a model file's metadata) with its values in their types (``"16"``
    becomes 16), if every field is sane; else one line naming the field."""
    return _validate(MetadataDocument, document, name, "metadata").model_dump(exclude_unset=True)


def check_unet(config: Any, name: str) -> dict[str, Any]:
    """The built-in U-Net's architecture dict, checked (see :class:`UNetSchema`)."""
    return _validate(UNetSchema, config, name, "architecture").model_dump(exclude_unset=True)


def check_geometry(divisor: int, min_size: int, halo: int, name: str) -> None:
    """A package's input geometry (its axes' step, smallest size and halo), checked before
    the network runs once on its smallest input."""
    facts = {"divisor": divisor, "min_size": min_size, "halo": halo}
    _validate(ModelMetadata, facts, name, "input axes")


def check_voxel_size(values: Any, name: str, where: str) -> None:
    """A voxel size found elsewhere in a file (the fingerprint's)."""
    _validate(ModelMetadata, {"voxel_size": values}, name, where)


def _validate(schema: type[BaseModel], value: Any, name: str, part: str) -> BaseModel:
    if not isinstance(value, dict):
        raise ModelFileError(
            f"{name}: its {part} is a {type(value).__name__}, not a table of fields: the file "
            "is damaged; re-save the model"
        )
    try:
        return schema.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or part
        shown = repr(error.get("input"))
        shown = shown if len(shown) <= 40 else f"{shown[:37]}..."
        raise ModelFileError(
            f"{name}: its {part} field {field} = {shown} is invalid ({error['msg'].lower()}): "
            "the file is damaged or was edited by hand; fix the field or re-save the model"
        ) from None
