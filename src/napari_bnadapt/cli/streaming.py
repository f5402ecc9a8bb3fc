"""``bnadapt predict --out x.zarr``: streaming, optionally distributed, prediction."""

from __future__ import annotations

import argparse
import contextlib
import ctypes

from ..blockwise.stream import StreamConfig, predict_to_zarr
from ..cluster import ClusterConfig
from ..errors import InputDataError
from ..inference import PredictConfig
from ..io.images import is_image_folder, read_named_image
from ..model.loaded import LoadedModel
from .common import given, note, printer, say_scale, voxel_size_of


def stream_prediction(args: argparse.Namespace, model: LoadedModel, config: PredictConfig) -> int:
    """Predict ``--input`` block by block into the OME-Zarr image ``--out``."""
    if is_image_folder(args.input):
        raise InputDataError(
            "a folder of images is segmented image by image into TIFF masks: give --out a "
            "folder name (not .zarr), or give one volume or container as --input"
        )
    image = read_named_image(args.input, args.key, args.missing_chunks)
    voxel_size = voxel_size_of(args, image)
    if args.probabilities and not str(args.probabilities).rstrip("/").endswith(".zarr"):
        raise InputDataError("with .zarr output, --probabilities must be a .zarr name too")
    stream = StreamConfig(
        block=parse_block(args.block),
        resume=args.resume,
        cluster=ClusterConfig(workers=args.workers, scheduler=args.scheduler),
        **given(args, "ome_zarr_version") and {"ome_version": args.ome_zarr_version},
    )
    source = image.source if image.source is not None else image.data
    if args.flat_memory:
        serve_large_buffers_from_mmap()
    result = predict_to_zarr(
        model, source, args.out, config, probabilities=args.probabilities, stream=stream,
        scale=image.voxel_size, unit="nm" if image.voxel_size else None, name=image.name,
        voxel_size=voxel_size, progress=printer(),
    )  # fmt: skip
    resumed = f", {result.resumed} kept from the interrupted run" if result.resumed else ""
    print(
        f"{image.name}: {result.shape} foreground {result.foreground_fraction:.1%} in "
        f"{result.blocks} blocks{resumed}, {result.seconds:.1f} s → {result.out}"
    )
    if result.execution is not None and result.execution.note:
        note(f"segmented with {result.execution.describe()}")
    say_scale(args, image, model)
    return 0


def parse_block(text: str | None) -> tuple[int, ...] | int | None:
    """``"4,2048,2048"`` → (4, 2048, 2048); one value stands for every axis."""
    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputDataError(
            f"--block {text!r}: give whole numbers z,y,x, e.g. 4,2048,2048"
        ) from None
    if len(values) not in (1, 3) or min(values) < 1:
        raise InputDataError(f"--block {text!r}: give one positive size or three (z,y,x)")
    return values[0] if len(values) == 1 else values


def serve_large_buffers_from_mmap(threshold: int = 4 * 1024**2) -> None:
    """In this process (the CLI's own), give buffers above ``threshold`` their own memory
    maps, returned to the system when freed.

    glibc otherwise raises its mmap threshold after the first large free and serves later
    buffers from its heap, whose freed pieces it keeps: over a 1 GB volume the peak memory
    crept up by 12 %; with a fixed threshold it stays flat (+0.8 %), but every large
    buffer (torch's activations too) is then mapped and zeroed afresh, which cost 60 % more
    time with a small network (docs/scale.md): hence ``--flat-memory``, not a default. The
    same as ``MALLOC_MMAP_THRESHOLD_=4194304``; a no-op without glibc (macOS, Windows).
    """
    with contextlib.suppress(OSError, AttributeError):
        m_mmap_threshold = -3  # glibc's mallopt parameter number
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, threshold)
