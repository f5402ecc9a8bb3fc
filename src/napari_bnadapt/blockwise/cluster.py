"""Running block tasks in this process or on dask.distributed workers, with one interface.

``workers=N`` starts a local cluster of N single-threaded worker processes;
``scheduler=ADDRESS`` connects to any running scheduler (SLURM via dask-jobqueue,
Kubernetes, Coiled). What every task shares (the model, the plan, an in-memory source) is
scattered to each worker once; tasks then carry only a block index. Results come back
as they complete, and closing the iterator cancels what is left.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import InputDataError
from ..model.loaded import LoadedModel


@dataclass(frozen=True)
class ClusterConfig:
    """Where block tasks run: here (the default), ``workers`` local processes, or the
    dask scheduler at ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None

    @property
    def distributed(self) -> bool:
        return bool(self.workers) or bool(self.scheduler)


class ModelParcel:
    """A :class:`LoadedModel` that pickles, TorchScript modules included (sent as the bytes
    of ``torch.jit.save``, which plain pickling of a ScriptModule does not support)."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    def __getstate__(self) -> dict[str, Any]:
        if isinstance(self.model.module, torch.jit.ScriptModule):
            buffer = io.BytesIO()
            torch.jit.save(self.model.module, buffer)
            return {"model": replace(self.model, module=None), "script": buffer.getvalue()}
        return {"model": self.model, "script": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = state["model"]
        if state["script"] is not None:
            module = torch.jit.load(io.BytesIO(state["script"]), map_location="cpu")
            model = replace(model, module=module)
        self.model = model


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
        try:
            client = Client(config.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputDataError(
                f"no dask scheduler answered at {config.scheduler} ({exc}): start one "
                "(dask scheduler, dask-jobqueue) or check the address"
            ) from None
        with client:
            yield client
        return
    workers = int(config.workers or 1)
    threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=40,
    )  # fmt: skip
    with cluster, Client(cluster) as client:
        # Each worker's torch uses its share of the cores: no oversubscription.
        client.run(torch.set_num_threads, threads)
        yield client


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
    scattered = client.scatter(list(shared), broadcast=True)
    futures = [client.submit(task, *scattered, index, pure=False) for index in indices]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)


def dashboard_link(client: Any) -> str | None:
    return getattr(client, "dashboard_link", None) if client is not None else None
