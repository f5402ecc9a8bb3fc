import numpy as np
import pytest

from napari_bnadapt.synthetic import (
    SHIFTS,
    SOURCE,
    Domain,
    make_dataset,
    make_masks,
    make_volume,
    render,
)


def test_masks_have_the_requested_foreground_fraction_2d_and_3d():
    masks2d = make_masks(20, (64, 64), seed=0, foreground_fraction=0.3)
    masks3d = make_masks(2, (16, 32, 32), seed=0, foreground_fraction=0.5)
    assert masks2d.dtype == np.uint8 and set(np.unique(masks2d)) == {0, 1}
    assert abs(masks2d.mean() - 0.3) < 0.03
    assert abs(masks3d.mean() - 0.5) < 0.05


def test_masks_are_structures_not_salt_and_pepper():
    mask = make_masks(1, (128, 128), seed=1)[0].astype(int)
    # Neighbouring pixels agree far more often than for independent noise (50 %).
    agreement = (mask[:, 1:] == mask[:, :-1]).mean()
    assert agreement > 0.9


def test_foreground_and_background_means_follow_mu1_mu2():
    domain = Domain(mu_foreground=0.2, mu_background=0.7, sigma=0.05, blur=0.0)
    masks = make_masks(10, (64, 64), seed=2)
    images = render(masks, domain, seed=3, dtype="float32")
    assert images[masks == 1].mean() == pytest.approx(0.2, abs=0.01)
    assert images[masks == 0].mean() == pytest.approx(0.7, abs=0.01)
    assert images[masks == 1].std() == pytest.approx(0.05, abs=0.01)


def test_gamma_and_contrast_change_intensities_as_documented():
    masks = make_masks(4, (32, 32), seed=0)
    base = render(masks, SOURCE.shifted(sigma=0.0, blur=0.0), seed=0, dtype="float32")
    gamma = render(masks, SOURCE.shifted(sigma=0.0, blur=0.0, gamma=2.0), seed=0, dtype="float32")
    np.testing.assert_allclose(gamma, base**2, atol=1e-6)


def test_same_seed_same_data_and_shifts_keep_the_masks():
    a_images, a_masks = make_dataset(3, (32, 32), SOURCE, seed=5)
    b_images, _b_masks = make_dataset(3, (32, 32), SOURCE, seed=5)
    np.testing.assert_array_equal(a_images, b_images)
    shifted, shifted_masks = make_dataset(3, (32, 32), SHIFTS["brightness"], seed=5)
    np.testing.assert_array_equal(shifted_masks, a_masks)
    assert shifted.mean() > a_images.mean()


def test_volume_is_uint8_with_matching_mask():
    image, mask = make_volume((8, 32, 32), seed=0)
    assert image.shape == mask.shape == (8, 32, 32) and image.dtype == np.uint8
