"""Long jobs as generators of progress steps, so GUI workers and the CLI share them.

A job is written as a generator that yields a :class:`Progress` after every batch and
returns its result. napari's ``thread_worker`` runs such a generator directly (each
``yield`` is where progress is shown and ``quit()`` takes effect); :func:`run_steps` drives
it synchronously for the CLI and the Python API, with an optional progress callback and a
cancel flag checked at every step.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from .errors import CancelledError

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One step of a long job: ``done`` of ``total`` units, and what is being done."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


Steps = Generator[Progress, None, T]
ProgressCallback = Callable[[Progress], None]


def run_steps(
    steps: Steps[T],
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> T:
    """Run a job to completion; raise :class:`CancelledError` when ``should_stop()``.

    Cancelling closes the generator, so its ``finally`` clauses run and it can leave
    everything as it was.
    """
    while True:
        try:
            step = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(step)
        if should_stop is not None and should_stop():
            steps.close()
            raise CancelledError("cancelled by the user; nothing was changed")
