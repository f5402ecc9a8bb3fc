"""The options of a prediction (:class:`PredictConfig`) and their defaults, in a module that
imports no network library: the command line's help reads them before torch loads."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import require, require_finite

#: ``auto``: measured (see :mod:`.speed.calibration`); the others as named.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Tile edge asked for by default (fitted to the image): with the overlap the network
#: needs, the largest tiles that still run at full speed on the CPU here (docs/scale.md).
DEFAULT_TILE = {2: 512, 3: 128}

#: Default output block (canonical Z, Y, X). Tiles that straddle a block border are
#: computed by both blocks, so blocks are several tiles wide: with the default tiles and
#: overlap, 2048² planes recompute 14 % of a 2D model's tiles (1024²: 35 %), 256³ blocks
#: 49 % of a 3D model's 64³ tiles (512³: 15 %, at 8× the block memory). docs/scale.md.
DEFAULT_BLOCK = {2: (4, 2048, 2048), 3: (256, 256, 256)}

#: Voxels per forward pass when no batch size is given (CPU; four times that on a GPU).
BATCH_VOXELS = 2**20
AMP = (None, "bf16", "fp16")


@dataclass(frozen=True)
class PredictConfig:
    """Options of :func:`predict`.

    Parameters
    ----------
    tile_shape
        Spatial tile size asked for (one int for every axis, or one per axis); default
        512 (2D) or 128 (3D). With ``overlap`` None, tiles are fitted to the image: the
        fewest tiles of about this size, a little longer when that saves a tile.
    overlap
        Overlap between tiles as a fraction of the tile size (the former fixed grid: the
        last tile shifted back to the image's end); None: the overlap the network needs,
        half its measured receptive-field radius (:mod:`napari_bnadapt.speed.receptive`).
    batch_size
        Tiles per forward pass; None: about a million voxels (four on a GPU).
    device
        ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    amp
        ``None``, ``'bf16'`` or ``'fp16'``: the same as ``precision`` (kept for
        compatibility; float16 runs in float32 off CUDA).
    threshold
        Foreground probability threshold of binary models; None: the model's own (0.5,
        unless a bioimage.io package binarises at another value).
    slice_axis
        Spatial axis a 2D model cuts a volume across; default: the model's training axis.
    precision
        ``auto``: the fastest precision here (for the built-in U-Net on a CPU a rule
        measured for it, bfloat16 where the CPU computes it natively; otherwise measured
        once and cached), if its masks agree with float32's on sample tiles of the input,
        else float32; float32 for jobs under 4 Mvoxel. Or ``fp32``, ``bf16``, ``fp16``
        (float16 only on CUDA).
    channels_last
        Channels-last memory; None: the faster layout, as for ``precision`` (the default
        layout for jobs under 4 Mvoxel).
    fold_batchnorm
        Fold BatchNorm into the convolution before it (the built-in U-Net; probabilities
        change by about 1e-6).
    """

    tile_shape: int | tuple[int, ...] | None = None
    overlap: float | None = None
    batch_size: int | None = None
    device: str = "auto"
    amp: str | None = None
    threshold: float | None = None
    slice_axis: int | None = None
    precision: str = "auto"
    channels_last: bool | None = None
    fold_batchnorm: bool = True

    def __post_init__(self) -> None:
        require_finite(self)
        tiles = (self.tile_shape,) if isinstance(self.tile_shape, int) else self.tile_shape or ()
        require(
            all(int(t) >= 1 for t in tiles), f"tile sizes must be positive, got {self.tile_shape}"
        )
        require(
            self.overlap is None or 0 <= self.overlap < 1,
            f"overlap must be in [0, 1), got {self.overlap}",
        )
        require(
            self.batch_size is None or self.batch_size >= 1,
            f"batch size must be at least 1, got {self.batch_size}",
        )
        require(self.amp in AMP, f"amp must be one of {', '.join(map(str, AMP))}, got {self.amp!r}")
        require(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
        )
        require(
            not self.amp or self.precision in ("auto", self.amp),
            f"--amp {self.amp} and --precision {self.precision} disagree: give one of them",
        )
        require(
            self.threshold is None or 0 <= self.threshold <= 1,
            f"threshold must be in [0, 1], got {self.threshold}",
        )
        require(
            self.slice_axis in (None, 0, 1, 2, -1, -2, -3),
            f"slice axis must be 0, 1 or 2 (z, y, x), got {self.slice_axis}",
        )

    @property
    def requested_precision(self) -> str:
        """``precision``, or ``amp`` when that was given (its alias)."""
        return self.amp or self.precision
