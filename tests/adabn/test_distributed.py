"""AdaBN statistics measured on dask.distributed workers equal the single-process ones."""

import h5py
import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.cluster import ClusterConfig
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.io.volumes import read_volume
from napari_bnadapt.synthetic import SHIFTS, make_volume

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scheduler():
    """A running two-worker cluster, reached by its address as a user's scheduler is."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def target(tmp_path):
    volume, _ = make_volume((3, 96, 96), SHIFTS["brightness"], seed=2)
    with h5py.File(tmp_path / "target.h5", "w") as handle:
        handle.create_dataset("raw", data=volume, chunks=(1, 32, 32))
    return read_volume(tmp_path / "target.h5").data


@pytest.mark.parametrize("mode", ["standard", "consistent"])
def test_statistics_on_workers_equal_one_process(small_model_2d, target, scheduler, mode):
    config = AdaptConfig(device="cpu", patches=12, patch_size=32, batch_size=4, mode=mode)
    here = adapt(small_model_2d, target, config)
    there = adapt(small_model_2d, target, config, cluster=ClusterConfig(scheduler=scheduler))
    assert here.stats.keys() == there.stats.keys()
    for name, stats in here.stats.items():
        for key in ("running_mean", "running_var"):
            assert torch.equal(stats[key], there.stats[name][key]), (name, key)
    # The user's model is untouched either way.
    assert torch.equal(
        small_model_2d.module.state_dict()["encoder.0.bn1.running_mean"],
        small_model_2d.source_stats["encoder.0.bn1"]["running_mean"],
    )


def test_auto_refuses_workers_with_a_clear_message(small_model_2d, target):
    with pytest.raises(InputDataError, match="choose one cure"):
        adapt(small_model_2d, target, AdaptConfig(cure="auto"), cluster=ClusterConfig(workers=2))


def test_an_unreachable_scheduler_is_one_line(small_model_2d, target):
    config = AdaptConfig(device="cpu", patches=4, patch_size=32)
    with pytest.raises(InputDataError, match="speaks dask's protocol"):
        adapt(
            small_model_2d,
            target,
            config,
            cluster=ClusterConfig(scheduler="tcp://127.0.0.1:9", timeout=1),
        )


def test_latent_histograms_on_workers_equal_one_process(small_model_2d, target, scheduler):
    import numpy as np

    from napari_bnadapt.diagnostics.diagnosis import diagnose
    from napari_bnadapt.diagnostics.latents import LatentConfig

    config = LatentConfig(device="cpu", patches=8, patch_size=32, batch_size=4)
    here = diagnose(small_model_2d, target, config=config)
    there = diagnose(
        small_model_2d, target, config=config, cluster=ClusterConfig(scheduler=scheduler)
    )
    for name, layer in here.before.layers.items():
        other = there.before.layers[name]
        np.testing.assert_array_equal(layer.counts, other.counts)
        assert torch.equal(layer.moments.mean, other.moments.mean)
    np.testing.assert_array_equal(here.before.bottleneck_samples, there.before.bottleneck_samples)
    assert here.verdict.to_dict() == there.verdict.to_dict()


@pytest.fixture
def silent_port():
    """A listener that accepts a connection and never answers (a web server's manner)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("server", ["silent", "not dask"])
def test_an_address_that_is_no_scheduler_is_one_line_in_time(
    small_model_2d, target, server, silent_port
):
    """A web server at the address (the dashboard's port given by mistake) accepts the
    connection and never answers dask's handshake: refused within the timeout."""
    import time

    scheme = "tcp" if server == "silent" else "garbage"
    started = time.perf_counter()
    with pytest.raises(InputDataError, match="dask") as error:
        adapt(
            small_model_2d, target, AdaptConfig(device="cpu", patches=4, patch_size=32),
            cluster=ClusterConfig(scheduler=f"{scheme}://127.0.0.1:{silent_port}", timeout=1),
        )  # fmt: skip
    assert time.perf_counter() - started < 15 and "\n" not in str(error.value)


def test_a_failed_scheduler_leaves_no_store(small_model_2d, target, silent_port, tmp_path):
    from napari_bnadapt.blockwise.stream import StreamConfig, predict_to_zarr

    cluster = ClusterConfig(scheduler=f"tcp://127.0.0.1:{silent_port}", timeout=1)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputDataError, match="dask"):
        predict_to_zarr(
            small_model_2d, target, out / "m.zarr", stream=StreamConfig(cluster=cluster)
        )
    assert list(out.iterdir()) == []
