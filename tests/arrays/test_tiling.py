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
