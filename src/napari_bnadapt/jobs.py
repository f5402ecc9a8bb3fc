"""The job/progress protocol: long jobs as generators of progress steps.

A job is written once, as a generator that yields a :class:`Progress` after every batch and
returns its result (typed :data:`Steps` ``[T]``). napari's ``thread_worker`` runs such a
generator directly (each ``yield`` is where progress is shown and ``quit()`` takes effect);
:func:`run_steps` drives it synchronously, with an optional progress callback and a cancel
flag checked at every step; :func:`blocking` turns a job into the plain call of the Python
API; :class:`Stages` chains sub-jobs on one progress scale.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import CancelledError

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One step of a long job: ``done`` of ``total`` units, what is being done, and a
    ``detail`` that changes every step (a rate, an ETA)."""

    done: int
    total: int
    message: str = ""
    detail: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def remaining_seconds(elapsed: float, done: int, total: int) -> float:
    """Time left at the pace so far: ``elapsed`` seconds for ``done`` of ``total`` units."""
    return elapsed / done * (total - done) if done else float("nan")


Steps = Generator[Progress, None, T]
ProgressCallback = Callable[[Progress], None]
StopFlag = Callable[[], bool]


def relay(steps: Steps[T], convert: Callable[[Progress], Progress]) -> Steps[T]:
    """Yield ``convert(step)`` for every step of ``steps``; return the job's result.

    The one place where a job's steps are taken by hand (``yield from`` cannot change them).
    """
    while True:
        try:
            step = next(steps)
        except StopIteration as finished:
            return finished.value
        yield convert(step)


def run_steps(
    steps: Steps[T],
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
) -> T:
    """Run a job to completion; raise :class:`CancelledError` when ``should_stop()``.

    Cancelling closes the generator, so its ``finally`` clauses run and it can leave
    everything as it was.
    """

    def watch(step: Progress) -> Progress:
        if progress is not None:
            progress(step)
        if should_stop is not None and should_stop():
            steps.close()
            raise CancelledError("cancelled by the user; nothing was changed")
        return step

    watched = relay(steps, watch)
    while True:
        try:
            next(watched)
        except StopIteration as finished:
            return finished.value


def blocking(job: Callable[..., Steps[T]], name: str) -> Callable[..., T]:
    """The plain call of a job: ``name(*args, progress=None, should_stop=None, **kwargs)``.

    It takes the job's arguments, documentation and signature, plus the keyword arguments
    ``progress`` (called with every :class:`Progress`) and ``should_stop`` (checked after
    every step; cancels with :class:`CancelledError`).
    """

    @functools.wraps(job)
    def call(
        *args: Any,
        progress: ProgressCallback | None = None,
        should_stop: StopFlag | None = None,
        **kwargs: Any,
    ) -> T:
        return run_steps(job(*args, **kwargs), progress, should_stop)

    signature = inspect.signature(job)
    extra = [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for key, kind in (
            ("progress", "ProgressCallback | None"),
            ("should_stop", "StopFlag | None"),
        )
    ]
    result = signature.return_annotation
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra],
        return_annotation=_result_of(result),
    )
    call.__name__ = call.__qualname__ = name
    call.__doc__ = (job.__doc__ or "").rstrip() + (
        f"\n\n    The plain call of :func:`{job.__name__}`: ``progress`` receives every step, "
        "``should_stop()`` cancels (nothing is changed)."
    )
    return call


class Stages:
    """Sub-jobs run one after another, their progress mapped onto one scale.

    Each stage gets a share of the scale (equal, or in proportion to ``weights``), so a
    progress bar moves forward once, from 0 to the end, however many steps each makes.
    """

    def __init__(
        self, count: int = 1, weights: Sequence[float] | None = None, resolution: int = 1000
    ) -> None:
        shares = list(weights) if weights is not None else [1.0] * max(1, int(count))
        total = float(sum(shares)) or 1.0
        edges = [0.0]
        for share in shares:
            edges.append(edges[-1] + share / total)
        self.total = resolution * len(shares)
        self.starts = [round(e * self.total) for e in edges]
        self.index = 0

    def run(self, steps: Steps[T]) -> Steps[T]:
        """``yield from stages.run(sub_job)``: the sub-job's result, its steps rescaled."""
        stage = min(self.index, len(self.starts) - 2)
        start, end = self.starts[stage], self.starts[stage + 1]

        def rescale(step: Progress) -> Progress:
            return Progress(start + int(step.fraction * (end - start)), self.total, step.message)

        result = yield from relay(steps, rescale)
        self.index += 1
        return result

    def skip(self) -> Progress:
        """Pass over a stage that turned out not to be needed; the step to show."""
        self.index += 1
        return Progress(self.starts[min(self.index, len(self.starts) - 1)], self.total, "")


def _result_of(annotation: Any) -> Any:
    """``T`` from a ``Steps[T]`` annotation (a string under postponed evaluation)."""
    if isinstance(annotation, str) and annotation.startswith("Steps[") and annotation.endswith("]"):
        return annotation[len("Steps[") : -1]
    return annotation
