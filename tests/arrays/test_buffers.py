"""Block-lifetime buffers come from memory maps of their own, not from the heap."""

import mmap

import numpy as np

from napari_bnadapt.arrays.buffers import mapped_zeros


def test_mapped_zeros_are_zero_writable_and_mapped():
    a = mapped_zeros((3, 4, 5), np.float32)
    assert a.shape == (3, 4, 5) and a.dtype == np.float32 and not a.any()
    a[1] += 2.5
    assert a.sum() == 2.5 * 20 and a.flags.writeable
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
    assert mapped_zeros((0, 7), np.uint8).shape == (0, 7)
