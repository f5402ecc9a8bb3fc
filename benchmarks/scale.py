"""Scale benchmark: memory, throughput and sampling cost of block-by-block prediction.

``python benchmarks/scale.py --out docs [--sizes 0.06 0.25 1.0]`` writes synthetic uint8
zarr volumes (slices of 1024², as many as the size asks), and measures:

1. peak RSS of ``bnadapt predict --out mask.zarr`` per volume size, each in its own
   process (``resource.getrusage`` of the child); the in-memory TIFF path as reference;
2. throughput on one volume against MONAI's ``sliding_window_inference`` at equal roi,
   overlap, batch and Gaussian blending, same model, same volume, one run (needs MONAI:
   ``pip install monai`` beside torch; skipped with a note without it), and with
   ``--workers 2`` the scaling efficiency;
3. adaptation on a zarr target: sampling 64 patches from the largest store against a
   plain forward pass over them.

The RSS sweep uses a small U-Net (depth 2, 8 base channels, random weights, saved to the
work folder) so that a 1 GB volume runs in minutes on two CPU cores: memory is a property
of the blocks and the tile batch, not of the network's width. Throughput uses the bundled
demo model. Figures are printed and written to ``scale_results.json``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_bnadapt.adabn.sampling import read_patches, sample_target
from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.blockwise.stream import StreamConfig, predict_to_zarr
from napari_bnadapt.cluster import ClusterConfig
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.volumes import read_volume
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.loaded import wrap_unet
from napari_bnadapt.model.unet import UNet, UNetConfig, pad_to_multiple

PLANE = (1024, 1024)
CPU = PredictConfig(device="cpu")


def write_volume(path: Path, gigabytes: float, seed: int = 0) -> tuple[int, ...]:
    """A membrane-like uint8 zarr volume of about ``gigabytes``, written slab by slab."""
    import zarr

    slices = max(1, round(gigabytes * 1e9 / (PLANE[0] * PLANE[1])))
    shape = (slices, *PLANE)
    if (path / "zarr.json").exists():
        return tuple(zarr.open_array(str(path), mode="r").shape)
    array = zarr.open_array(str(path), mode="w", shape=shape, chunks=(8, 512, 512), dtype="uint8")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: PLANE[0], : PLANE[1]].astype(np.float32)
    for start in range(0, slices, 8):
        stop = min(slices, start + 8)
        slab = np.empty((stop - start, *PLANE), dtype=np.uint8)
        for k in range(stop - start):
            phase = (start + k) * 0.05
            cells = np.sin(xx / 23.0 + phase) * np.cos(yy / 19.0 - phase)
            membrane = np.abs(cells) < 0.12
            noise = rng.normal(0, 12, PLANE)
            slab[k] = np.clip(170 - 110 * membrane + noise, 0, 255).astype(np.uint8)
        array[start:stop] = slab
    return shape


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of ``command`` run alone in a fresh process."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
        "time.perf_counter() - t, code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True
    ).stdout.split()
    if out[-1] != "0":
        raise RuntimeError(f"{' '.join(command)} failed")
    return float(out[-3]) / 1024.0, float(out[-2])


def small_model(folder: Path) -> Path:
    torch.manual_seed(0)
    unet = UNet(UNetConfig(dims=2, depth=2, base_channels=8)).eval()
    model = wrap_unet(unet, NormalizationSpec(mode="fixed", mean=128.0, std=50.0), {"name": "s"})
    path = folder / "small.pt"
    save_model(model, path)
    return path


def rss_sweep(folder: Path, sizes: list[float], reference: bool = True) -> list[dict]:
    model = small_model(folder)
    rows = []
    for size in sizes:
        volume = folder / f"volume_{size:g}GB.zarr"
        shape = write_volume(volume, size)
        out = folder / f"mask_{size:g}GB.zarr"
        command = ["bnadapt", "predict", "--model", str(model), "--input", str(volume),
                   "--out", str(out), "--device", "cpu"]  # fmt: skip
        rss, seconds = peak_rss_mb(command)
        row = {"gigabytes": size, "shape": shape, "peak_rss_mb": round(rss, 1),
               "seconds": round(seconds, 1),
               "mvoxel_per_s": round(np.prod(shape) / seconds / 1e6, 2)}  # fmt: skip
        if size <= 0.25 and reference:  # the in-memory path (it grows with the volume)
            tif = folder / f"mask_{size:g}GB.tif"
            memory = ["bnadapt", "predict", "--model", str(model), "--input", str(volume),
                      "--out", str(tif), "--device", "cpu"]  # fmt: skip
            row["in_memory_peak_rss_mb"] = round(peak_rss_mb(memory)[0], 1)
        print(f"  {size:g} GB {shape}: peak RSS {row['peak_rss_mb']} MB "
              f"(in memory: {row.get('in_memory_peak_rss_mb', '–')} MB), {row['seconds']} s")  # fmt: skip
        rows.append(row)
    return rows


def monai_seconds(model, volume: np.ndarray, roi: int, overlap: float, batch: int) -> float | None:
    """MONAI's sliding window over every slice (the slices are its batch), Gaussian blend."""
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        return None
    spec = model.normalization
    module = model.module.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for z in range(volume.shape[0]):
            x = torch.from_numpy(
                (volume[z : z + 1, None].astype(np.float32) - spec.mean) / spec.std
            )
            logits = sliding_window_inference(
                x, (roi, roi), batch, lambda t: module(pad_to_multiple(t, model.divisor)),
                overlap=overlap, mode="gaussian",
            )  # fmt: skip
            (torch.sigmoid(logits) >= 0.5).numpy()
    return time.perf_counter() - started


def throughput(folder: Path, slices: int) -> dict:
    model = load_model("demo")
    path = folder / "throughput.zarr"
    import zarr

    shape = write_volume(path, slices * PLANE[0] * PLANE[1] / 1e9, seed=1)
    volume = np.asarray(zarr.open_array(str(path), mode="r")[:])
    voxels = float(np.prod(shape))
    roi, overlap, batch = 256, 0.25, 8
    config = PredictConfig(device="cpu", tile_shape=roi, overlap=overlap, batch_size=batch)
    source = read_volume(path).source
    timings = {}
    started = time.perf_counter()
    predict(model, volume, config)
    timings["ours_in_memory"] = time.perf_counter() - started
    started = time.perf_counter()
    predict_to_zarr(model, source, folder / "t1.zarr", config)
    timings["ours_blockwise"] = time.perf_counter() - started
    started = time.perf_counter()
    spread = StreamConfig(cluster=ClusterConfig(workers=2), block=(1, 2048, 2048))
    predict_to_zarr(model, source, folder / "t2.zarr", config, stream=spread)
    timings["ours_blockwise_2_workers"] = time.perf_counter() - started
    started = time.perf_counter()
    single = StreamConfig(block=(1, 2048, 2048))
    predict_to_zarr(model, source, folder / "t3.zarr", config, stream=single)
    timings["ours_blockwise_1_slice_blocks"] = time.perf_counter() - started
    monai = monai_seconds(model, volume, roi, overlap, batch)
    if monai is not None:
        timings["monai_sliding_window"] = monai
    result = {"shape": shape, "seconds": {k: round(v, 2) for k, v in timings.items()}}
    result["mvoxel_per_s"] = {k: round(voxels / v / 1e6, 3) for k, v in timings.items()}
    if monai is not None:
        result["ratio_vs_monai"] = {
            k: round(monai / v, 3) for k, v in timings.items() if k != "monai_sliding_window"
        }
    result["scaling_efficiency_2_workers"] = round(
        timings["ours_blockwise_1_slice_blocks"] / timings["ours_blockwise_2_workers"] / 2, 3
    )
    return result


def sampling_cost(folder: Path, size: float) -> dict:
    """64 patches from the store: reading them against a forward pass over them."""
    model = load_model("demo")
    volume = read_volume(folder / f"volume_{size:g}GB.zarr")
    started = time.perf_counter()
    targets, patches, _ = sample_target(model, volume.data, 64, None, 0)
    chosen = time.perf_counter() - started
    started = time.perf_counter()
    batch = read_patches(targets, patches)
    read = time.perf_counter() - started
    started = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(batch), 8):
            model.module.eval()(pad_to_multiple(torch.from_numpy(batch[first : first + 8]), 16))
    forward = time.perf_counter() - started
    store_bytes = int(np.prod(volume.data.shape))
    read_bytes = int(batch.size)  # uint8 voxels of the patches (chunks read are larger)
    return {
        "store_gigabytes": size, "patches": len(patches), "choose_seconds": round(chosen, 3),
        "read_seconds": round(read, 3), "forward_seconds": round(forward, 3),
        "read_over_forward": round(read / forward, 3),
        "patch_voxels_over_store": round(read_bytes / store_bytes, 5),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for scale_results.json")
    parser.add_argument("--work", help="folder for the volumes (default: a temporary one)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.06, 0.25, 1.0])
    parser.add_argument("--throughput-slices", type=int, default=8)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-only", action="store_true", help="only the peak-RSS sweep")
    parser.add_argument("--no-reference", action="store_true", help="skip the in-memory runs")
    args = parser.parse_args()
    folder = Path(args.work or tempfile.mkdtemp(prefix="bnadapt-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    results: dict = {"cpu_threads": torch.get_num_threads()}
    if not args.skip_rss:
        print("peak RSS of bnadapt predict --out mask.zarr (small U-Net):")
        results["rss"] = rss_sweep(folder, args.sizes, not args.no_reference)
        first, last = results["rss"][0], results["rss"][-1]
        results["rss_growth"] = round(last["peak_rss_mb"] / first["peak_rss_mb"] - 1, 4)
        print(f"  growth from {first['gigabytes']} to {last['gigabytes']} GB: "
              f"{results['rss_growth']:+.1%}")  # fmt: skip
    if not args.rss_only:
        print("throughput (demo model):")
        results["throughput"] = throughput(folder, args.throughput_slices)
        print(json.dumps(results["throughput"], indent=2))
    if not args.skip_rss and not args.rss_only:
        results["sampling"] = sampling_cost(folder, max(args.sizes))
        print("sampling 64 patches:", json.dumps(results["sampling"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("scale_rss.json" if args.rss_only else "scale_results.json")
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
