"""Options of an adaptation: :class:`AdaptConfig`, validated when made."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputDataError, require, require_finite

MODES = ("consistent", "standard", "ema")
#: Label-free cures (see napari_bnadapt.adapt): input level, statistics level, parameters.
CURES = (
    "adabn", "histogram", "histogram+adabn", "fda", "fda+adabn", "alpha-entropy", "tent",
    "self-training", "auto",
)  # fmt: skip
#: Cures that learn from painted strokes (``adapt(..., strokes=...)``): fine-tuning from
#: the source model, or after AdaBN (docs/strokes.md).
STROKE_CURES = ("strokes", "adabn+strokes")
#: Each stroke cure's step size and anchor weight (``stroke_learning_rate``,
#: ``stroke_consistency`` left None): after AdaBN the anchor is a label-free model worth
#: holding to (weight 3, small steps); without it the anchor is the source model's own
#: predictions on the new data, often what the strokes correct, so it must give way
#: (measured, 3 seeds both directions: docs/strokes.md, "Fine-tuning without AdaBN").
STROKE_RECIPES = {"adabn+strokes": (3e-4, 3.0), "strokes": (1e-3, 0.3)}
#: Which parameters the stroke cure trains.
STROKE_PARAMETERS = ("all", "decoder", "affine")
POLARITY = ("auto", "keep", "invert")
STATISTICS = ("both", "mean", "variance")
#: Default number of patches: see docs/adaptation.md (statistics move < 1% of σ beyond it).
DEFAULT_PATCHES = 64


@dataclass(frozen=True)
class AdaptConfig:
    """Options of :func:`adapt`; the defaults are right for most users.

    Parameters
    ----------
    mode
        ``standard`` (default; see docs/adaptation.md), ``consistent`` or ``ema``.
    alpha
        Blend with the source statistics: 0 = source, 1 = fully adapted.
    prior_strength
        Schneider et al.'s N: when set, ``alpha = n / (N + n)`` with n the patches used.
    layers
        ``all``, ``encoder``, ``decoder``, ``bottleneck``, ``first:K``, or
        comma-separated layer names / name prefixes.
    statistics
        ``both``, ``mean`` (keep source variances) or ``variance`` (keep source means).
    patches, patch_size, batch_size
        How much target data to sample, in what pieces, how many per forward pass.
    momentum
        For ``ema`` mode.
    max_passes, tolerance
        ``consistent`` mode stops when the statistics move less than ``tolerance`` (in
        units of the source standard deviation) or after ``max_passes`` passes.
    cure
        What to change (see :data:`CURES` and docs/real_em.md): ``adabn`` re-estimates the
        statistics; ``histogram``/``fda`` change the input towards the source fingerprint
        (alone, or followed by AdaBN); ``alpha-entropy`` blends source and target
        statistics with the α of least prediction entropy; ``tent`` then tunes the
        BatchNorm affine terms to confident predictions; ``self-training`` fine-tunes on
        confident pseudo-labels (minutes); ``auto`` chooses without labels. With painted
        strokes (:data:`STROKE_CURES`): ``strokes`` fine-tunes the source model on them,
        ``adabn+strokes`` does so after AdaBN (docs/strokes.md).
    polarity
        ``auto``: invert the input when its contrast reads as inverted against the
        fingerprint; ``keep``; ``invert``.
    fda_beta
        Frequencies (cycles per pixel) below which the amplitude is the source's.
    tent_steps, tent_learning_rate
        Entropy-minimisation steps on the BatchNorm affine terms, and their step size.
    self_training_steps, self_training_learning_rate
        Fine-tuning steps on pseudo-labels (at most: a label-free criterion stops earlier).
    stroke_steps, stroke_learning_rate
        Fine-tuning steps on the strokes (at most: the held-out strokes stop it earlier),
        and their step size (None: the cure's, :data:`STROKE_RECIPES`; set when made, so
        the record holds the number, and ``dataclasses.replace`` keeps it).
    stroke_parameters
        What the strokes train: ``all`` parameters, the ``decoder`` or the BatchNorm
        ``affine`` terms.
    stroke_consistency
        Weight of the pull towards the label-free model's predictions on unlabelled pixels
        (None: the cure's, as for the step size).
    """

    mode: str = "standard"
    alpha: float = 1.0
    prior_strength: float | None = None
    layers: str = "all"
    statistics: str = "both"
    patches: int = DEFAULT_PATCHES
    patch_size: int | tuple[int, ...] | None = None
    batch_size: int = 8
    momentum: float = 0.1
    max_passes: int = 3
    tolerance: float = 1e-2
    seed: int = 0
    device: str = "auto"
    slice_axis: int | None = None
    cure: str = "adabn"
    polarity: str = "keep"
    fda_beta: float = 0.01
    tent_steps: int = 10
    tent_learning_rate: float = 1e-3
    self_training_steps: int = 200
    self_training_learning_rate: float = 1e-4
    stroke_steps: int = 200
    stroke_learning_rate: float | None = None
    stroke_parameters: str = "all"
    stroke_consistency: float | None = None

    def __post_init__(self) -> None:
        recipe = STROKE_RECIPES.get(self.cure, STROKE_RECIPES["adabn+strokes"])
        for name, value in zip(("stroke_learning_rate", "stroke_consistency"), recipe):
            if getattr(self, name) is None:  # frozen: set once, here
                object.__setattr__(self, name, value)
        require_finite(self)
        cures = (*CURES, *STROKE_CURES)
        require(self.cure in cures, f"unknown cure {self.cure!r}: use one of {', '.join(cures)}")
        require(
            self.stroke_parameters in STROKE_PARAMETERS,
            f"stroke parameters must be one of {', '.join(STROKE_PARAMETERS)}, "
            f"got {self.stroke_parameters!r}",
        )
        require(
            self.stroke_steps >= 1,
            f"the stroke steps (--stroke-steps) must be at least 1, got {self.stroke_steps}",
        )
        require(
            self.stroke_learning_rate > 0,
            f"the stroke learning rate must be positive, got {self.stroke_learning_rate}",
        )
        require(self.stroke_consistency >= 0, "the stroke consistency weight must be ≥ 0")
        require(
            0 <= self.seed < 2**32,
            f"the seed must be a whole number from 0 to 2^32 - 1, got {self.seed}",
        )
        require(
            self.polarity in POLARITY,
            f"polarity must be one of {', '.join(POLARITY)}, got {self.polarity!r}",
        )
        require(
            0 < self.fda_beta < 0.5, f"fda_beta must be in (0, 0.5) cycles/px, got {self.fda_beta}"
        )
        require(
            self.tent_steps >= 0 and self.self_training_steps >= 0,
            "tent and self-training steps must be ≥ 0",
        )
        require(
            self.tent_learning_rate > 0 and self.self_training_learning_rate > 0,
            "learning rates must be positive",
        )
        if self.mode not in MODES:
            raise InputDataError(f"unknown mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputDataError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.prior_strength is not None and self.prior_strength < 0:
            raise InputDataError(f"prior strength must be ≥ 0, got {self.prior_strength}")
        if self.statistics not in STATISTICS:
            raise InputDataError(f"statistics must be one of {STATISTICS}, got {self.statistics!r}")
        if self.patches < 1 or self.batch_size < 1:
            raise InputDataError("patches and batch size must be at least 1")
        if not 0.0 < self.momentum <= 1.0:
            raise InputDataError(f"momentum must be in (0, 1], got {self.momentum}")
