"""Test tensors: a sample input in a package's shape, and what the model makes of it.

bioimage.io packages carry one input and the output the model gives for it, so that any
consumer can check it runs the model as its authors did. Here the input is a crop of the
user's image (by default a synthetic EM-like image) in a size the network accepts, and the
output is this package's own prediction of it: one tile, no blending, exactly the
network's answer. :func:`check_test_tensors` runs the comparison the other way round, for
``bnadapt info`` on an imported package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..inference import PredictConfig, predict
from ..model.loaded import LoadedModel
from ..synthetic import make_dataset

#: Largest spatial size of a test tensor per axis: small files, seconds to test.
MAX_SIZE = {2: 256, 3: 64}


@dataclass(frozen=True)
class TestTensors:
    """A package's sample input ``(1, C, *spatial)`` (raw intensities) and output
    ``(1, K, *spatial)`` (probabilities)."""

    __test__ = False  # not a pytest class, despite the name

    input: np.ndarray
    output: np.ndarray


@dataclass(frozen=True)
class TestTensorCheck:
    """How far this package's prediction is from a package's stored test output."""

    __test__ = False

    max_abs_difference: float
    tolerance: float

    @property
    def reproduced(self) -> bool:
        return self.max_abs_difference <= self.tolerance

    def summary(self) -> str:
        verdict = "reproduced" if self.reproduced else "NOT reproduced"
        return (
            f"test tensors:   {verdict} (max |Δp| {self.max_abs_difference:.2g}, "
            f"tolerance {self.tolerance:g})"
        )


def sample_crop(model: LoadedModel, image: Any | None, min_size: int, step: int) -> np.ndarray:
    """A centred crop of ``image`` (``(C,) [Z,] Y, X``, numpy or dask: only the crop is
    read) whose spatial sizes the network takes (``min_size + k * step``); a synthetic
    image when ``image`` is None."""
    dims = model.dims
    if image is None:
        shape = (MAX_SIZE[dims],) * dims
        images, _ = make_dataset(model.in_channels, shape, seed=0)
        image = images[0] if model.in_channels == 1 else images
    lead = 1 if model.in_channels > 1 else 0
    spatial = tuple(int(n) for n in image.shape[lead:])
    index: list[Any] = [slice(None)] * lead
    if len(spatial) == dims + 1 and dims == 2:  # a stack for a 2D model: its middle slice
        index.append(spatial[0] // 2)
        spatial = spatial[1:]
    if len(spatial) != dims or (lead and image.shape[0] != model.in_channels):
        raise InputDataError(
            f"the sample has shape {tuple(image.shape)}: a {dims}D model with "
            f"{model.in_channels} channel(s) needs a (C,) [Z,] Y, X image"
        )
    sizes = tuple(_allowed(min(n, MAX_SIZE[dims]), min_size, step) for n in spatial)
    if any(s is None for s in sizes):
        raise InputDataError(
            f"the sample ({'×'.join(map(str, spatial))}) is smaller than the network's "
            f"smallest input ({min_size} per axis): choose a larger image"
        )
    index += [slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(spatial, sizes)]
    crop = np.asarray(image[tuple(index)], dtype=np.float32)
    return crop.reshape((1, model.in_channels, *sizes))


def make_test_tensors(model: LoadedModel, crop: np.ndarray) -> TestTensors:
    """``crop`` (``(1, C, *spatial)``) and the model's probabilities for it, as one tile."""
    spatial = crop.shape[2:]
    probabilities = predict(model, image_of(model, crop), one_tile(crop)).probabilities
    if probabilities.ndim == len(spatial):
        probabilities = probabilities[None]
    return TestTensors(crop, probabilities[None].astype(np.float32))


def one_tile(crop: np.ndarray) -> PredictConfig:
    """Prediction of ``crop`` as one tile: exactly the network's answer, no blending."""
    return PredictConfig(tile_shape=tuple(crop.shape[2:]), overlap=0.0, batch_size=1, device="cpu")


def image_of(model: LoadedModel, crop: np.ndarray) -> np.ndarray:
    """A ``(1, C, *spatial)`` test tensor as the image the engine takes (``(C,)`` spatial)."""
    return crop[0] if model.in_channels > 1 else crop[0, 0]


def check_test_tensors(model: LoadedModel, tolerance: float = 1e-3) -> TestTensorCheck | None:
    """Predict a package's stored test input and compare with its stored output (None
    when ``model`` is not a package or it carries no readable test tensors)."""
    facts = model.metadata.get("bioimageio") or {}
    if not facts.get("source"):
        return None
    tensors = _stored_test_tensors(Path(facts["source"]))
    if tensors is None:
        return None
    ours = make_test_tensors(model, tensors.input)
    if ours.output.shape != tensors.output.shape:
        return TestTensorCheck(float("inf"), tolerance)
    return TestTensorCheck(float(np.abs(ours.output - tensors.output).max()), tolerance)


def _stored_test_tensors(path: Path) -> TestTensors | None:
    """The first input and output test tensor of the package at ``path``, canonical axes."""
    from bioimageio.core.digest_spec import get_test_input_sample, get_test_output_sample

    from ..model.package import read_description

    descr = read_description(path)
    try:
        inputs = get_test_input_sample(descr)
        outputs = get_test_output_sample(descr)
    except Exception:  # a package without readable test tensors: nothing to compare
        return None
    return TestTensors(_canonical(inputs, descr.inputs[0]), _canonical(outputs, descr.outputs[0]))


def _canonical(sample: Any, tensor: Any) -> np.ndarray:
    """One member of a bioimageio.core sample as ``(1, C, [Z,] Y, X)``."""
    data = sample.members[tensor.id].data
    order = [a for a in ("batch", "channel", "z", "y", "x") if a in data.dims]
    array = data.transpose(*order).values
    if "batch" not in order:
        array = array[None]
    return np.asarray(array, dtype=np.float32)


def _allowed(size: int, min_size: int, step: int) -> int | None:
    """The largest ``min_size + k * step`` not above ``size`` (None if none is)."""
    if size < min_size:
        return None
    return min_size + (size - min_size) // max(step, 1) * max(step, 1)
