"""Tiles fitted to the image, overlapping by what the network needs."""

from napari_bnadapt.arrays.tiling import fitted_tile
from napari_bnadapt.speed.geometry import geometry_for, widest
from napari_bnadapt.speed.receptive import overlap_for, receptive_radius


def test_tiles_follow_the_network_and_the_image(small_model_2d):
    model = small_model_2d
    radius = receptive_radius(model.module, 2, 1, model.divisor)
    needed = overlap_for(widest(radius), 512, model.divisor)
    length, stride = fitted_tile(1024, 512, needed, model.divisor)
    assert geometry_for(model, None, None, (1024, 1024)) == ((length,) * 2, (needed,) * 2)
    assert length - stride == needed and 0 < needed < 512 // 4
    # An image smaller than a tile is one tile; a fraction gives the former fixed grid.
    assert geometry_for(model, None, None, (300, 200)) == ((300, 200), (0, 0))
    assert geometry_for(model, 256, 0.25, (1024, 100)) == ((256, 100), (64, 0))


def test_the_widest_reach_counts_on_every_axis():
    assert widest((38, 29, 34)) == 38
    assert widest((3, None)) is None and widest(()) == 0
