"""The options of training (:class:`TrainConfig`), in a module that imports no network
library: the command line's help reads them before torch loads."""

from __future__ import annotations

from dataclasses import dataclass

from .arrays.normalization import MODES as NORMALIZATION_MODES
from .errors import require, require_finite

#: Training patch edge per dimensionality when none is given.
DEFAULT_PATCH = {2: 64, 3: 32}


@dataclass(frozen=True)
class TrainConfig:
    """Options of :func:`train`."""

    dims: int = 2
    steps: int = 400
    batch_size: int = 8
    patch_size: int | None = None
    learning_rate: float = 2e-3
    depth: int = 3
    base_channels: int = 16
    seed: int = 0
    device: str = "auto"
    validation_fraction: float = 0.1
    validate_every: int = 100
    normalization: str = "fixed"

    def __post_init__(self) -> None:
        require_finite(self)
        require(self.dims in (2, 3), f"dims must be 2 or 3, got {self.dims}")
        require(self.steps >= 1, f"steps must be at least 1, got {self.steps}")
        require(
            0 <= self.seed < 2**32,
            f"the seed must be a whole number from 0 to 2^32 - 1, got {self.seed}",
        )
        require(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}")
        require(
            1 <= self.depth <= 6,
            f"depth must be between 1 and 6 down-samplings, got {self.depth} (3 suits most EM)",
        )
        require(
            self.base_channels >= 1, f"base channels must be at least 1, got {self.base_channels}"
        )
        require(self.learning_rate > 0, f"learning rate must be positive, got {self.learning_rate}")
        require(
            0 <= self.validation_fraction < 1,
            f"validation fraction must be in [0, 1), got {self.validation_fraction}",
        )
        require(self.validate_every >= 1, "validate_every must be at least 1")
        require(
            self.normalization in NORMALIZATION_MODES,
            f"normalisation must be one of {', '.join(NORMALIZATION_MODES)}, got {self.normalization!r}",
        )
        divisor = 2**self.depth
        # Twice the divisor at least: the deepest BatchNorm then sees more than one value
        # per channel even in a batch of one patch.
        require(
            self.patch_size is None
            or (self.patch_size >= 2 * divisor and self.patch_size % divisor == 0),
            f"patch size {self.patch_size} does not fit a U-Net of depth {self.depth}: use a "
            f"multiple of {divisor} (each of the {self.depth} levels halves it) of at least "
            f"{2 * divisor}, e.g. {max(2 * divisor, DEFAULT_PATCH[self.dims])}",
        )

    @property
    def patch(self) -> int:
        """The training patch edge: the one asked for, else the default for the dims."""
        return self.patch_size or max(DEFAULT_PATCH[self.dims], 2**self.depth)
