"""Patches at the model's voxel size from a lazy target: only what they need is read."""

from typing import ClassVar

import dask.array as da
import numpy as np

from napari_bnadapt.adabn.sampling import read_patches, sample_target
from napari_bnadapt.synthetic import SOURCE, make_volume


class Recording:
    """An array that notes every region read from it (module level: a dask graph holding
    it refers to this class, not to a copy)."""

    reads: ClassVar[list] = []

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim

    def __getitem__(self, index):
        Recording.reads.append(index)
        return self.data[index]


def test_lazy_target_is_resampled_patch_by_patch_as_in_memory(small_model_2d):
    small_model_2d.metadata["voxel_size"] = [4.0, 4.0]
    volume = make_volume((24, 160, 150), SOURCE, seed=5)[0]
    size = (40.0, 6.0, 6.0)
    eager, patches, _ = sample_target(small_model_2d, volume, 6, 32, seed=1, voxel_size=size)
    lazy_volume = da.from_array(Recording(volume), chunks=(1, 40, 40))
    Recording.reads.clear()
    lazy, lazy_patches, _ = sample_target(
        small_model_2d, lazy_volume, 6, 32, seed=1, voxel_size=size
    )
    assert lazy_patches == patches and lazy.shapes == eager.shapes == [(24, 240, 225)]
    assert Recording.reads == []  # choosing patches reads nothing
    np.testing.assert_array_equal(read_patches(lazy, patches), read_patches(eager, patches))
    read = sum(volume[index].size for index in Recording.reads)
    assert 0 < read <= volume.size / 4  # the slices of six patches (a slice is a chunk)
