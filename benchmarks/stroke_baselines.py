"""What else a user could do with the same strokes, for benchmarks/strokes.py.

- :func:`forest`: a random forest (scikit-learn, 100 trees, balanced classes) on an
  ilastik-like filter bank (:func:`skimage.feature.multiscale_basic_features`: smoothed
  intensity, edges and Hessian texture at five scales from 0.7 to 10 px) of the target's
  own pixels, as ilastik's pixel classification or napari-convpaint's classic features do;
- :func:`scratch`: the same U-Net as the source, trained from random weights on the strokes
  alone (the stroke cure's loss and patches, BatchNorm in training mode, 400 steps), then
  AdaBN on the target.
"""

from __future__ import annotations

import numpy as np
import torch
from real_em import CPU, Volume
from scipy import ndimage as ndi
from skimage.feature import multiscale_basic_features
from sklearn.ensemble import RandomForestClassifier

from napari_bnadapt.adabn.sampling import sample_target
from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.adapt.stroke_cure import read_stroke_batch
from napari_bnadapt.adapt.stroke_training import StrokeBatch, _augment, stroke_loss
from napari_bnadapt.adapt.strokes import FOREGROUND, prepare_strokes
from napari_bnadapt.arrays.normalization import fit_fixed_spec
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model.loaded import wrap_unet
from napari_bnadapt.model.unet import UNet, UNetConfig

FILTERS = {"intensity": True, "edges": True, "texture": True, "sigma_min": 0.7,
           "sigma_max": 10.0, "num_sigma": 5}  # fmt: skip
SCRATCH_STEPS = 400


def features(image: np.ndarray, probability: np.ndarray | None = None) -> np.ndarray:
    bank = multiscale_basic_features(image.astype(np.float32) / 255.0, **FILTERS)
    if probability is None:
        return bank
    smoothed = [probability] + [ndi.gaussian_filter(probability, s) for s in (1, 2, 4)]
    return np.concatenate([bank, np.stack(smoothed, -1)], -1)


def forest(target: Volume, strokes: np.ndarray, seed: int, network=None) -> np.ndarray:
    """The forest's masks of the held-out slices, trained on the strokes' pixels (with
    ``network``, its probability maps are features as well)."""
    painted = np.flatnonzero(strokes.reshape(len(strokes), -1).any(axis=1))
    train = probabilities(network, target, target.train[painted])
    xs, ys = [], []
    for i, z in enumerate(painted):
        where = strokes[z] > 0
        xs.append(features(target.train[z], None if train is None else train[i])[where])
        ys.append(strokes[z][where])
    model = RandomForestClassifier(
        n_estimators=100, n_jobs=2, random_state=seed, class_weight="balanced"
    ).fit(np.concatenate(xs), np.concatenate(ys))
    column = list(model.classes_).index(FOREGROUND)
    test = probabilities(network, target, target.test)
    masks = []
    for i, image in enumerate(target.test):
        bank = features(image, None if test is None else test[i])
        found = model.predict_proba(bank.reshape(-1, bank.shape[-1]))
        masks.append((found[:, column] >= 0.5).reshape(image.shape))
    return np.stack(masks).astype(np.uint8)


def probabilities(network, target: Volume, images: np.ndarray) -> np.ndarray | None:
    if network is None:
        return None
    config = PredictConfig(**CPU)
    return predict(network, images, config, voxel_size=target.voxel_size).probabilities


def scratch(source, target: Volume, strokes: np.ndarray, seed: int) -> np.ndarray:
    """A U-Net of the source's shape trained from scratch on the strokes, then AdaBN."""
    torch.manual_seed(seed)
    unet = UNet(
        UNetConfig(dims=2, depth=source.config.depth, base_channels=source.config.base_channels)
    )
    spec = fit_fixed_spec([target.train])
    metadata = {"name": "scratch", "voxel_size": list(source.voxel_size), "patch_size": [64, 64]}
    model = wrap_unet(unet, spec, metadata)
    painted = prepare_strokes(model, strokes, target.train, target.voxel_size, None, seed)
    painted.held_out[:] = False  # nothing to hold out: every stroke trains
    targets = sample_target(model, target.train, 64, None, seed, None, None, target.voxel_size)[0]
    batch = read_stroke_batch(model, targets, painted, AdaptConfig(**CPU), torch.device("cpu"))
    train(unet, batch, seed)
    trained = wrap_unet(unet.eval(), spec, metadata)
    adapted = adapt(trained, target.train, AdaptConfig(**CPU), voxel_size=target.voxel_size).model
    return predict(adapted, target.test, PredictConfig(**CPU), voxel_size=target.voxel_size).mask


def train(unet: UNet, batch: StrokeBatch, seed: int) -> None:
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(unet.parameters(), lr=2e-3)
    unet.train()
    for _ in range(SCRATCH_STEPS):
        chosen = rng.choice(len(batch.inputs), min(8, len(batch.inputs)), replace=False)
        x, labels, where, _ = _augment(batch, chosen, rng, generator)
        loss = stroke_loss(unet(x), labels, where)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    unet.eval()
