"""The public calls: adapt (one cure, or ``auto``), and reset."""

from __future__ import annotations

from typing import Any

from ..adabn.config import STROKE_CURES, AdaptConfig
from ..cluster import ClusterConfig
from ..errors import InputDataError
from ..jobs import Steps, blocking
from ..model.loaded import LoadedModel
from .auto import auto_steps
from .engine import AdaptResult, cure_steps


def adapt_steps(
    model: LoadedModel,
    target: Any,
    config: AdaptConfig | None = None,
    *,
    roi: Any | None = None,
    target_name: str = "target",
    voxel_size: tuple[float, ...] | None = None,
    cluster: ClusterConfig | None = None,
    strokes: Any | None = None,
    strokes_name: str | None = None,
) -> Steps[AdaptResult]:
    """Adapt a copy of ``model`` to ``target`` with the configured cure; ``model`` is untouched.

    ``target`` is a 2D image, a 3D volume or stack, or a list of images (numpy or dask).
    ``roi`` (same shape as the target, nonzero = usable) restricts where patches are drawn.
    ``voxel_size`` (nm per spatial axis of the target) resamples the target to the model's
    training voxel size. ``cluster`` runs the statistics' forward passes on
    dask.distributed workers (local processes or a running scheduler); the statistics are
    the same as in one process. Yields a :class:`Progress` after every batch; returns an
    :class:`AdaptResult` whose model carries the cure (statistics, input steps, changed
    parameters) and its record; :func:`reset` undoes it bit for bit.

    ``strokes`` (the stroke cures, :data:`STROKE_CURES`) is a label array on the target's
    grid: 0 = not labelled; for a one-channel model 1 = background and 2 = foreground; for a
    multi-class model the class index + 1; any number of slices. It is resampled with the
    target (nearest neighbour); the loss is on the painted pixels only, a share of them held
    out to stop the training and to undo it unless it beats the label-free model there
    (docs/strokes.md). ``strokes_name`` (a file, a layer) is where they came from, kept in
    the record (``details["strokes"]["from"]``) so that a saved model names its strokes.
    """
    cfg = config or AdaptConfig()
    _check_strokes_fit_cure(cfg.cure, strokes)
    if cfg.cure == "auto":
        if cluster is not None and cluster.distributed:
            raise InputDataError(
                "cure auto compares several cures in this process: choose one cure to run "
                "its statistics on dask workers, or drop --workers/--scheduler"
            )
        return (yield from auto_steps(model, target, cfg, roi, target_name, voxel_size))
    return (
        yield from cure_steps(
            model,
            target,
            cfg,
            roi=roi,
            target_name=target_name,
            voxel_size=voxel_size,
            cluster=cluster,
            strokes=strokes,
            strokes_name=strokes_name,
        )
    )


adapt = blocking(adapt_steps, "adapt")


def _check_strokes_fit_cure(cure: str, strokes: Any | None) -> None:
    if cure in STROKE_CURES and strokes is None:
        raise InputDataError(
            f"cure {cure} learns from painted strokes: give them (a labels image on the "
            "target's grid, 1 = background, 2 = foreground; --strokes strokes.tif; a taught "
            "model's own: bnadapt strokes --model taught.pt --out strokes.tif)"
        )
    if cure not in STROKE_CURES and strokes is not None:
        raise InputDataError(
            f"strokes were given but cure {cure} is label-free: choose cure strokes or "
            "adabn+strokes to learn from them"
        )


def reset(model: LoadedModel) -> None:
    """Back to the source statistics (and parameters), in place and bit for bit; the input
    steps and the adaptation record are dropped."""
    model.restore_source()
