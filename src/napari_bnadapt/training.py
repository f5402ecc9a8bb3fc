"""Training the built-in U-Net on image/label pairs (BCE + Dice, Adam, flips/rotations)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .arrays.metrics import dice
from .arrays.normalization import (
    NormalizationSpec,
    check_finite,
    fit_fixed_spec,
    fit_normalizer,
)
from .device import resolve_device
from .diagnostics.fingerprinting import fingerprint_steps
from .diagnostics.latents import LatentConfig
from .errors import InputDataError
from .inference import PredictConfig, predict
from .jobs import Progress, Stages, Steps, blocking
from .memory import array_bytes, check_memory
from .model.loaded import LoadedModel, wrap_unet
from .model.sizing import build_within_budget
from .model.unet import UNet, UNetConfig
from .training_config import DEFAULT_PATCH as DEFAULT_PATCH  # re-exported
from .training_config import TrainConfig

#: Patches sampled from the training images for the model's fingerprint.
FINGERPRINT_PATCHES = 64


#: Full-resolution feature maps a training step keeps per patch (forward activations kept
#: for the backward pass, their gradients, Adam's state is per weight and small).
TRAINING_COPIES = 24


@dataclass
class TrainResult:
    """The trained model and its learning curve (one entry per validation)."""

    model: LoadedModel
    history: list[dict[str, float]] = field(default_factory=list)


def train_steps(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: TrainConfig | None = None,
    names: Sequence[str] | None = None,
    *,
    voxel_size: tuple[float, ...] | None = None,
) -> Steps[TrainResult]:
    """Train a :class:`UNet` on ``images``/``labels`` (labels: nonzero = foreground).

    For a 2D model each 2D image is a sample and a 3D stack is a set of slices; for a 3D
    model each item is a volume. A held-out part (the last images or slices, or the far
    end of a single image) gives the validation Dice. The trained model carries the
    fingerprint of its training images, with their ``voxel_size`` (nm), which prediction
    and adaptation then resample other data to. Yields a :class:`Progress` per step.
    """
    cfg = config or TrainConfig()
    check_memory(
        array_bytes((cfg.batch_size, *(cfg.patch,) * cfg.dims), 4)
        * cfg.base_channels
        * TRAINING_COPIES,
        f"training on batches of {cfg.batch_size} patches of {cfg.patch} px",
        "use a smaller --batch-size or --patch-size",
    )
    pieces = _split_pieces(images, labels, cfg.dims)
    train_set, val_set = _hold_out(pieces, cfg.validation_fraction, cfg.dims, cfg.patch)
    spec = _normalization_spec(cfg.normalization, [p[0] for p in train_set])
    metadata = _metadata(cfg, cfg.patch, names, voxel_size)
    fingerprinting = LatentConfig(patches=FINGERPRINT_PATCHES, device=cfg.device, seed=cfg.seed)
    stages = Stages(weights=[cfg.steps, fingerprinting.patches / fingerprinting.batch_size])
    unet, history = yield from stages.run(_optimise(train_set, val_set, spec, metadata, cfg))
    # The statistics at the end of training are the source statistics.
    model = wrap_unet(unet.cpu(), spec, metadata | {"history": history})
    model.fingerprint = yield from stages.run(
        fingerprint_steps(
            model, [p[0] for p in train_set], voxel_size=voxel_size,
            labels=[p[1] for p in train_set], config=fingerprinting,
            source_name=", ".join(names or []) or "training images",
        )
    )  # fmt: skip
    return TrainResult(model, history)


def _optimise(
    train_set: list, val_set: list, spec: NormalizationSpec, metadata: dict, cfg: TrainConfig
) -> Steps[tuple[UNet, list[dict[str, float]]]]:
    """The optimisation loop: the trained network and its learning curve."""
    # Normalise each training image once (its own normaliser: per-input for percentiles).
    train_set = [(fit_normalizer(spec, image)(image), label) for image, label in train_set]
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    config = UNetConfig(dims=cfg.dims, depth=cfg.depth, base_channels=cfg.base_channels)
    unet = build_within_budget(lambda: UNet(config), "the U-Net to train").to(device)
    optimizer = torch.optim.Adam(unet.parameters(), lr=cfg.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.steps))
    model = wrap_unet(unet, spec, metadata)
    history: list[dict[str, float]] = []
    running = None
    for step in range(1, cfg.steps + 1):
        unet.train()
        x, y = _sample_batch(train_set, cfg.batch_size, cfg.patch, cfg.dims, rng)
        logits = unet(torch.from_numpy(x).to(device))
        loss = bce_dice_loss(logits, torch.from_numpy(y).to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        message = f"step {step}/{cfg.steps} loss {running:.4f}"
        if step % cfg.validate_every == 0 or step == cfg.steps:
            score = _validate(model, val_set, cfg.device)
            history.append({"step": step, "loss": running, "val_dice": score})
            message += f" val Dice {score:.3f}"
        yield Progress(step, cfg.steps, message)
    unet.eval()
    return unet, history


train = blocking(train_steps, "train")


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice loss (1 − Dice) over the whole batch."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    probs = torch.sigmoid(logits)
    intersection = (probs * target).sum()
    soft_dice = (2 * intersection + 1.0) / (probs.sum() + target.sum() + 1.0)
    return bce + (1.0 - soft_dice)


def _split_pieces(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], dims: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Image/label pairs as 2D slices (2D model) or 3D volumes (3D model)."""
    if len(images) == 0:
        raise InputDataError("no training images were given: pass at least one image")
    if len(images) != len(labels):
        raise InputDataError(
            f"{len(images)} images but {len(labels)} label images: give one label image per image"
        )
    pieces = []
    for index, (image, label) in enumerate(zip(images, labels)):
        image, label = np.asarray(image), np.asarray(label)
        if image.shape != label.shape:
            raise InputDataError(
                f"image {index} has shape {image.shape} but its labels {label.shape}: "
                "labels must match their image pixel for pixel"
            )
        check_finite(image)
        if dims == 2 and image.ndim == 2:
            pieces.append((image, label))
        elif dims == 2 and image.ndim == 3:
            pieces += list(zip(image, label))
        elif dims == 3 and image.ndim == 3:
            pieces.append((image, label))
        else:
            raise InputDataError(
                f"image {index} has shape {image.shape}: a {dims}D model trains on "
                + ("2D images or 3D stacks" if dims == 2 else "3D volumes (Z, Y, X)")
            )
    return [(img, (lbl != 0).astype(np.float32)) for img, lbl in pieces]


def _hold_out(pieces: list, fraction: float, dims: int, patch: int) -> tuple[list, list]:
    """Split off validation data: the last pieces, or the far end of a single one."""
    if len(pieces) >= 2:
        n_val = max(1, round(fraction * len(pieces)))
        return pieces[:-n_val], pieces[-n_val:]
    image, label = pieces[0]
    cut = int(image.shape[-1] * (1 - max(fraction, 0.1)))
    if image.shape[-1] - cut < 8 or cut < min(patch, 16):
        return pieces, pieces  # too small to split: validate on the training image
    head, tail = image[..., :cut], image[..., cut:]
    return [(head, label[..., :cut])], [(tail, label[..., cut:])]


def _normalization_spec(mode: str, images: list[np.ndarray]) -> NormalizationSpec:
    if mode == "fixed":
        return fit_fixed_spec(images)
    return NormalizationSpec(mode=mode)


def _sample_batch(
    pieces: list,
    batch: int,
    patch: int,
    dims: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Random, augmented patches: ``(B, 1, *patch)`` image and label arrays."""
    xs, ys = [], []
    for _ in range(batch):
        image, label = pieces[rng.integers(len(pieces))]
        region = tuple(
            slice(start, start + patch)
            for start in (int(rng.integers(0, max(1, n - patch + 1))) for n in image.shape)
        )
        x, y = _pad_to(image[region], patch), _pad_to(label[region], patch)
        for axis in range(dims):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
        turns = int(rng.integers(4))
        x, y = np.rot90(x, turns, axes=(-2, -1)), np.rot90(y, turns, axes=(-2, -1))
        xs.append(x)
        ys.append(y)
    return (
        np.ascontiguousarray(np.stack(xs)[:, None], dtype=np.float32),
        np.ascontiguousarray(np.stack(ys)[:, None], dtype=np.float32),
    )


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    pads = [(0, max(0, size - n)) for n in array.shape]
    return (
        np.pad(array, pads, mode="reflect" if min(array.shape) > 1 else "edge")
        if any(p[1] for p in pads)
        else array
    )


def _validate(model: LoadedModel, val_set: list, device: str) -> float:
    scores = []
    for image, label in val_set:
        prediction = predict(model, image, PredictConfig(device=device))
        scores.append(dice(prediction.mask, label))
    return float(np.mean(scores))


def _metadata(
    cfg: TrainConfig, patch: int, names: Sequence[str] | None, voxel_size: tuple[float, ...] | None
) -> dict[str, Any]:
    return {
        "name": "unet",
        "training_axis": 0,
        "voxel_size": list(voxel_size) if voxel_size else None,
        "patch_size": [patch] * cfg.dims,
        "provenance": {
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "software": f"napari-bnadapt {__version__}",
            "training_images": list(names or []),
        },
        "training": asdict(cfg),
    }
