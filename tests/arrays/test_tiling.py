import numpy as np

from napari_bnadapt.arrays.tiling import blend_window, tile_slices, tile_starts


def test_tiles_cover_the_image_and_stay_inside():
    for size, tile, overlap in [(100, 32, 8), (32, 32, 8), (20, 32, 8), (257, 64, 16)]:
        covered = np.zeros(size, bool)
        for start in tile_starts(size, tile, overlap):
            assert start >= 0 and start + min(tile, size) <= size
            covered[start : start + tile] = True
        assert covered.all()


def test_window_is_a_partition_of_unity_where_tiles_overlap_exactly():
    window = blend_window((64,), (16,), floor=0.0)
    overlap_sum = window[48:] + window[:16]
    np.testing.assert_allclose(overlap_sum, 1.0, atol=1e-6)


def test_grid_over_2d_shape():
    tiles = tile_slices((100, 50), (64, 64), (16, 16))
    assert len(tiles) == 2 and all(t[1] == slice(0, 50) for t in tiles)


def test_fitted_tiles_cover_the_axis_with_the_overlap_and_little_waste():
    from napari_bnadapt.arrays.tiling import fitted_tile

    # 1024 px in tiles of about 512 overlapping by 24: two tiles of 528, not three of 512.
    assert fitted_tile(1024, 512, 24, 8) == (528, 504)
    assert fitted_tile(471, 512, 24, 8) == (471, 471)  # one tile, the whole axis
    assert fitted_tile(580, 512, 24, 8) == (580, 580)  # 13 % longer than asked: one tile
    # (257, 64, 16, 16): an aligned stride would cost six tiles, an unaligned one five.
    for size, tile, overlap, align in [(2048, 512, 24, 8), (100_000, 512, 24, 8), (1000, 128, 24, 8),
                                       (90, 32, 8, 4), (257, 64, 16, 16)]:  # fmt: skip
        length, stride = fitted_tile(size, tile, overlap, align)
        assert (stride % align == 0 or size == 257) and length <= tile * 1.15 + align
        starts = tile_starts(size, length, length - stride)
        ends = [s + length for s in starts]
        assert ends[-1] == size and all(e - s >= overlap for e, s in zip(ends, starts[1:]))
        assert len(starts) * length < size * 1.3
