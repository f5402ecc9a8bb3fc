"""The npe2 manifest is valid and every command it refers to exists and imports."""

import importlib

import numpy as np
from npe2 import PluginManifest

from napari_bnadapt import _sample_data


def _manifest() -> PluginManifest:
    return PluginManifest.from_distribution("napari-bnadapt")


def test_manifest_validates_and_names_match_the_distribution():
    manifest = _manifest()
    assert manifest.name == "napari-bnadapt"


def test_every_referenced_command_exists_and_imports():
    manifest = _manifest()
    contributions = manifest.contributions
    defined = {c.id: c for c in contributions.commands}
    referenced = [s.command for s in contributions.sample_data or []]
    referenced += [w.command for w in contributions.widgets or []]
    referenced += [r.command for r in contributions.readers or []]
    referenced += [w.command for w in contributions.writers or []]
    for menu_items in (contributions.menus or {}).values():
        referenced += [item.command for item in menu_items if hasattr(item, "command")]
    assert referenced and set(referenced) <= set(defined)
    for command in defined.values():
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.id


def test_manifest_contributes_widgets_reader_writer_and_menus():
    contributions = _manifest().contributions
    assert {w.display_name for w in contributions.widgets} == {
        "Model", "Segment and adapt", "Compare masks", "Latent histograms",
    }  # fmt: skip
    assert "*.mrc" in contributions.readers[0].filename_patterns
    assert {tuple(w.layer_types) for w in contributions.writers} == {("labels",), ("image",)}
    segment_menu = contributions.menus["napari/layers/segment"]
    assert "napari-bnadapt.adapt_widget" in [item.command for item in segment_menu]


def test_sample_data_gives_image_and_ground_truth_layers():
    for make in (_sample_data.make_source_sample, _sample_data.make_target_sample):
        (image, image_meta, image_kind), (truth, _, truth_kind) = make()
        assert (image_kind, truth_kind) == ("image", "labels")
        assert image.shape == truth.shape and image.ndim == 3 and image_meta["scale"][0] > 0
        assert set(np.unique(truth)) == {0, 1}
