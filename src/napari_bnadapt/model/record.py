"""The record of an adaptation: what was done to the BatchNorm statistics a model holds.

It travels inside every adapted model file (as JSON, see :mod:`.checkpoint`) and is what the
CLI, the widgets and the report show. It lives with the model, not with the adaptation
engine, because a loaded model carries it whatever produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ConvergenceStep:
    """How far the pooled statistics still moved when batch ``batch`` was added (source σ)."""

    batch: int
    change: float


@dataclass(frozen=True)
class AdaptationRecord:
    """What an adaptation did, for the user and for reproduction.

    Parameters
    ----------
    target
        Name of the target data (file or layer name).
    target_shape
        Spatial shape of every target item.
    mode, alpha, statistics
        The estimator, the blend with the source statistics actually used, and which
        moments were replaced (see :class:`napari_bnadapt.adapt.AdaptConfig`).
    layers
        Names of the BatchNorm layers whose statistics changed.
    patches, patch_size
        How much of the target was seen, in what pieces.
    passes, fixed_point_changes
        Forward passes made, and (``consistent`` mode) how much each extra pass moved the
        statistics.
    convergence
        How much the statistics still moved as batches were added: small last values mean
        more patches would not change the result.
    config
        The options as plain values (``AdaptConfig`` fields), to repeat the run.
    device, seconds, created, software
        Where, how long, when and with what it ran.
    cure, input_steps, details
        The cure applied, the input steps it added (described), and what it chose or
        measured (e.g. α, steps taken, a fallback and why; for ``auto``, every candidate's
        label-free scores).
    voxel_size, zoom
        The target's voxel size (nm) and the resampling to the model's scale, if any.
    """

    target: str = "target"
    target_shape: tuple[tuple[int, ...], ...] = ()
    mode: str = "standard"
    alpha: float = 1.0
    layers: tuple[str, ...] = ()
    statistics: str = "both"
    patches: int = 0
    patch_size: tuple[int, ...] = ()
    passes: int = 1
    fixed_point_changes: tuple[float, ...] = ()
    convergence: tuple[ConvergenceStep, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    seconds: float = 0.0
    created: str = ""
    software: str = ""
    cure: str = "adabn"
    input_steps: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    voxel_size: tuple[float, ...] | None = None
    zoom: tuple[float, ...] | None = None

    @property
    def last_change(self) -> float | None:
        """Movement of the statistics with the last batch (σ), None for a single batch."""
        return self.convergence[-1].change if self.convergence else None

    @property
    def undone(self) -> str | None:
        """The part of the cure that trained weights (``strokes``, ``tent``,
        ``self-training``) when its guard undid it, else None."""
        strokes = self.details.get("strokes")
        if isinstance(strokes, dict) and not strokes.get("guard", {}).get("kept", True):
            return "strokes"
        guard = self.details.get("guard")
        if isinstance(guard, dict) and not guard.get("kept", True):
            return self.cure
        return None

    @property
    def in_force(self) -> str:
        """The cure whose changes the model carries: the cure, or, when its guard undid the
        trained weights, what is left of it (``adabn`` when the statistics were
        re-estimated, ``source`` when nothing else changed)."""
        if self.undone is None:
            return self.cure
        if self.layers:
            return "adabn"
        return "source" if not self.input_steps else self.cure

    def state(self) -> str:
        """What the model carries, for a status line: "adabn+strokes on stack.tif", or
        "adabn on stack.tif (strokes undone)"."""
        if self.in_force == "source":  # nothing left of the cure: say so, not "source on"
            return f"source ({self.undone} on {self.target} undone)"
        undone = f" ({self.undone} undone)" if self.undone else ""
        return f"{self.in_force} on {self.target}{undone}"

    def statistics_phrase(self) -> str:
        """The state for "Statistics: …": "adapted (adabn on X (strokes undone))", or,
        when nothing of the cure is left, "source (strokes on X undone)"."""
        return self.state() if self.in_force == "source" else f"adapted ({self.state()})"

    def summary(self) -> str:
        """One line: what was adapted, on how much data, how fast, where."""
        steps = f" after {', '.join(self.input_steps)}" if self.input_steps else ""
        scale = (
            f", resampled ×{'/'.join(f'{z:.2f}' for z in self.zoom if z != 1.0)}"
            if self.zoom
            else ""
        )
        statistics = (
            f"adapted {len(self.layers)} BatchNorm layers ({self.mode}, alpha {self.alpha:.2f}) "
            f"on {self.patches} patches"
            if self.layers or "strokes" not in self.details
            else "BatchNorm statistics kept"
        )
        return (
            f"{self.cure}{steps}: {statistics}{self._strokes_part()}{scale} "
            f"in {self.seconds:.2f} s on {self.device}"
        )

    def _strokes_part(self) -> str:
        strokes = self.details.get("strokes")
        if not isinstance(strokes, dict):
            return ""
        if self.undone == "strokes":
            return ", learning from the strokes undone (the network is the label-free one)"
        return f", fine-tuned on {strokes.get('strokes', '?')} strokes"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, with the keys model files have always used."""
        out = asdict(self)
        out["target_shape"] = [list(s) for s in self.target_shape]
        out["layers"] = list(self.layers)
        out["patch_size"] = list(self.patch_size)
        out["fixed_point_changes"] = list(self.fixed_point_changes)
        out["convergence"] = [asdict(step) for step in self.convergence]
        out["input_steps"] = list(self.input_steps)
        for key in ("voxel_size", "zoom"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptationRecord:
        """Read a record written by any version: missing keys take their defaults and keys
        this version does not know are ignored (a newer file still loads)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "target_shape" in values:
            values["target_shape"] = tuple(tuple(int(n) for n in s) for s in values["target_shape"])
        for key in ("layers", "fixed_point_changes", "input_steps"):
            if key in values:
                values[key] = tuple(values[key])
        for key in ("voxel_size", "zoom"):
            if values.get(key) is not None:
                values[key] = tuple(float(v) for v in values[key])
        if "patch_size" in values:
            values["patch_size"] = tuple(int(n) for n in values["patch_size"])
        if "convergence" in values:
            values["convergence"] = tuple(
                ConvergenceStep(int(step["batch"]), float(step["change"]))
                for step in values["convergence"]
            )
        return cls(**values)
