"""Running core jobs (generators of Progress) in napari workers, one at a time per widget.

The job is built *inside* the worker thread, so slow validation never blocks the UI. While
a job runs, the widget's buttons are disabled and its Cancel button enabled; otherwise each
button is enabled exactly when its rule (a widget's table of "what this button needs")
holds, so nothing the user cannot use is enabled. Progress shows in napari's activity dock.
Expected problems (:class:`BnAdaptError`) come back as one clear message in the widget's
feedback line (and a notification); anything else too, naming the error, with its
traceback in the terminal and napari's log: a job that fails must never fail silently (a
save that did not happen would be believed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress
from qtpy.QtCore import QEvent, QObject

from ..errors import BnAdaptError
from ..forward import is_out_of_memory
from ..jobs import Progress, Steps, remaining_seconds
from .messages import Feedback, notify

LOG = logging.getLogger(__name__)

#: When a button may be pressed (besides "no job is running"): a call without arguments.
Rule = Callable[[], bool]


def always() -> bool:
    """The rule of a button that needs nothing but an idle widget."""
    return True


@dataclass(frozen=True)
class Failed:
    """What a job returns instead of raising an expected error."""

    message: str


@dataclass(frozen=True)
class Crashed:
    """What a job returns instead of raising an unexpected error."""

    error: Exception


class JobRunner:
    """One worker at a time for a widget, with progress, cancel, clean-up and button states.

    ``buttons`` maps each of the widget's buttons to its :data:`Rule` (a plain sequence:
    every button needs only an idle widget); ``feedback`` is the widget's message line.
    """

    def __init__(
        self,
        buttons: Mapping[Any, Rule] | Sequence[Any],
        cancel_button: Any | None = None,
        feedback: Feedback | None = None,
    ) -> None:
        rules = buttons if isinstance(buttons, Mapping) else dict.fromkeys(buttons, always)
        self.rules: dict[Any, Rule] = dict(rules)
        self.cancel_button = cancel_button
        self.feedback = feedback
        self.worker: Any = None
        self._bar: Any = None
        self._steps: Steps | None = None
        self._done: tuple[Callable[[Any], None], Any] | None = None
        self._started = 0.0
        self.last_error: str | None = None
        if cancel_button is not None:
            cancel_button.enabled = False
            cancel_button.changed.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def buttons(self) -> list[Any]:
        return list(self.rules)

    def update_buttons(self) -> None:
        """Enable each button whose rule holds, none while a job runs; Cancel only then."""
        try:
            for button, rule in self.rules.items():
                button.enabled = not self.running and _holds(rule)
            if self.cancel_button is not None:
                self.cancel_button.enabled = self.running
        except RuntimeError:
            pass  # the widget was closed while the job ran

    def say(self, level: str, text: str, next_step: str | None = None) -> None:
        """Tell the user, in the widget's feedback line (or a notification without one)."""
        if self.feedback is not None:
            self.feedback.say(level, text, next_step)
        else:
            notify(level, text if not next_step else f"{text} {next_step}")

    def start(
        self,
        make_steps: Callable[[], Steps],
        on_done: Callable[[Any], None],
        description: str,
    ) -> Any:
        """Run ``make_steps()`` in a worker; call ``on_done(result)`` on the main thread."""
        if self.running:
            self.say("warning", "A job is already running: wait for it, or press Cancel.")
            return None

        def job() -> Steps[Any]:
            try:
                self._steps = make_steps()
                return (yield from self._steps)
            except BnAdaptError as exc:
                return Failed(str(exc))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    # Handed back, not raised: superqt takes a RuntimeError (most of torch's)
                    # for a deleted worker and ends without ``finished``, which would leave
                    # the widget busy for good and the user told nothing.
                    return Crashed(exc)
                # Nothing was changed (every job works on copies): say what to do instead.
                return Failed(
                    f"{description}: out of memory; nothing was changed. Use fewer patches, "
                    "a smaller batch, or the CPU (Model widget ▸ device)"
                )

        worker = create_worker(job, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(lambda step: self._show(step, description))
        worker.returned.connect(lambda result: self._returned(result, on_done, description))
        worker.aborted.connect(
            lambda: self.say("info", f"{_capital(description)}: cancelled; nothing was changed.")
        )
        worker.errored.connect(lambda exc: self._errored(exc, description))
        worker.finished.connect(self._finished)
        self.worker = worker
        self.last_error = None
        self.update_buttons()
        worker.start()
        return worker

    def cancel(self, *_: Any) -> None:
        """Ask the worker to stop at its next step (the core leaves everything unchanged)."""
        if self.worker is not None:
            self.worker.quit()

    def stop(self) -> None:
        """Cancel and wait: used when the widget closes."""
        worker = self.worker
        if worker is not None:
            worker.quit()
            worker.await_workers(msecs=10_000)

    def _show(self, step: Progress, description: str) -> None:
        if self.worker is None:
            return  # a step delivered after the job finished
        if self._bar is None:
            self._bar = progress(total=step.total, desc=description)
            self._started = time.perf_counter()
        bar = self._bar
        bar.total = step.total
        if step.message:
            detail = step.detail or remaining(self._started, step)
            detail = f" ({detail})" if detail else ""
            bar.set_description(f"{description}: {step.message}{detail}")
        bar.update(step.done - bar.n)

    def _returned(self, result: Any, on_done: Callable[[Any], None], description: str) -> None:
        if isinstance(result, Crashed):
            self._errored(result.error, description)
            return
        if isinstance(result, Failed):
            self.last_error = result.message
            self.say("error", result.message)
            return
        # Called once the worker has finished, so on_done may start the next job.
        self._done = (on_done, result)

    def _errored(self, exc: BaseException, description: str) -> None:
        """An unexpected error: said in one line (what failed and why), the traceback logged
        for a bug report. Results are applied only on success, so nothing was changed."""
        LOG.error("%s failed", description, exc_info=(type(exc), exc, exc.__traceback__))
        self.last_error = f"{_capital(description)} failed: {type(exc).__name__}: {exc}"
        self.say(
            "error",
            f"{self.last_error}. Nothing was changed. This is a bug: please report it with the "
            "traceback from the terminal.",
        )

    def _finished(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._steps is not None:
            # A cancelled generator is closed here, so its clean-up (hooks) runs now.
            self._steps.close()
            self._steps = None
        self.worker = None
        self.update_buttons()
        done, self._done = self._done, None
        if done is not None:
            done[0](done[1])


def remaining(started: float, step: Progress) -> str:
    """``about 12 s left`` from the pace so far (nothing in the first seconds or steps)."""
    elapsed = time.perf_counter() - started
    if step.done < 2 or elapsed < 2 or not step.total or step.done >= step.total:
        return ""
    seconds = remaining_seconds(elapsed, step.done, step.total)
    return f"about {seconds:.0f} s left" if seconds < 120 else f"about {seconds / 60:.0f} min left"


def _holds(rule: Rule) -> bool:
    """A rule's answer; a rule that fails (a layer closed meanwhile) says no."""
    try:
        return bool(rule())
    except (LookupError, AttributeError, ValueError):
        return False


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def one_step(function: Callable[..., Any], *args: Any) -> Callable[[], Steps]:
    """A plain call (load, save, measure masks) as a job for :meth:`JobRunner.start`."""

    def steps() -> Steps:
        yield from ()
        return function(*args)

    return steps


def stop_on_close(native: Any, *runners: JobRunner) -> None:
    """Stop the runners' workers when the widget is closed or removed from its dock.

    napari's close button re-parents the widget to None rather than destroying it, so the
    parent change is watched as well as ``destroyed``.
    """

    class _Watcher(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:
            closing = event.type() == QEvent.Type.Close
            orphaned = event.type() == QEvent.Type.ParentChange and obj.parent() is None
            if closing or orphaned:
                for runner in runners:
                    runner.stop()
            return False

    watcher = _Watcher(native)
    native.installEventFilter(watcher)
    native.destroyed.connect(lambda *_: [runner.stop() for runner in runners])
