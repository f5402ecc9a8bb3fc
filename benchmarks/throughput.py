"""Throughput against MONAI and against the bare forward pass, 2D and 3D, in one run.

``python benchmarks/throughput.py --out docs [--repeats 3]`` predicts one volume per model
(2D: the bundled ``membranes-fibsem`` U-Net on 16 slices of the real FIB-SEM volume
mirrored out to 1024²; 3D: a U-Net of the same width trained here on that volume, cached
in the work folder, on 96×250×250 of it) along these paths, in interleaved rounds so that
a busy machine slows all of them alike:

- ``monai``: MONAI's ``sliding_window_inference`` with its defaults (overlap 0.25) and a
  Gaussian blend, roi 256² (2D) or 96³ (3D), float32;
- ``ours``: :func:`napari_bnadapt.inference.predict` with the defaults (tiles fitted to the
  volume with the overlap the network needs, precision and layout chosen by measurement);
- ``ours_blocks``: the same, block by block into OME-Zarr (``bnadapt predict --out x.zarr``);
- ``ours_fp32``: the defaults but float32 (``--precision fp32``): what reduced precision adds;
- ``ours_fp32_old_tiling``: float32, the former fixed grid (256² / 64³ tiles overlapping by
  25 %), no BatchNorm folding, default memory layout: the program before this benchmark;
- ``bare``: the network alone over the volume computed once (non-overlapping tiles of the
  size ``ours`` chose, the precision and layout it chose, no reading, blending or
  writing): the limit.

Printed per model: Mvoxel/s (median and range over the rounds), every path's ratio to
MONAI and ours' to the bare pass (per round, median and range), how ``ours`` ran, and the
masks' agreement (fraction of voxels, Dice) between the paths. Then the adaptation time
(AdaBN, default settings) against one forward pass over the same patches. Figures go to
``throughput_results.json``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from napari_bnadapt.adabn.sampling import read_patches, sample_target
from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.blockwise.stream import predict_to_zarr
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.unet import run_padded, to_probabilities
from napari_bnadapt.speed.network import inference_module
from napari_bnadapt.speed.precision import autocast, memory_format

REAL = Path("/work/shared/data/real_em")
OLD = {
    2: PredictConfig(device="cpu", tile_shape=256, overlap=0.25, batch_size=8, precision="fp32",
                     channels_last=False, fold_batchnorm=False),
    3: PredictConfig(device="cpu", tile_shape=64, overlap=0.25, batch_size=8, precision="fp32",
                     channels_last=False, fold_batchnorm=False),
}  # fmt: skip
MONAI_ROI = {2: 256, 3: 96}
MONAI_BATCH = {2: 8, 3: 1}


def model_3d(work: Path, steps: int) -> Path:
    """A 3D U-Net (depth 3, 16 base channels: the bundled 2D model's width) trained on the
    real FIB-SEM volume for ``steps`` steps; made once per work folder."""
    path = work / f"membranes3d_{steps}.pt"
    if path.exists():
        return path
    import tifffile

    from napari_bnadapt.training import TrainConfig, train

    image = tifffile.imread(REAL / "neuroproof_img.tif")
    labels = tifffile.imread(REAL / "neuroproof_membranes.tif")
    config = TrainConfig(dims=3, steps=steps, batch_size=2, patch_size=64, device="cpu",
                         validate_every=max(1, steps // 3))  # fmt: skip
    print(f"training the 3D model ({steps} steps, once) ...", flush=True)
    result = train([image], [labels], config, names=["neuroproof"], voxel_size=(10.0,) * 3)
    save_model(result.model, path)
    return path


def volume_for(dims: int, work: Path, slices: int) -> tuple[np.ndarray, Path]:
    """The benchmark volume, real FIB-SEM at the models' 10 nm (the NeuroProof volume of
    docs/real_em.md: in the models' domain, so that they segment it with confidence), in
    memory and as a zarr store: for 2D, ``slices`` of its slices each mirrored out to 1024²;
    for 3D, its first ``slices`` planes (×250×250)."""
    import tifffile
    import zarr

    path = work / f"neuroproof{dims}d_{slices}.zarr"
    if not (path / "zarr.json").exists():
        image = tifffile.imread(REAL / "neuroproof_img.tif")[:slices]
        if dims == 2:
            extra = 1024 - image.shape[-1]
            image = np.pad(image, ((0, 0), (0, extra), (0, extra)), mode="symmetric")
        chunks = (1, 512, 512) if dims == 2 else (32, 128, 128)
        stored = zarr.open_array(str(path), mode="w", shape=image.shape, chunks=chunks,
                                 dtype="uint8")  # fmt: skip
        stored[...] = image
    return np.asarray(zarr.open_array(str(path), mode="r")[:]), path


def monai_probabilities(model, volume: np.ndarray) -> np.ndarray:
    """MONAI's sliding window with its default overlap and a Gaussian blend, float32: slice
    by slice for a 2D model (as our slices), the whole volume for a 3D one."""
    from monai.inferers import sliding_window_inference

    spec, dims = model.normalization, model.dims
    module = model.module.eval()
    roi = (MONAI_ROI[dims],) * dims

    def net(t: torch.Tensor) -> torch.Tensor:
        return run_padded(module, t, model.divisor)

    out = np.empty(volume.shape, np.float32)
    with torch.inference_mode():
        items = range(volume.shape[0]) if dims == 2 else [None]
        for z in items:
            part = volume[z : z + 1] if z is not None else volume[None]
            x = torch.from_numpy((part[None].astype(np.float32) - spec.mean) / spec.std)
            logits = sliding_window_inference(
                x, roi, MONAI_BATCH[dims], net, overlap=0.25, mode="gaussian"
            )
            probs = torch.sigmoid(logits)[0, 0].numpy()
            out[z if z is not None else slice(None)] = probs
    return out


def bare_seconds(model, volume: np.ndarray, execution) -> float:
    """The network alone over every voxel once, as ``execution`` runs it: non-overlapping
    tiles of its size (the last one along an axis clipped to the volume, not padded),
    tiles of one shape batched together."""
    dims, tile = model.dims, execution.tile
    device = torch.device("cpu")
    net = inference_module(model.module, device, dims, execution.channels_last,
                           execution.fold_batchnorm)  # fmt: skip
    spec = model.normalization
    x = torch.from_numpy((volume.astype(np.float32) - spec.mean) / spec.std)
    planes = x[:, None] if dims == 2 else x[None, None]  # (items, 1, *spatial)
    spatial = planes.shape[2:]
    starts = [range(0, n, t) for n, t in zip(spatial, tile)]
    groups: dict[tuple, list] = {}
    for origin in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, dims):
        region = tuple(slice(int(s), int(s) + t) for s, t in zip(origin, tile))
        for item in range(planes.shape[0]):
            piece = planes[(item, slice(None), *region)]
            groups.setdefault(tuple(piece.shape), []).append(piece)
    batch = execution.batch_size
    started = time.perf_counter()
    with torch.inference_mode(), autocast(device, execution.precision):
        for tiles in groups.values():
            for first in range(0, len(tiles), batch):
                x = torch.stack(tiles[first : first + batch])
                if execution.channels_last:
                    x = x.contiguous(memory_format=memory_format(dims))
                to_probabilities(run_padded(net, x, model.divisor).float()).cpu().numpy()
    return time.perf_counter() - started


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    a, b = a >= 0.5, b >= 0.5
    total = int(a.sum()) + int(b.sum())
    dice = 2 * float(np.logical_and(a, b).sum()) / total if total else 1.0
    return {"agreement": round(float(np.mean(a == b)), 6), "dice": round(dice, 5),
            "foreground": round(float(a.mean()), 4)}  # fmt: skip


def timed(run: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def benchmark_model(model, volume: np.ndarray, zarr_path: Path, work: Path, repeats: int) -> dict:
    dims = model.dims
    voxels = float(volume.size)
    cpu = PredictConfig(device="cpu")
    fp32 = PredictConfig(device="cpu", precision="fp32")
    started = time.perf_counter()
    warm = predict(model, volume, cpu)  # the first run measures and caches the calibration
    first = time.perf_counter() - started
    execution = warm.execution
    print(f"  ours runs with {execution.describe()} (first run, calibration included: "
          f"{first:.1f} s)", flush=True)  # fmt: skip
    paths: dict[str, Callable[[], object]] = {
        "monai": lambda: monai_probabilities(model, volume),
        "ours": lambda: predict(model, volume, cpu).probabilities,
        "ours_blocks": lambda: predict_to_zarr(
            model, zarr_path_source(zarr_path), work / f"out{dims}d.zarr", cpu
        ),
        "ours_fp32": lambda: predict(model, volume, fp32).probabilities,
        "ours_fp32_old_tiling": lambda: predict(model, volume, OLD[dims]).probabilities,
        "bare": lambda: bare_seconds(model, volume, execution),
    }
    seconds: dict[str, list[float]] = {k: [] for k in paths}
    outputs: dict[str, np.ndarray] = {}
    for round_ in range(repeats):
        for name, run in paths.items():
            if name == "ours_blocks":
                import shutil

                shutil.rmtree(work / f"out{dims}d.zarr", ignore_errors=True)
            elapsed, out = timed(run)
            if name == "bare":
                elapsed = float(out)
            elif isinstance(out, np.ndarray):
                outputs[name] = out
            seconds[name].append(elapsed)
        line = ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items())
        print(f"  round {round_ + 1}: {line}", flush=True)
    rates = {k: [voxels / s / 1e6 for s in v] for k, v in seconds.items()}
    ratios = {
        f"{k}_vs_monai": [m / s for m, s in zip(seconds["monai"], v)]
        for k, v in seconds.items() if k != "monai"
    }  # fmt: skip
    ratios["ours_vs_bare"] = [b / s for b, s in zip(seconds["bare"], seconds["ours"])]
    ratios["ours_blocks_vs_bare"] = [b / s for b, s in zip(seconds["bare"], seconds["ours_blocks"])]
    result = {
        "shape": list(volume.shape),
        "execution": {"tile": list(execution.tile), "overlap": list(execution.overlap),
                      "batch_size": execution.batch_size, "precision": execution.precision,
                      "channels_last": execution.channels_last,
                      "fold_batchnorm": execution.fold_batchnorm, "note": execution.note},
        "first_run_seconds": round(first, 2),
        "mvoxel_per_s": {k: summary(v) for k, v in rates.items()},
        "ratios": {k: summary(v) for k, v in ratios.items()},
        "agreement": {
            "ours_vs_ours_fp32_old_tiling": agreement(outputs["ours"], outputs["ours_fp32_old_tiling"]),
            "ours_vs_ours_fp32": agreement(outputs["ours"], outputs["ours_fp32"]),
            "ours_vs_monai": agreement(outputs["ours"], outputs["monai"]),
            "ours_fp32_old_tiling_vs_monai": agreement(outputs["ours_fp32_old_tiling"], outputs["monai"]),
        },
    }  # fmt: skip
    return result


def zarr_path_source(path: Path):
    from napari_bnadapt.io.volumes import read_volume

    return read_volume(path).source


def adaptation_cost(model, volume: np.ndarray) -> dict:
    """AdaBN with the default settings against one forward pass over the same patches."""
    config = AdaptConfig(device="cpu")
    elapsed, _ = timed(lambda: adapt(model, volume, config))
    targets, patches, _ = sample_target(
        model, volume, config.patches, config.patch_size, config.seed
    )
    batch = read_patches(targets, patches)
    module = model.module.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(batch), config.batch_size):
            run_padded(module, torch.from_numpy(batch[first : first + config.batch_size]),
                       model.divisor)  # fmt: skip
    forward = time.perf_counter() - started
    return {"patches": len(patches), "patch_shape": list(batch.shape[2:]),
            "adapt_seconds": round(elapsed, 3), "forward_seconds": round(forward, 3),
            "adapt_over_forward": round(elapsed / forward, 2)}  # fmt: skip


def forward_variants(model, tile: tuple[int, ...], rounds: int) -> dict:
    """The network alone on one tile in each precision and layout, BatchNorm folded or not,
    in interleaved rounds: each variant's speed relative to float32 (folded, default
    layout) in the same round, median and range over the rounds (the evidence behind
    ``napari_bnadapt.speed.execution.CPU_RULE``)."""
    device = torch.device("cpu")
    x = torch.randn((1, model.in_channels, *tile), generator=torch.Generator().manual_seed(0))
    variants = [(p, cl, fold) for fold in (True, False) for p in ("fp32", "bf16")
                for cl in (False, True)]  # fmt: skip
    nets = {(cl, fold): inference_module(model.module, device, model.dims, cl, fold)
            for cl in (False, True) for fold in (True, False)}  # fmt: skip
    inputs = {False: x, True: x.contiguous(memory_format=memory_format(model.dims))}
    times: dict[tuple, list[float]] = {v: [] for v in variants}
    with torch.inference_mode():
        for round_ in range(rounds + 1):
            for precision, cl, fold in variants:
                with autocast(device, precision):
                    started = time.perf_counter()
                    run_padded(nets[(cl, fold)], inputs[cl], model.divisor).float().sum().item()
                    elapsed = time.perf_counter() - started
                if round_:
                    times[(precision, cl, fold)].append(elapsed)
    base = times[("fp32", False, True)]
    name = lambda p, cl, fold: f"{p}{'+channels_last' if cl else ''}{'' if fold else ' (no fold)'}"  # noqa: E731
    return {
        name(*v): summary([b / t for b, t in zip(base, ts)]) for v, ts in times.items()
    } | {"tile": list(tile), "fp32_folded_mvoxel_per_s": summary(
        [float(np.prod(tile)) / t / 1e6 for t in base])}  # fmt: skip


def real_pair_agreement(model, label: str) -> list[dict]:
    """Masks on the real EM pair (resampled to the model's voxel size, as the CLI does):
    the defaults against the program before this change (float32, the fixed 25 % grid),
    and each change alone, for the source model and the model adapted (AdaBN) to each
    volume. ``whole`` is float32 on whole slices (2D) or the whole volume (3D): no tiles."""
    import tifffile

    rows = []
    # At the model's scale the pair's slices fit one tile (471², 250²): "vnc, own pixels"
    # (1024², not resampled) is cut into tiles, to compare the tilings on real data.
    volumes = {"vnc": (50.0, 4.6, 4.6), "neuroproof": (10.0, 10.0, 10.0), "vnc, own pixels": None}
    for name, size in volumes.items():
        if model.dims == 3 and size is None:
            continue
        image = tifffile.imread(REAL / f"{name.split(',')[0]}_img.tif")
        if model.dims == 3:  # a crop: the whole-volume reference must fit in memory
            image = image[:6] if name == "vnc" else image[:96]
        adapted = adapt(model, image, AdaptConfig(device="cpu"), voxel_size=size).model
        for state, net in (("source", model), ("adabn", adapted)):
            whole_tile = 4096 if model.dims == 2 else 512
            configs = {
                "auto": PredictConfig(device="cpu"),
                "old": OLD[model.dims],
                "whole": PredictConfig(device="cpu", tile_shape=whole_tile, precision="fp32"),
                "new_fp32": PredictConfig(device="cpu", precision="fp32"),
                "new_bf16": PredictConfig(device="cpu", precision="bf16"),
            }
            runs = {k: predict(net, image, c, voxel_size=size) for k, c in configs.items()}
            auto = runs["auto"]
            old, whole = runs["old"].probabilities, runs["whole"].probabilities
            new_fp32, new_bf16 = runs["new_fp32"].probabilities, runs["new_bf16"].probabilities
            rows.append({
                "model": label, "volume": name, "state": state,
                "auto": auto.execution.describe(),
                "defaults_vs_old": agreement(auto.probabilities, old),
                "bf16_vs_fp32_new_tiling": agreement(new_bf16, new_fp32),
                "new_tiling_fp32_vs_whole": agreement(new_fp32, whole),
                "old_vs_whole": agreement(old, whole),
            })  # fmt: skip
            print(f"  {label} {name} {state}: {json.dumps(rows[-1])}", flush=True)
    return rows


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": [round(v, 3) for v in values]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for throughput_results.json")
    parser.add_argument("--work", help="folder for volumes and the 3D model (default: temporary)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices-2d", type=int, default=16, help="slices of 1024² (2D volume)")
    parser.add_argument("--slices-3d", type=int, default=96, help="planes of 250² (3D volume)")
    parser.add_argument("--train-steps-3d", type=int, default=300)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument(
        "--agreement-only",
        action="store_true",
        help="only the masks on the real EM pair (no timings)",
    )
    parser.add_argument("--no-agreement", action="store_true",
                        help="only the timings (not the masks on the real EM pair)")  # fmt: skip
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bnadapt-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"cpu_threads": torch.get_num_threads(), "repeats": args.repeats}
    for dims in args.dims:
        model = load_model("membranes-fibsem" if dims == 2 else model_3d(work, args.train_steps_3d))
        if not args.no_agreement:
            print(f"{dims}D model on the real EM pair (masks):", flush=True)
            results[f"{dims}d_real_pair"] = real_pair_agreement(model, f"{dims}D")
        if args.agreement_only:
            continue
        volume, path = volume_for(dims, work, args.slices_2d if dims == 2 else args.slices_3d)
        print(f"{dims}D model on {volume.shape}:", flush=True)
        results[f"{dims}d"] = benchmark_model(model, volume, path, work, args.repeats)
        tile = tuple(results[f"{dims}d"]["execution"]["tile"])
        results[f"{dims}d"]["forward_variants"] = forward_variants(model, tile, 7)
        results[f"{dims}d"]["adaptation"] = adaptation_cost(model, volume)
        print(json.dumps(results[f"{dims}d"], indent=1), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "throughput_agreement.json" if args.agreement_only else "throughput_results.json"
    (out / name).write_text(json.dumps(results, indent=2))
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
