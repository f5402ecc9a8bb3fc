"""Running block tasks in this process or on dask.distributed workers, with one interface.

``workers=N`` starts a local cluster of N single-threaded worker processes;
``scheduler=ADDRESS`` connects to any running scheduler (SLURM via dask-jobqueue,
Kubernetes, Coiled). What every task shares (the model, the plan, an in-memory source) is
scattered to each worker once; tasks then carry only a block index. Results come back
as they complete, and closing the iterator cancels what is left.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputDataError, first_line, require
from .memory import check_memory

#: Local worker processes per CPU core at most, and what one weighs (Python, PyTorch, a
#: network and a block: measured ~0.4 GB).
MAX_WORKERS_PER_CORE, WORKER_BYTES = 4, 512 * 1024**2


@dataclass(frozen=True)
class ClusterConfig:
    """Where block tasks run: here (the default), ``workers`` local processes, or the
    dask scheduler at ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None
    #: Seconds to wait for ``scheduler`` to answer.
    timeout: float = 20.0

    def __post_init__(self) -> None:
        require(
            self.workers is None or self.workers >= 1,
            f"--workers must be at least 1, got {self.workers}",
        )
        require(
            not (self.workers and self.scheduler),
            "give --workers (a local cluster) or --scheduler (a running one), not both",
        )
        cores = os.cpu_count() or 1
        require(
            self.workers is None or self.workers <= MAX_WORKERS_PER_CORE * cores,
            f"--workers {self.workers} on a machine of {cores} cores: give at most "
            f"{MAX_WORKERS_PER_CORE * cores} (more processes than cores only add memory)",
        )
        require(
            math.isfinite(self.timeout) and self.timeout > 0,
            f"the scheduler timeout must be a positive number of seconds, got {self.timeout}",
        )

    @property
    def distributed(self) -> bool:
        return bool(self.workers) or bool(self.scheduler)


@contextlib.contextmanager
def dask_client(config: ClusterConfig) -> Iterator[Any]:
    """A dask.distributed client for ``config``, or None to run here."""
    if not config.distributed:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputDataError(
            "--workers and --scheduler need dask.distributed: pip install distributed"
        ) from None
    if config.scheduler:
        check_scheduler(config.scheduler, config.timeout)
        try:
            client = Client(config.scheduler, timeout=f"{config.timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputDataError(
                f"no dask scheduler answered at {config.scheduler} ({first_line(exc)}): "
                "start one (dask scheduler, dask-jobqueue) or check the address"
            ) from None
        with client:
            yield client
        return
    workers = int(config.workers or 1)
    check_memory(
        workers * WORKER_BYTES,
        f"starting {workers} worker processes",
        "give fewer --workers (each holds the network and its own Python and PyTorch)",
    )
    threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=40,
    )  # fmt: skip
    with cluster, Client(cluster) as client:
        # Each worker's torch uses its share of the cores: no oversubscription.
        client.run(_set_torch_threads, threads)
        yield client


def check_scheduler(address: str, timeout: float) -> None:
    """Refuse ``address`` unless something there completes dask's handshake within
    ``timeout`` seconds. dask's own connect timeout ends when the TCP connection opens: a
    web server at the address (the dashboard's port, given by mistake) accepts it and then
    waits for a request forever, and so would the client."""
    import asyncio

    from distributed.comm import connect

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(handshake(), timeout))
    except ValueError as exc:  # an unknown scheme, no port...
        raise InputDataError(
            f"--scheduler {address!r} is not a dask address ({first_line(exc)}): give the "
            "scheduler's address, e.g. tcp://10.0.0.1:8786"
        ) from None
    except (OSError, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else first_line(exc)
        raise InputDataError(
            f"nothing at {address} speaks dask's protocol within {timeout:g} s ({reason}): "
            "give the scheduler's address (tcp://host:8786 by default; not the dashboard's "
            "port), or start one (dask scheduler, dask-jobqueue)"
        ) from None


def run_tasks(
    client: Any,
    task: Callable[..., Any],
    shared: Sequence[Any],
    indices: Sequence[int],
) -> Iterator[Any]:
    """``task(*shared, index)`` for every index, here or on ``client``'s workers, yielded
    as they complete."""
    if client is None:
        for index in indices:
            yield task(*shared, index)
        return
    from distributed import as_completed

    # broadcast: each worker receives the model once, not once per task.
    scattered = client.scatter(list(shared), broadcast=True, hash=False)
    futures = [
        client.submit(_synchronously, task, *scattered, index, pure=False) for index in indices
    ]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)


def dashboard_link(client: Any) -> str | None:
    return getattr(client, "dashboard_link", None) if client is not None else None


def _synchronously(task: Callable[..., Any], *args: Any) -> Any:
    """Run a task with dask's local synchronous scheduler: a dask array read inside a task
    (a block, a patch) must not become a graph on the cluster, which would wait on the
    very worker thread that runs this task."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        return task(*args)


def _set_torch_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)
