import numpy as np
import pytest

from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.errors import InputDataError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.synthetic import SOURCE, make_dataset
from napari_bnadapt.training import TrainConfig, train


def test_training_reduces_the_loss_and_segments_synthetic_data():
    images, masks = make_dataset(24, (64, 64), SOURCE, seed=0)
    config = TrainConfig(steps=120, batch_size=8, patch_size=48, depth=2, base_channels=8,
                         validate_every=40, device="cpu", seed=0)  # fmt: skip
    result = train(list(images), list(masks), config)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    test_images, test_masks = make_dataset(2, (64, 64), SOURCE, seed=99)
    scores = [
        dice(predict(result.model, im, PredictConfig(device="cpu")).mask, m)
        for im, m in zip(test_images, test_masks)
    ]
    assert np.mean(scores) > 0.85
    assert result.model.normalization.mode == "fixed"
    # the fixed normalisation is measured on the training part (the last 10 % validate)
    assert result.model.normalization.mean == pytest.approx(images[:-2].mean(), rel=1e-6)
    assert result.model.source_stats  # source statistics recorded for reset


def test_training_is_reproducible_from_the_seed():
    images, masks = make_dataset(4, (32, 32), SOURCE, seed=0)
    config = TrainConfig(
        steps=5,
        batch_size=2,
        patch_size=32,
        depth=1,
        base_channels=4,
        device="cpu",
        validate_every=5,
    )
    a = train(list(images), list(masks), config).model.module.state_dict()
    b = train(list(images), list(masks), config).model.module.state_dict()
    assert all((a[k] == b[k]).all() for k in a)


def test_3d_training_runs_on_a_volume():
    images, masks = make_dataset(1, (24, 32, 32), SOURCE, seed=0)
    config = TrainConfig(
        dims=3,
        steps=3,
        batch_size=2,
        patch_size=16,
        depth=1,
        base_channels=4,
        device="cpu",
        validate_every=3,
    )
    result = train(list(images), list(masks), config)
    assert result.model.dims == 3 and len(result.history) == 1


def test_mismatched_labels_are_refused():
    with pytest.raises(InputDataError, match="labels must match"):
        train([np.zeros((32, 32))], [np.zeros((16, 16))], TrainConfig(steps=1))
    with pytest.raises(InputDataError, match="2 images but 1"):
        train([np.zeros((32, 32))] * 2, [np.zeros((32, 32))], TrainConfig(steps=1))
