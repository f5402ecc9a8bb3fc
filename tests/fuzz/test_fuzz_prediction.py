"""Tiling, prediction and adaptation fuzzed: any shape, dtype, tile and overlap; targets
smaller than a patch, constant images, ROIs that select nothing."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.errors import BnAdaptError
from napari_bnadapt.inference import PredictConfig, predict

DTYPES = ["bool", "int8", "uint8", "uint16", "int32", "float16", "float32", "float64"]


def images(min_dims: int, max_dims: int, max_side: int) -> st.SearchStrategy[np.ndarray]:
    return st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(
            np.dtype(dtype),
            hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side),
            elements=None,
        )
    )


def outcome(call):
    """The call's result, or the project error's message (one line); anything else fails."""
    try:
        return call()
    except BnAdaptError as exc:
        assert "\n" not in str(exc)
        return str(exc)


# Found by fuzzing: a finite float64 value beyond float32 gave a misleading "NaN" message.
@example(image=np.array([[1.36112943e40]]), tile=1, overlap=0.0, slice_axis=None, batch=1)
@given(
    image=images(2, 3, 40),
    tile=st.integers(1, 48),
    overlap=st.floats(0, 0.9),
    slice_axis=st.sampled_from([None, 0, 1, 2]),
    batch=st.integers(1, 5),
)
def test_a_2d_model_on_any_image_or_stack(small_model_2d, image, tile, overlap, slice_axis, batch):
    assume(image.size / min(tile, 40) ** 2 <= 400)  # keep each case to a few hundred tiles
    config = PredictConfig(
        device="cpu", tile_shape=tile, overlap=overlap, batch_size=batch,
        slice_axis=slice_axis if image.ndim == 3 else None,
    )  # fmt: skip
    result = outcome(lambda: predict(small_model_2d, image, config))
    if not isinstance(result, str):
        assert result.mask.shape == image.shape
        assert np.all((result.probabilities >= 0) & (result.probabilities <= 1))
    elif image.dtype.kind != "f" or np.isfinite(image.astype(np.float64)).all():
        # A finite image is refused only when its values overflow the network.
        assert "intensities" in result, result


@given(image=images(3, 3, 12), tile=st.integers(1, 16), overlap=st.floats(0, 0.5))
def test_a_3d_model_on_thin_volumes(small_model_3d, image, tile, overlap):
    config = PredictConfig(device="cpu", tile_shape=tile, overlap=overlap)
    result = outcome(lambda: predict(small_model_3d, image, config))
    if not isinstance(result, str):
        assert result.mask.shape == image.shape


# Found by fuzzing: a target or patch below twice the down-sampling raised torch's ValueError.
@example(
    target=np.zeros((8, 8), bool),
    constant=False,
    patches=1,
    patch_size=4,
    roi="none",
    cure="adabn",
)
@example(
    target=np.zeros((1, 1), bool),
    constant=False,
    patches=1,
    patch_size=64,
    roi="none",
    cure="adabn",
)
@given(
    target=images(2, 3, 48),
    constant=st.booleans(),
    patches=st.integers(1, 8),
    patch_size=st.integers(4, 64),
    roi=st.sampled_from(["none", "empty", "full", "random"]),
    cure=st.sampled_from(["adabn", "alpha-entropy"]),
)
def test_adaptation_on_small_constant_or_masked_targets(
    small_model_2d, target, constant, patches, patch_size, roi, cure
):
    if constant:
        target = np.full_like(target, target.flat[0])
    masks = {
        "none": None,
        "empty": np.zeros(target.shape, bool),
        "full": np.ones(target.shape, bool),
        "random": np.random.default_rng(0).random(target.shape) > 0.7,
    }
    config = AdaptConfig(patches=patches, patch_size=patch_size, batch_size=4, cure=cure)
    before = {k: v.clone() for k, v in small_model_2d.module.state_dict().items()}
    result = outcome(lambda: adapt(small_model_2d, target, config, roi=masks[roi]))
    after = small_model_2d.module.state_dict()
    assert all((after[k] == before[k]).all() for k in before), "the input model never changes"
    if not isinstance(result, str):
        assert result.model.adaptation is not None
        for stats in result.model.source_stats.values():
            assert all(np.isfinite(v.numpy()).all() for v in stats.values())
