"""GPU check in one command: the CUDA paths of predict, adapt and report, reduced-precision
agreement, out-of-memory halving, and timings on a 512×512×64 volume.

    python benchmarks/gpu.py --json gpu_results.json        # on a machine with a GPU
    python benchmarks/gpu.py --json dry.json --dry          # the same steps, tiny, on the CPU

Made to run unattended on a fresh checkout (the package need not be installed: ``src/`` is
used when it is not) within about eight minutes on one NVIDIA H200. Every step is timed
and guarded: one that fails is recorded with its error and the rest still run; steps left
when the time budget (``--budget`` seconds) is spent are skipped, and say so. Without torch,
without CUDA or without a dependency, it says clearly what it cannot do, still writes the
JSON, and (without CUDA) runs the CPU dry path instead. Prints a compact summary; the JSON
holds every figure. Nothing is asserted: the figures go into docs/scale.md.

Steps: environment; 2D prediction (``membranes-fibsem``) in fp32, bf16, fp16 and auto
against float32 (mask agreement, Dice, max |Δp|) and the former float32 tiling, MONAI's
sliding window when MONAI is installed; a 3D U-Net trained briefly on synthetic volumes
(the CUDA training path) and its prediction; block-by-block prediction to OME-Zarr with
resampling to the model's voxel size, against the in-memory path; AdaBN on the GPU against
the CPU on the same patches; the stroke cure (``adabn+strokes``, lines painted on one
slice) on the GPU against the CPU (seconds, steps, kept, mask agreement); ``report``; out-of-memory halving (a memory cap on the GPU, a
network that fails on large batches on the CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {"full": (64, 512, 512), "dry": (3, 64, 64)}
SHAPE_3D = {"full": (64, 256, 256), "dry": (16, 48, 48)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the figures (JSON)")
    parser.add_argument("--dry", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all steps")
    parser.add_argument("--steps", help="only these steps, comma-separated (default: all)")
    args = parser.parse_args()
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "host": platform.node(), "python": platform.python_version(),
                               "steps": {}}  # fmt: skip
    try:
        import torch
    except ImportError:
        return finish(results, args.json, "torch is not installed: nothing can run. Install "
                      "a CUDA build of torch (pip install torch) and the package "
                      "(pip install -e .), then run this again.")  # fmt: skip
    cuda = torch.cuda.is_available()
    results["torch"] = torch.__version__
    results["cuda_available"] = cuda
    if not cuda and not args.dry:
        print("no CUDA device here (torch.cuda.is_available() is False): the GPU figures "
              "cannot be measured; running the CPU dry path instead", flush=True)  # fmt: skip
    dry = args.dry or not cuda
    results["mode"] = "dry (CPU, tiny sizes)" if dry else "full (CUDA)"
    try:
        import_package()
    except ImportError as exc:
        return finish(results, args.json, f"the package cannot be imported ({exc}): install "
                      "its dependencies (pip install -e . from the checkout)")  # fmt: skip
    device = "cpu" if dry else "cuda"
    size = "dry" if dry else "full"
    context: dict[str, Any] = {"device": device, "size": size}
    steps: list[tuple[str, Callable[[dict], dict]]] = [
        ("environment", environment),
        ("predict_2d", predict_2d),
        ("train_3d", train_3d),
        ("predict_3d", predict_3d),
        ("stream_resampled", stream_resampled),
        ("adapt", adapt_on_device),
        ("strokes", strokes_on_device),
        ("report", report_on_device),
        ("out_of_memory", out_of_memory),
    ]
    if args.steps:
        wanted = set(args.steps.split(","))
        steps = [(name, step) for name, step in steps if name in wanted]
    deadline = time.perf_counter() + args.budget
    for name, step in steps:
        if time.perf_counter() > deadline:
            results["steps"][name] = {"status": "skipped: time budget spent"}
            continue
        started = time.perf_counter()
        try:
            figures = step(context)
            figures["status"] = "ok"
        except Exception as exc:  # a failing step is a finding: record it, go on
            figures = {"status": f"failed: {type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(limit=6)}  # fmt: skip
        figures["seconds"] = round(time.perf_counter() - started, 2)
        results["steps"][name] = figures
        print(f"[{name}] {figures['status']} ({figures['seconds']} s)", flush=True)
    return finish(results, args.json, None)


def import_package() -> None:
    """``napari_bnadapt`` as installed, else from this checkout's ``src/``."""
    try:
        import napari_bnadapt
    except ImportError:
        sys.path.insert(0, str(ROOT / "src"))
        import napari_bnadapt  # noqa: F401
    sys.path.insert(0, str(ROOT / "benchmarks"))


def finish(results: dict, path: str, problem: str | None) -> int:
    if problem:
        results["problem"] = problem
        print(f"cannot run: {problem}", flush=True)
    Path(path).write_text(json.dumps(results, indent=2, default=str))
    print_summary(results)
    print(f"wrote {path}")
    return 0


# -- steps -----------------------------------------------------------------------------------


def environment(ctx: dict) -> dict:
    import torch

    from napari_bnadapt import __version__
    from napari_bnadapt.speed.precision import runs_natively

    device = torch.device(ctx["device"])
    figures = {"package": __version__, "device": ctx["device"],
               "threads": torch.get_num_threads(),
               "bf16_native": runs_natively(device, "bf16")}  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        figures.update(name=props.name, capability=f"{props.major}.{props.minor}",
                       memory_gib=round(props.total_memory / 2**30, 1),
                       cuda=torch.version.cuda)  # fmt: skip
    try:
        import monai

        figures["monai"] = monai.__version__
    except ImportError:
        figures["monai"] = None
    return figures


def membranes(shape: tuple[int, ...], seed: int = 0):
    """Membrane-like uint8 slices (the scale benchmark's generator, any shape)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    cells = np.sin(xx / 23.0 + zz * 0.05) * np.cos(yy / 19.0 - zz * 0.05)
    noise = rng.normal(0, 12, shape)
    return np.clip(170 - 110 * (np.abs(cells) < 0.12) + noise, 0, 255).astype(np.uint8)


def compare(a, b) -> dict:
    import numpy as np

    ma, mb = a >= 0.5, b >= 0.5
    total = int(ma.sum()) + int(mb.sum())
    dice = 2 * float(np.logical_and(ma, mb).sum()) / total if total else 1.0
    return {"agreement": round(float(np.mean(ma == mb)), 6), "dice": round(dice, 5),
            "max_abs_dp": round(float(np.abs(a - b).max()), 5)}  # fmt: skip


def timed(run: Callable[[], Any], sync: bool) -> tuple[float, Any]:
    import torch

    if sync:
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = run()
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - started, out


def predict_2d(ctx: dict) -> dict:
    from napari_bnadapt.inference import PredictConfig, predict
    from napari_bnadapt.model import load_model

    model = load_model("membranes-fibsem")
    volume = membranes(SHAPE[ctx["size"]])
    ctx["volume"], ctx["model_2d"] = volume, model
    sync = ctx["device"] == "cuda"
    voxels = volume.size
    predict(model, volume[:2], PredictConfig(device=ctx["device"]))  # CUDA start-up
    figures: dict[str, Any] = {"shape": list(volume.shape)}
    reference = None
    configs = {
        "fp32": PredictConfig(device=ctx["device"], precision="fp32"),
        "bf16": PredictConfig(device=ctx["device"], precision="bf16"),
        "fp16": PredictConfig(device=ctx["device"], precision="fp16"),
        "auto": PredictConfig(device=ctx["device"]),
        "fp32_old_tiling": PredictConfig(device=ctx["device"], tile_shape=256, overlap=0.25,
                                         batch_size=8, precision="fp32", channels_last=False,
                                         fold_batchnorm=False),
    }  # fmt: skip
    for name, config in configs.items():
        seconds, result = timed(lambda c=config: predict(model, volume, c), sync)
        row = {"seconds": round(seconds, 3), "mvoxel_per_s": round(voxels / seconds / 1e6, 2),
               "execution": result.execution.describe()}  # fmt: skip
        if reference is None:
            reference = result.probabilities
        else:
            row.update(compare(result.probabilities, reference))
        figures[name] = row
    monai = monai_seconds(model, volume, ctx["device"])
    if monai is not None:
        figures["monai_fp32"] = {"seconds": round(monai, 3),
                                 "mvoxel_per_s": round(voxels / monai / 1e6, 2)}  # fmt: skip
        figures["auto_vs_monai"] = round(monai / figures["auto"]["seconds"], 2)
    return figures


def monai_seconds(model, volume, device: str) -> float | None:
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        return None
    import torch

    from napari_bnadapt.model.unet import run_padded

    spec, module = model.normalization, model.module.to(device).eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for z in range(volume.shape[0]):
            x = torch.from_numpy((volume[z : z + 1, None].astype("float32") - spec.mean)
                                 / spec.std).to(device)  # fmt: skip
            logits = sliding_window_inference(
                x, (256, 256), 8, lambda t: run_padded(module, t, model.divisor),
                overlap=0.25, mode="gaussian",
            )  # fmt: skip
            torch.sigmoid(logits).cpu()
    return time.perf_counter() - started


def train_3d(ctx: dict) -> dict:
    from napari_bnadapt.synthetic import SOURCE, make_volume
    from napari_bnadapt.training import TrainConfig, train

    dry = ctx["size"] == "dry"
    image, labels = make_volume((48, 96, 96) if not dry else (16, 32, 32), SOURCE, seed=3)
    steps = 150 if not dry else 2
    config = TrainConfig(dims=3, steps=steps, batch_size=2, patch_size=32 if dry else 64,
                         depth=3 if not dry else 2, base_channels=16 if not dry else 4,
                         device=ctx["device"], validate_every=steps)  # fmt: skip
    seconds, result = timed(lambda: train([image], [labels], config), ctx["device"] == "cuda")
    ctx["model_3d"] = result.model
    last = result.history[-1] if result.history else {}
    return {"steps": steps, "seconds_per_step": round(seconds / steps, 4),
            "validation_dice": last.get("val_dice")}  # fmt: skip


def predict_3d(ctx: dict) -> dict:
    from napari_bnadapt.inference import PredictConfig, predict

    model = ctx["model_3d"]
    volume = membranes(SHAPE_3D[ctx["size"]], seed=4)
    sync = ctx["device"] == "cuda"
    figures: dict[str, Any] = {"shape": list(volume.shape)}
    reference = None
    for name in ("fp32", "bf16", "auto"):
        config = PredictConfig(device=ctx["device"], precision=name)
        seconds, result = timed(lambda c=config: predict(model, volume, c), sync)
        row = {"seconds": round(seconds, 3),
               "mvoxel_per_s": round(volume.size / seconds / 1e6, 2),
               "execution": result.execution.describe()}  # fmt: skip
        if reference is None:
            reference = result.probabilities
        else:
            row.update(compare(result.probabilities, reference))
        figures[name] = row
    return figures


def stream_resampled(ctx: dict) -> dict:
    import numpy as np

    from napari_bnadapt.blockwise.stream import StreamConfig, predict_to_zarr
    from napari_bnadapt.inference import PredictConfig, predict
    from napari_bnadapt.io.volumes import read_volume

    model, volume = ctx["model_2d"], ctx["volume"]
    size = (30.0, 7.3, 7.3)  # the model's 10 nm: resampled in plane, block by block
    config = PredictConfig(device=ctx["device"], precision="fp32")
    block = (8, 300, 300) if ctx["size"] == "full" else (2, 40, 40)
    with tempfile.TemporaryDirectory() as folder:
        seconds, result = timed(
            lambda: predict_to_zarr(model, volume, Path(folder) / "m.zarr", config,
                                    stream=StreamConfig(block=block),
                                    voxel_size=size),
            ctx["device"] == "cuda",
        )  # fmt: skip
        streamed = np.asarray(read_volume(result.out).data)
    memory = predict(model, volume, config, voxel_size=size)
    return {"blocks": result.blocks, "seconds": round(seconds, 3),
            "zoom": [round(z, 4) for z in result.zoom],
            "masks_equal_in_memory": bool(np.array_equal(streamed, memory.mask)),
            "differing_voxels": int(np.count_nonzero(streamed != memory.mask))}  # fmt: skip


def adapt_on_device(ctx: dict) -> dict:
    import torch

    from napari_bnadapt.adapt import AdaptConfig, adapt

    model, volume = ctx["model_2d"], ctx["volume"]
    patches = 64 if ctx["size"] == "full" else 8
    on_device = AdaptConfig(device=ctx["device"], patches=patches)
    seconds, result = timed(lambda: adapt(model, volume, on_device), ctx["device"] == "cuda")
    cpu_seconds, cpu = timed(lambda: adapt(model, volume, AdaptConfig(device="cpu",
                                                                      patches=patches)), False)  # fmt: skip
    diffs = [
        float((a.float().cpu() - b.float().cpu()).abs().max())
        for (name, a), (_, b) in zip(result.model.module.state_dict().items(),
                                     cpu.model.module.state_dict().items())
        if "running" in name
    ]  # fmt: skip
    ctx["adapted"] = result.model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return {"patches": patches, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "max_abs_statistics_difference_vs_cpu": max(diffs) if diffs else None}  # fmt: skip


def strokes_on_device(ctx: dict) -> dict:
    """The stroke cure on the device and on the CPU, from the same strokes: lines across
    one slice, foreground on the generator's dark membranes, background elsewhere."""
    import numpy as np

    from napari_bnadapt.adapt import AdaptConfig, adapt
    from napari_bnadapt.inference import PredictConfig, predict

    model, volume = ctx["model_2d"], ctx["volume"]
    full = ctx["size"] == "full"
    strokes = np.zeros(volume.shape, np.uint8)
    rows = range(8, volume.shape[1] - 8, max(8, volume.shape[1] // 8))
    for row in rows:  # the generator's membranes are about 60, the rest about 170
        strokes[1, row, 4:-4] = np.where(volume[1, row, 4:-4] < 115, 2, 1)
    patches, steps = (64, 200) if full else (8, 5)

    def cure(device: str):
        config = AdaptConfig(cure="adabn+strokes", device=device, patches=patches,
                             stroke_steps=steps)  # fmt: skip
        return adapt(model, volume, config, strokes=strokes)

    seconds, result = timed(lambda: cure(ctx["device"]), ctx["device"] == "cuda")
    cpu_seconds, cpu = timed(lambda: cure("cpu"), False)
    check = volume[:4]
    on_device = predict(result.model, check, PredictConfig(device=ctx["device"])).probabilities
    on_cpu = predict(cpu.model, check, PredictConfig(device="cpu")).probabilities
    details, cpu_details = result.record.details["strokes"], cpu.record.details["strokes"]
    return {"labelled_pixels": int((strokes > 0).sum()), "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu_seconds, 3), "cure_seconds": details["seconds"],
            "steps": details["steps"], "cpu_steps": cpu_details["steps"],
            "kept": details["guard"]["kept"], "cpu_kept": cpu_details["guard"]["kept"],
            "held_out_after": details["held_out_after"]["accuracy"],
            "masks_vs_cpu": compare(on_device, on_cpu)}  # fmt: skip


def report_on_device(ctx: dict) -> dict:
    from napari_bnadapt.adapt import AdaptConfig
    from napari_bnadapt.diagnostics.latents import LatentConfig
    from napari_bnadapt.inference import PredictConfig
    from napari_bnadapt.report import build_report, write_report

    model, volume = ctx["model_2d"], ctx["volume"][:4]
    device = ctx["device"]
    with tempfile.TemporaryDirectory() as folder:
        seconds, report = timed(
            lambda: build_report(model, volume, ctx.get("adapted"),
                                 adapt_config=AdaptConfig(device=device, patches=16),
                                 predict_config=PredictConfig(device=device),
                                 latent_config=LatentConfig(device=device, patches=16)),
            device == "cuda",
        )  # fmt: skip
        files = write_report(report, folder)
    return {"seconds": round(seconds, 3), "files": len(files),
            "agreement_dice_before_after": round(report.quality.agreement_dice, 4)}  # fmt: skip


def out_of_memory(ctx: dict) -> dict:
    """Batches too large for the memory: halved until they fit, same masks. On the GPU a
    memory cap makes it happen; on the CPU a network that refuses large batches."""
    import numpy as np
    import torch

    from napari_bnadapt.inference import PredictConfig, predict

    model, volume = ctx["model_2d"], ctx["volume"][:8]
    notes: list[str] = []
    tile = 256 if ctx["size"] == "full" else 32
    big = PredictConfig(device=ctx["device"], precision="fp32", tile_shape=tile, batch_size=64)
    plain = predict(model, volume, replace(big, batch_size=1))
    if ctx["device"] == "cuda":
        torch.cuda.empty_cache()
        cap = 1.5 * 2**30 / torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(cap)
        try:
            halved = predict(model, volume, big,
                             progress=lambda p: notes.append(p.message))  # fmt: skip
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
            torch.cuda.empty_cache()
        how = "GPU memory capped at 1.5 GiB"
    else:
        fussy = model.copy()
        fussy.module = refusing(fussy.module, most=3)
        halved = predict(fussy, volume, big, progress=lambda p: notes.append(p.message))
        how = "CPU, a network that raises 'out of memory' above 3 tiles"
    seen = sorted({n for n in notes if "out of memory" in n})
    return {"how": how, "notes": seen[-3:], "halved": bool(seen),
            "masks_equal": bool(np.array_equal(halved.mask, plain.mask))}  # fmt: skip


def refusing(module: Any, most: int) -> Any:
    """``module`` behind a check that raises torch's out-of-memory error for batches of
    more than ``most`` tiles (torch is imported here: the script runs without it)."""
    import torch

    class Refusing(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > most:
                raise RuntimeError("CPU out of memory (simulated)")
            return self.inner(x)

    return Refusing()


# -- summary ---------------------------------------------------------------------------------


def print_summary(results: dict) -> None:
    print(f"\nGPU check ({results.get('mode', 'not run')}; torch {results.get('torch')}, "
          f"CUDA available: {results.get('cuda_available')})")  # fmt: skip
    for name, figures in results.get("steps", {}).items():
        print(f"  {name:<17} {figures.get('status', '')}")
        for key, value in figures.items():
            if key in ("status", "traceback"):
                continue
            if isinstance(value, dict):
                brief = ", ".join(f"{k} {v}" for k, v in value.items() if k != "execution")
                print(f"      {key}: {brief}")
            else:
                print(f"      {key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
