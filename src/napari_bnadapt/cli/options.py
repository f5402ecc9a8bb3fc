"""Option groups shared by several ``bnadapt`` commands."""

from __future__ import annotations

import argparse
import math

from ..io.containers import MISSING_CHUNKS
from ..io.ome_zarr_writer import OME_VERSIONS
from ..predict_config import AMP, DEFAULT_BLOCK, DEFAULT_TILE, PRECISIONS, PredictConfig

PREDICT = PredictConfig()


def finite_float(text: str) -> float:
    """An argparse type: a finite number (NaN and infinity are refused, in one line)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


DEVICE_HELP = "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps (default: auto)"


def add_key_option(parser: argparse.ArgumentParser) -> None:
    """Which array of a container, and what a chunk it lacks reads as."""
    parser.add_argument(
        "--key",
        help="the array inside a zarr, N5 or HDF5 container, e.g. raw or s0 (default: the "
        "only array, or level 0 of an OME-Zarr image; several arrays need a choice)",
    )
    parser.add_argument(
        "--missing-chunks", choices=MISSING_CHUNKS, default="error",
        help="a chunk a container does not store: error (name it and stop: the copy may be "
        "incomplete) or zero (read it as zeros, for stores written without their empty "
        "chunks) (default: error)",
    )  # fmt: skip


def add_scale_options(parser: argparse.ArgumentParser) -> None:
    """How the input's voxel size is known, and whether to resample to the model's."""
    parser.add_argument(
        "--voxel-size",
        help="the input's voxel size in nm, one value per spatial axis (z,y,x or y,x) or one "
        "for all, e.g. 50,4.6,4.6 (default: from the file's metadata)",
    )
    parser.add_argument(
        "--no-rescale", action="store_true",
        help="do not resample the input to the model's training voxel size",
    )  # fmt: skip


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    """Options of :class:`PredictConfig`, shared by the commands that segment."""
    add_scale_options(parser)
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument(
        "--tile", type=int,
        help="tile edge in pixels at the model's voxel size, fitted to the image; tiles "
        "overlap by what the network needs (default: "
        f"{DEFAULT_TILE[2]} for 2D, {DEFAULT_TILE[3]} for 3D models)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int,
        help="tiles per forward pass (default: about a million voxels, four on a GPU)",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=finite_float,
        help="foreground probability threshold of binary models (default: the model's own: "
        "0.5, unless a bioimage.io package binarises at another value)",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS,
        help="arithmetic of the network: auto (the fastest on this machine, bf16 where the "
        "CPU or GPU computes it natively, if its masks agree with fp32's on sample tiles of "
        "the input; fp32 for small inputs), fp32, bf16 (bfloat16) or fp16 (CUDA only) "
        f"(default: {PREDICT.precision})",
    )  # fmt: skip
    parser.add_argument(
        "--amp", choices=[a for a in AMP if a],
        help="the same as --precision bf16 or fp16 (kept for older scripts)",
    )  # fmt: skip
    parser.add_argument(
        "--slice-axis", type=int, choices=(0, 1, 2),
        help="axis a 2D model cuts a volume across: 0 = z (default: the model's training axis)",
    )  # fmt: skip


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """Streaming (``--out x.zarr``) and distributed prediction."""
    parser.add_argument(
        "--block",
        help="for .zarr output: the block predicted at once and the output's chunks, z,y,x "
        "in pixels or one value for all (default: "
        f"{','.join(map(str, DEFAULT_BLOCK[2]))} for 2D, {','.join(map(str, DEFAULT_BLOCK[3]))} for 3D models)",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="for .zarr output: continue an interrupted run, keeping the blocks it wrote",
    )  # fmt: skip
    add_cluster_options(parser, "for .zarr output: predict the blocks")
    parser.add_argument(
        "--flat-memory", action="store_true",
        help="for .zarr output: keep the peak memory flat over very long runs (large buffers "
        "are returned to the system at once; slower: see docs/scale.md)",
    )  # fmt: skip
    parser.add_argument(
        "--ome-zarr-version", choices=OME_VERSIONS,
        help="OME-Zarr version written: 0.5 (zarr v3) or 0.4 (zarr v2, older readers) "
        "(default: 0.5)",
    )  # fmt: skip


def add_cluster_options(parser: argparse.ArgumentParser, what: str) -> None:
    """Where the work runs: ``--workers N`` local processes or a dask ``--scheduler``."""
    parser.add_argument(
        "--workers", type=int,
        help=f"{what} on N local dask.distributed worker processes (default: this process)",
    )  # fmt: skip
    parser.add_argument(
        "--scheduler",
        help=f"{what} on the workers of a running dask scheduler at this address (e.g. "
        "tcp://10.0.0.1:8786, started by dask-jobqueue on SLURM, Kubernetes or Coiled)",
    )


def add_architecture_options(parser: argparse.ArgumentParser) -> None:
    """A plain state_dict as --model: the network class that reads it."""
    parser.add_argument(
        "--architecture",
        help="when the model file is a plain state_dict: the network's class in an installed "
        "library, e.g. monai.networks.nets.UNet or segmentation_models_pytorch.Unet "
        "(no code is read from the file)",
    )
    parser.add_argument(
        "--architecture-args",
        help="""the class's keyword arguments as JSON, e.g. '{"spatial_dims": 2, "in_channels": 1, """
        """"out_channels": 1, "channels": [16, 32, 64], "strides": [2, 2]}'""",
    )
    parser.add_argument(
        "--trust-code", action="store_true",
        help="allow a bioimage.io package whose network is built by Python code shipped in "
        "the package (importing it runs that code: only for packages whose authors you trust)",
    )  # fmt: skip
