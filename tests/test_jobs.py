"""The job/progress protocol: one way to run a job, sub-jobs on one progress scale."""

import inspect

import pytest

from napari_bnadapt.errors import CancelledError
from napari_bnadapt.jobs import Progress, Stages, Steps, blocking, run_steps


def count_to(n: int, *, label: str = "counting") -> Steps[int]:
    """Count to ``n``."""
    for i in range(1, n + 1):
        yield Progress(i, n, label)
    return n * 10


def test_run_steps_reports_every_step_and_returns_the_result():
    seen = []
    assert run_steps(count_to(3), seen.append) == 30
    assert [s.done for s in seen] == [1, 2, 3]


def test_cancelling_closes_the_job():
    closed = []

    def job() -> Steps[None]:
        try:
            yield Progress(1, 2)
            yield Progress(2, 2)
        finally:
            closed.append(True)

    with pytest.raises(CancelledError):
        run_steps(job(), should_stop=lambda: True)
    assert closed == [True]


def test_blocking_call_takes_the_jobs_arguments_plus_progress_and_cancel():
    count = blocking(count_to, "count")
    seen = []
    assert count(4, label="x", progress=seen.append) == 40
    assert [s.message for s in seen] == ["x"] * 4
    parameters = inspect.signature(count).parameters
    assert list(parameters) == ["n", "label", "progress", "should_stop"]
    assert count.__name__ == "count" and "Count to" in count.__doc__
    with pytest.raises(CancelledError):
        count(4, should_stop=lambda: True)


def test_stages_put_sub_jobs_on_one_rising_scale():
    stages = Stages(2, resolution=100)

    def chained() -> Steps[int]:
        first = yield from stages.run(count_to(3))
        second = yield from stages.run(count_to(7))
        return first + second

    seen = []
    assert run_steps(chained(), seen.append) == 100
    done = [s.done for s in seen]
    assert done == sorted(done) and done[-1] == 200 and {s.total for s in seen} == {200}
