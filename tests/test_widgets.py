"""The dock widgets in a real napari viewer (Xvfb), driven by setting values and handlers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("napari")
pytestmark = pytest.mark.qt

TIMEOUT = 60_000


@pytest.fixture
def workbench(make_napari_viewer, tiny_samples):
    from napari_bnadapt._widgets.launch import open_workbench

    bench = open_workbench(make_napari_viewer())
    return bench.viewer, bench.widgets


def wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=TIMEOUT)


def errors_shown(capsys=None) -> list[str]:
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records if n.severity == "error"]


def adapt_and_segment(qtbot, viewer, widget):
    widget.image.value = viewer.layers["target EM"]
    widget.target.value = viewer.layers["target EM"]
    widget.segment()
    wait(qtbot, widget)
    widget.patches.value = 8
    widget.adapt()
    qtbot.waitUntil(lambda: "target EM mask [adabn]" in viewer.layers, timeout=TIMEOUT)
    wait(qtbot, widget)


def test_latents_export_save_and_reset_after_adapting(workbench, qtbot, tmp_path):
    """What the journeys (test_journeys.py) leave out: the gained/lost layer, browsing and
    exporting the latents, saving, and a reset that restores the source bit for bit."""
    from napari_bnadapt.arrays.metrics import dice
    from napari_bnadapt.model import load_model

    viewer, widgets = workbench
    widget, compare, histograms = (
        widgets["Segment and adapt"], widgets["Compare masks"], widgets["Latent histograms"]
    )  # fmt: skip
    source_stats = {
        k: v["running_mean"].clone() for k, v in widget.session.model.source_stats.items()
    }
    adapt_and_segment(qtbot, viewer, widget)
    image = viewer.layers["target EM"]
    before, after = (viewer.layers[f"target EM mask [{s}]"] for s in ("source", "adabn"))
    truth = viewer.layers["target ground truth"].data
    assert dice(after.data, truth) > dice(before.data, truth) + 0.3
    for mask in (before, after):  # result layers overlay their image exactly
        np.testing.assert_allclose(mask.scale, image.scale)
        np.testing.assert_allclose(mask.translate, image.translate)
    assert not np.allclose(before.colormap.map(1), after.colormap.map(1))  # by statistics

    compare.difference()
    diff = viewer.layers["gained (green) / lost (magenta)"].data
    assert set(np.unique(diff)) <= {0, 1, 2} and (diff == 1).sum() > 0
    assert "gained" in compare.feedback.text
    assert "gained (green) / lost (magenta)" not in [x.name for _, x in compare._masks()]

    histograms.source.value = viewer.layers["source EM"]
    histograms.patches.value = 8
    histograms.measure()
    wait(qtbot, histograms)
    diagnosis = widget.session.diagnosis
    assert diagnosis is not None and diagnosis.shift_after is not None
    histograms.layer.value = "encoder.0.bn1"
    histograms.channel.value = 3
    assert "channel 3" in histograms.axes[0].get_title()
    assert "input intensities: shift" in histograms.axes[2].get_title()  # vs the fingerprint
    assert histograms.table.shape[0] == diagnosis.shift_before["encoder.0.bn1"].channels
    assert not histograms.export_png.enabled  # no file chosen yet
    histograms.export_path.value = tmp_path / "latents.png"
    assert histograms.export_png.enabled and histograms.export_csv.enabled
    histograms.save_png()
    histograms.save_csv()
    assert (tmp_path / "latents.png").stat().st_size > 1000
    assert (tmp_path / "latents.csv").read_text().startswith("layer,channel")

    # Save the adapted model, then reset to source: the source model was never modified.
    assert not widget.save_button.enabled
    widget.save_path.value = tmp_path / "adapted.pt"
    assert widget.save_button.enabled
    widget.save()
    wait(qtbot, widget)
    assert load_model(tmp_path / "adapted.pt").state == "adapted"
    assert "Saved the adapted model" in widget.feedback.text
    assert "Out of date" not in histograms.feedback.text  # saving changed no network
    widget.reset()
    assert widget.session.adapted is None and not widget.reset_button.enabled
    assert "Press Segment" in widget.feedback.text
    # The plots compare the adaptation just undone: said to be out of date, not as now.
    assert histograms.feedback.text.startswith("Out of date")
    for name, mean in source_stats.items():
        torch.testing.assert_close(widget.session.model.source_stats[name]["running_mean"], mean)
    assert not errors_shown()


def test_bad_inputs_give_messages_and_keep_everything(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    viewer.add_image(np.zeros((4, 4, 4, 4, 4), np.float32), name="5D")
    widget.reset_choices()
    widget.image.value = viewer.layers["5D"]
    widget.segment()
    wait(qtbot, widget)
    assert widget.runner.last_error and "EM is one channel" in widget.runner.last_error
    widgets["Model"].path.value = "/nonexistent/model.pt"
    widgets["Model"].load()
    wait(qtbot, widgets["Model"])
    assert widgets["Model"].runner.last_error and widget.session.model is not None
    viewer.layers.clear()
    widget.reset_choices()
    assert widget.image.value is None
    widget.segment()  # nothing chosen: a message, no worker
    assert widget.runner.worker is None
    assert len(errors_shown()) >= 3


def test_another_model_is_said_where_the_old_one_was_spoken_of(workbench, qtbot):
    """Loading another model after adapting: Segment and adapt no longer says "Adapted
    to…" of a copy that is gone, and the Latents plots say they are out of date."""
    viewer, widgets = workbench
    widget, histograms, models = (
        widgets["Segment and adapt"], widgets["Latent histograms"], widgets["Model"]
    )  # fmt: skip
    adapt_and_segment(qtbot, viewer, widget)
    histograms.patches.value = 8
    histograms.measure()
    wait(qtbot, histograms)
    models.bundled.value = "demo"
    models.load_demo()
    wait(qtbot, models)
    said = widget.feedback.text
    assert said.startswith("Now using ") and "adapted to target EM is no longer used" in said
    assert "press Segment" in said and widget.status.value.startswith("Statistics: source")
    assert histograms.feedback.text.startswith("Out of date")


def test_segmenting_again_after_a_reset_shows_the_mask(workbench, qtbot):
    """Reset, then Segment: the source mask (hidden when the adapted one came) is
    replaced and shown again; it stayed hidden, so the canvas showed no mask at all."""
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    adapt_and_segment(qtbot, viewer, widget)
    source, adapted = (viewer.layers[f"target EM mask [{s}]"] for s in ("source", "adabn"))
    assert adapted.visible and not source.visible
    widget.reset()
    widget.segment()
    wait(qtbot, widget)
    assert source.visible and not adapted.visible


def test_a_result_never_replaces_what_the_user_changed(workbench, qtbot):
    """A mask corrected by hand, then Segment again, and strokes of another shape, then
    Paint corrections: both were replaced in place (a walkthrough lost its edits and
    strokes so); they are kept under another name, and a result unchanged since is
    replaced as before."""
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.image.value = widget.target.value = viewer.layers["target EM"]
    widget.segment()
    wait(qtbot, widget)
    widget.segment()  # unchanged since: replaced in place
    wait(qtbot, widget)
    assert "target EM mask [source] (kept)" not in viewer.layers
    mask = viewer.layers["target EM mask [source]"]
    mask.data[0, :8, :8] = 1  # corrected by hand
    edited = np.array(mask.data)
    widget.segment()
    wait(qtbot, widget)
    kept = viewer.layers["target EM mask [source] (kept)"]
    np.testing.assert_array_equal(kept.data, edited)
    assert viewer.layers["target EM mask [source]"] is not kept

    shape = np.shape(viewer.layers["target EM"].data)
    theirs = np.zeros((shape[0], shape[1] - 8, shape[2]), np.uint8)
    theirs[0, 4, 4:20] = 2
    viewer.add_labels(theirs, name="target EM strokes")  # painted on another crop
    layer = widget.strokes.paint()
    assert layer.data.shape == shape and not np.any(layer.data)
    np.testing.assert_array_equal(viewer.layers["target EM strokes (kept)"].data, theirs)


def test_a_ground_truth_chosen_is_not_offered_as_a_result(workbench, qtbot):
    """A truth whose name does not say so (chosen by the user) left "more results" too,
    and scored Dice 1.000 against itself as the best mask."""
    viewer, widgets = workbench
    widget, compare = widgets["Segment and adapt"], widgets["Compare masks"]
    adapt_and_segment(qtbot, viewer, widget)
    theirs = viewer.add_labels(np.asarray(viewer.layers["target ground truth"].data), name="lab")
    compare.reset_choices()
    assert theirs in list(compare.more.choices)  # a labels layer of the image: maybe a result
    compare.truth.value = theirs
    assert theirs not in list(compare.more.choices)


def test_exports_spare_opened_files_and_failed_writes_are_said(workbench, qtbot, tmp_path):
    """The Latents exports never write over an opened layer's file (a walkthrough's PNG
    was replaced by the plots), keep a folder's dots, and a write the system refuses (a
    read-only or full disk) or an unexpected error is one message, never silence."""
    import errno

    from PIL import Image

    import napari_bnadapt._widgets.saving as saving
    import napari_bnadapt.io.files as files

    viewer, widgets = workbench
    histograms, widget = widgets["Latent histograms"], widgets["Segment and adapt"]
    opened = tmp_path / "slice.png"
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(opened)
    before = opened.read_bytes()
    viewer.open(str(opened))
    histograms.export_path.value = opened
    histograms.save_png()
    assert opened.read_bytes() == before
    assert "slice.png" in histograms.feedback.text and histograms.feedback.level == "error"

    (tmp_path / "data.v2").mkdir()
    histograms.export_path.value = tmp_path / "data.v2" / "plots"
    histograms.save_png()
    assert (tmp_path / "data.v2" / "plots.png").stat().st_size > 0
    assert "Saved the plots" in histograms.feedback.text

    # A name of another format names another file: replacing it (a walkthrough's notes.csv
    # for "notes.txt") is refused; the same name again replaces the earlier export.
    (tmp_path / "notes.csv").write_text("my notes")
    histograms.export_path.value = tmp_path / "notes.txt"
    histograms.save_csv()
    assert (tmp_path / "notes.csv").read_text() == "my notes"
    assert "notes.csv exists" in histograms.feedback.text
    histograms.export_path.value = tmp_path / "data.v2" / "plots"
    histograms.save_png()  # plots.png exists, and was not named
    assert "plots.png exists" in histograms.feedback.text
    histograms.export_path.value = tmp_path / "data.v2" / "plots.png"
    histograms.save_png()
    assert "Saved the plots" in histograms.feedback.text

    widget.save_path.value = tmp_path / "saved.tif"  # a model under an image's name
    assert widget.save() is None and "a model is written there" in widget.feedback.text
    assert not (tmp_path / "saved.tif").exists()

    def refused(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    original = files.tempfile.mkstemp
    files.tempfile.mkstemp = refused
    try:
        histograms.save_png()
        assert "read-only file system" in histograms.feedback.text
        widget.save_path.value = tmp_path / "model.pt"
        widget.save()
        wait(qtbot, widget)
        assert "could not write" in widget.feedback.text and widget.feedback.level == "error"
    finally:
        files.tempfile.mkstemp = original
    assert not (tmp_path / "model.pt").exists()

    def broken(*_args):
        raise RuntimeError("a bug")

    original_save = saving.save_model
    saving.save_model = broken
    try:
        widget.save()
        wait(qtbot, widget)
    finally:
        saving.save_model = original_save
    assert "Saving failed: RuntimeError: a bug" in widget.feedback.text
    assert "Nothing was changed" in widget.feedback.text


def test_roi_from_shapes_restricts_sampling(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    target = viewer.layers["target EM"]
    shapes = viewer.add_shapes(
        [np.array([[0, 0], [0, 96], [96, 96], [96, 0]])], shape_type="polygon", name="roi"
    )
    widget.reset_choices()
    widget.target.value = target
    widget.roi.value = shapes
    widget.segment_after.value = False
    widget.patches.value = 8
    widget.adapt()
    wait(qtbot, widget)
    assert widget.session.adapted is not None
    assert widget.session.adapted.adaptation.patches <= 8


def test_drag_and_drop_opens_volumes_with_their_voxel_size(make_napari_viewer, tmp_path):
    import tifffile

    from napari_bnadapt.io.images import write_tiff

    viewer = make_napari_viewer()
    volume = (np.random.default_rng(1).random((4, 32, 32)) * 255).astype(np.uint8)
    write_tiff(tmp_path / "stack.tif", volume, (10.0, 5.0, 5.0), "nm")
    [layer] = viewer.open(str(tmp_path / "stack.tif"), plugin="napari-bnadapt")
    np.testing.assert_allclose(layer.scale, (10.0, 5.0, 5.0))
    np.testing.assert_array_equal(layer.data, volume)
    tifffile.imwrite(tmp_path / "good.tif", volume, photometric="minisblack")
    (tmp_path / "bad.tif").write_bytes((tmp_path / "good.tif").read_bytes()[:200])
    assert viewer.open(str(tmp_path / "bad.tif"), plugin="napari-bnadapt") == []
    assert any("bad.tif" in message for message in errors_shown())
    assert len(viewer.layers) == 1


def test_model_widget_loads_native_and_torchscript_files(
    workbench, qtbot, tmp_path, small_model_2d
):
    from napari_bnadapt.model import save_model

    _viewer, widgets = workbench
    widget = widgets["Model"]
    assert widget.device.choices[0] == "auto" and "cpu" in widget.device.choices
    save_model(small_model_2d, tmp_path / "small.pt")
    widget.path.value = tmp_path / "small.pt"
    widget.load()
    wait(qtbot, widget)
    assert widget.session.model.name == "small2d" and "small2d (native)" in widget.summary.value
    traced = small_model_2d.copy()
    traced.module = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    traced.format = "torchscript"
    save_model(traced, tmp_path / "small.ts")
    widget.path.value = tmp_path / "small.ts"
    widget.load()
    wait(qtbot, widget)
    assert "torchscript" in widget.summary.value
    widget.load_demo()
    wait(qtbot, widget)
    assert widget.session.model.name != "small2d"


def test_closing_the_widget_stops_its_worker(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.target.value = viewer.layers["target EM"]
    widget.patches.value = 256
    widget.segment_after.value = False
    worker = widget.adapt()
    closed = []

    def close_once(_step):
        if not closed:
            closed.append(True)
            viewer.window.remove_dock_widget(widget.native)

    worker.yielded.connect(close_once)
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=TIMEOUT)
    assert widget.session.adapted is None


def test_a_3d_model_segments_a_volume_through_the_widget(workbench, qtbot, small_model_3d):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.session.set_model(small_model_3d)
    assert "3D" in widgets["Model"].summary.value
    image = viewer.layers["source EM"]
    image.translate = (5.0, 2.0, 1.0)
    widget.image.value = image
    widget.segment()
    wait(qtbot, widget)
    mask = viewer.layers["source EM mask [source]"]
    assert mask.data.shape == image.data.shape
    np.testing.assert_allclose(mask.translate, image.translate)


def test_a_lazy_layer_is_segmented_block_by_block_and_shown_lazily(
    workbench, qtbot, tmp_path, monkeypatch
):
    import atexit

    import h5py

    from napari_bnadapt._reader import get_reader

    removed = []  # the temporary stores are removed when napari quits (142 were left)
    monkeypatch.setattr(atexit, "register", lambda *args, **kw: removed.append(args[1:]))
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    volume = np.asarray(viewer.layers["target EM"].data)
    with h5py.File(tmp_path / "big.h5", "w") as handle:
        handle.create_dataset("raw", data=volume, chunks=(1, 64, 64)).attrs["resolution"] = [
            5,
            5,
            5,
        ]
    for data, meta, kind in get_reader(str(tmp_path / "big.h5"))(str(tmp_path / "big.h5")):
        viewer.add_layer(__import__("napari").layers.Layer.create(data, meta, kind))
    layer = viewer.layers["big-raw"]
    assert type(layer.data).__module__.startswith("dask")
    widget.image.value = layer
    widget.segment()
    wait(qtbot, widget)
    mask = viewer.layers["big-raw mask [source]"]
    assert type(mask.data).__module__.startswith("dask")  # on disk, read as shown
    store = mask.metadata["source_path"]
    assert any(str(store).startswith(str(args[0])) for args in removed if args)
    assert "removed when napari quits" in widget.feedback.text
    widget.image.value = viewer.layers["target EM"]
    widget.segment()
    wait(qtbot, widget)
    np.testing.assert_array_equal(
        np.asarray(mask.data), np.asarray(viewer.layers["target EM mask [source]"].data)
    )
    np.testing.assert_allclose(mask.scale, layer.scale)

    # Adapted on the lazy layer: said, and its masks before and after go to Compare.
    compare = widgets["Compare masks"]
    widget.target.value = layer
    widget.image.value = layer
    widget.patches.value = 8
    widget.adapt()
    qtbot.waitUntil(lambda: "big-raw mask [adabn]" in viewer.layers, timeout=TIMEOUT)
    wait(qtbot, widget)
    said = widget.feedback.text
    assert said.startswith("Adapted to big-raw") and "block by block" in said
    assert "segmented, not adapted" not in said
    adapted = viewer.layers["big-raw mask [adabn]"]
    assert adapted.visible and not mask.visible  # the newest mask of the image alone
    assert compare.before.value.name == "big-raw mask [source]"
    assert compare.after.value.name == "big-raw mask [adabn]"

    # A small volume on disk is taught from strokes in memory (it was refused whole); one
    # too large to read is refused, and said.
    from napari_bnadapt._widgets import strokes_section

    monkeypatch.setattr(strokes_section, "IN_MEMORY_LIMIT", 1000)
    assert widget.strokes.paint() is None and "stays on disk" in widget.feedback.text
    monkeypatch.undo()
    strokes = widget.strokes.paint()
    assert strokes is not None and strokes.data.shape == layer.data.shape
    truth = np.asarray(viewer.layers["target ground truth"].data)
    strokes.data[1, 40, 10:100] = np.where(truth[1, 40, 10:100] > 0, 2, 1)
    widget.strokes.steps.value = 10
    widget.strokes.adapt()
    qtbot.waitUntil(lambda: "Trained on" in widget.feedback.text, timeout=TIMEOUT)
    wait(qtbot, widget)
    assert widget.session.adapted.adaptation.cure == "adabn+strokes"


def test_a_package_with_code_loads_only_after_the_user_confirms(
    workbench, qtbot, make_package, nets, monkeypatch
):
    from napari_bnadapt._widgets import model_widget as module

    _viewer, widgets = workbench
    widget = widgets["Model"]
    before = widget.session.model
    path = make_package(nets.tiny(), weights="file")
    asked = []
    monkeypatch.setattr(module, "confirm", lambda parent, title, text: asked.append(text) or False)
    widget.path.value = path
    widget.load()
    wait(qtbot, widget)
    assert "tiny_net.py" in asked[0] and widget.session.model is before  # declined: unchanged
    monkeypatch.setattr(module, "confirm", lambda parent, title, text: True)
    widget.load()
    qtbot.waitUntil(lambda: widget.session.model is not before, timeout=TIMEOUT)
    wait(qtbot, widget)
    assert widget.session.model.format == "bioimageio" and "tiny package" in widget.summary.value
    assert not errors_shown()


def test_save_as_bioimageio_package_from_the_widget(workbench, qtbot, tmp_path):
    from napari_bnadapt.model import load_model

    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    adapt_and_segment(qtbot, viewer, widget)
    widget.save_path.value = tmp_path / "adapted.pt"
    widget.save_package()
    wait(qtbot, widget)
    package = load_model(tmp_path / "adapted.zip")
    assert package.format == "bioimageio" and package.adaptation.target == "target EM"
    assert not errors_shown()


def test_the_voxel_size_is_taken_from_the_field_and_what_happened_is_said(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]  # the demo model: trained at 5 nm
    viewer.add_image(viewer.layers["target EM"].data[:2], name="no metadata")
    widget.reset_choices()
    widget.image.value = viewer.layers["no metadata"]

    def said() -> str:
        return widget.feedback.text

    widget.segment()
    wait(qtbot, widget)
    assert "no metadata has no voxel size" in said()
    widget.voxel_size.value = "50, 2.5, 2.5"
    widget.segment()
    wait(qtbot, widget)
    assert "(2.5×2.5 nm in plane) is resampled to the model's 5×5 nm" in said()
    mask = viewer.layers["no metadata mask [source]"]
    assert mask.data.shape == viewer.layers["no metadata"].data.shape
    widget.voxel_size.value = "fifty"
    worker = widget.runner.worker
    widget.segment()
    assert widget.runner.worker is worker  # a message, no job
    assert "voxel size (nm) 'fifty'" in said() and widget.feedback.level == "error"
    assert any("'fifty'" in message for message in errors_shown())
    widget.voxel_size.value = "5"  # the model's own: nothing to say
    widget.segment()
    wait(qtbot, widget)
    assert "voxel size" not in said()


def test_latents_are_measured_at_the_scale_the_target_was_adapted_at(workbench, qtbot, monkeypatch):
    from napari_bnadapt._widgets import histogram_widget

    viewer, widgets = workbench
    adapt, histograms = widgets["Segment and adapt"], widgets["Latent histograms"]
    viewer.add_image(viewer.layers["target EM"].data[:2], name="no metadata")
    for widget in (adapt, histograms):
        widget.reset_choices()
    adapt.target.value = histograms.target.value = viewer.layers["no metadata"]
    adapt.voxel_size.value = "50,2.5,2.5"
    adapt.segment_after.value = False
    adapt.patches.value = 8
    adapt.adapt()
    wait(qtbot, adapt)
    assert adapt.session.adapted.adaptation.voxel_size == (50.0, 2.5, 2.5)
    sizes = []

    def spy(*args, **kwargs):
        sizes.append(kwargs["voxel_size"])
        return (yield from diagnose_steps(*args, **kwargs))

    diagnose_steps = histogram_widget.diagnose_steps
    monkeypatch.setattr(histogram_widget, "diagnose_steps", spy)
    histograms.patches.value = 8
    histograms.measure()
    wait(qtbot, histograms)
    histograms.target.value = viewer.layers["target EM"]  # its own scale, from the file
    histograms.measure()
    wait(qtbot, histograms)
    assert sizes == [(50.0, 2.5, 2.5), (10.0, 5.0, 5.0)] and not errors_shown()


def test_an_rgb_layer_is_segmented_as_grey(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    grey = np.asarray(viewer.layers["target EM"].data[3])
    viewer.add_image(np.stack([grey] * 3, axis=-1), name="screenshot", rgb=True)
    viewer.add_image(grey, name="grey slice")
    widget.reset_choices()
    for name in ("screenshot", "grey slice"):
        widget.image.value = viewer.layers[name]
        widget.segment()
        wait(qtbot, widget)
    colour, plain = (viewer.layers[f"{n} mask [source]"].data for n in ("screenshot", "grey slice"))
    assert colour.shape == grey.shape
    np.testing.assert_array_equal(colour, plain)
    assert not errors_shown()


def test_saving_over_the_loaded_model_or_an_opened_file_is_refused(
    workbench, qtbot, tmp_path, small_model_2d
):
    """Nothing lost: the save field may name the model's own file or an image a layer was
    read from; both are refused with a message, and the files stay as they were."""
    import tifffile

    from napari_bnadapt.model import save_model

    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    model_file = tmp_path / "mine.pt"
    save_model(small_model_2d, model_file)
    image_file = tmp_path / "em.tif"
    tifffile.imwrite(image_file, np.zeros((2, 32, 32), np.uint8))
    viewer.open(str(image_file), plugin="napari-bnadapt")
    before = {p: p.read_bytes() for p in (model_file, image_file)}
    widget.session.model.path = str(model_file)  # as if loaded from that file
    for target, said in ((model_file, "loaded model's file"), (image_file, "layer 'em'")):
        widget.save_path.value = target
        widget.save()
        assert not widget.runner.running
        assert widget.feedback.level == "error" and said in widget.feedback.text
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize(
    ("kept", "before", "after", "said"),
    [
        (True, 0.6, 0.9, "held-back strokes 60 % → 90 % right: kept."),
        (True, 1.0, 1.0, "100 % → 100 % right (loss 0.20 → 0.10): kept."),
        (False, 0.8, 0.8, "held-back strokes 80 % right before, no better after (learning "
         "did not make them more right): undone, the network and mask are the label-free "
         "[adabn] ones."),
        (False, 1.0, 1.0, "100 % right before, no better after (they were right already: "
         "paint where the mask is wrong): undone, the network and mask are the label-free "
         "[adabn] ones."),
        (True, None, None, "none could be held back to check it (paint more): kept unchecked."),
        # Kept, yet a class of the held-back strokes mostly wrong (corrections at chance):
        (True, 0.0, 0.5, "held-back strokes 0 % → 50 % right: kept; yet only background 0 % "
         "right: compare it with the label-free mask before trusting it (reset undoes it)."),
        # One stroke of a class: the check held back a piece of it, and says so.
        (True, 0.5, 1.0, "50 % → 100 % right: kept; one foreground stroke only: the check held "
         "back a piece of it, a weak check; a second stroke of each makes it real."),
    ],
)  # fmt: skip
def test_what_the_strokes_did_is_said_from_the_record(kept, before, after, said):
    from napari_bnadapt._widgets.readings import stroke_reading
    from napari_bnadapt.model.record import AdaptationRecord

    recalls = {"1": 0.0, "2": 1.0} if after == 0.5 else {"1": after, "2": after}
    details = {
        "strokes": 12, "labelled_pixels": 340, "labelled_fraction": 0.004, "slices": [1, 3],
        "steps": 40, "guard": {"kept": kept},
        "pixels_per_class": {"background": 200, "foreground": 140},
        "strokes_per_class": {"background": 11, "foreground": 1 if before == 0.5 else 2},
        "held_out_before": {"accuracy": before, "loss": 0.2 if before is not None else None},
        "held_out_after": {"accuracy": after, "loss": 0.1 if after is not None else None,
                           "recalls": None if after is None else recalls},
    }  # fmt: skip
    record = AdaptationRecord(
        target="stack", cure="adabn+strokes", seconds=23.4, details={"strokes": details}
    )
    text = stroke_reading(record)
    assert text.startswith(
        "Trained on 12 strokes (340 px, 0.4 % of stack, slices 1, 3) in 23 s, 40 steps; "
    )
    assert text.endswith(said), text


def test_a_multiclass_model_paints_one_label_per_class(workbench):
    from napari_bnadapt.adapt.strokes import class_names
    from napari_bnadapt.arrays.normalization import NormalizationSpec
    from napari_bnadapt.model.loaded import wrap_unet
    from napari_bnadapt.model.unet import UNet, UNetConfig

    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    torch.manual_seed(0)
    unet = UNet(UNetConfig(dims=2, depth=2, base_channels=4, out_channels=3)).eval()
    widget.session.set_model(wrap_unet(unet, NormalizationSpec(mode="fixed", mean=100, std=40)))
    widget.target.value = viewer.layers["target EM"]
    layer = widget.strokes.paint()
    assert layer.name == "target EM strokes" and layer.selected_label == 2
    names = class_names(widget.session.model)  # the core's: class k is label k + 1
    assert len(names) == 3 and list(layer.features["class"]) == ["not labelled", *names]
    assert f"1 = {names[0]}, 2 = {names[1]}, 3 = {names[2]}" in widget.feedback.text
    assert not widget.strokes.adapt_button.enabled  # nothing painted yet
    layer.data[1, 10, 10:20] = 1
    widget.strokes.paint()  # pressed again: the same layer, its strokes kept
    assert [x.name for x in viewer.layers].count("target EM strokes") == 1
    assert viewer.layers["target EM strokes"].data[1, 10, 10:20].all()
    layer.data[1, 40, 10:20] = 3
    layer.refresh()
    assert widget.strokes.adapt_button.enabled


def test_open_sample_leaves_the_image_selected_not_the_hidden_truth(workbench, qtbot):
    """File ▸ Open Sample adds the hidden ground truth last; the image stays selected, so
    the layer controls show an image's settings, not paint tools for a hidden layer."""
    viewer, _ = workbench
    viewer.layers.clear()
    viewer.open_sample("napari-bnadapt", "target")
    truth = viewer.layers["target ground truth"]
    assert not truth.visible and viewer.layers[-1] is truth
    qtbot.waitUntil(lambda: viewer.layers.selection.active is not truth, timeout=5000)
    assert type(viewer.layers.selection.active).__name__ == "Image"


def test_the_threshold_follows_the_model_and_draws_thinner_masks(workbench, qtbot):
    """The threshold starts at the model's own (a package's binarize step) and a higher
    one draws less foreground from the same probabilities, and says so."""
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    assert widget.threshold.value == 0.5  # the demo model's
    widget.image.value = viewer.layers["source EM"]
    widget.segment()
    wait(qtbot, widget)
    default = np.asarray(viewer.layers["source EM mask [source]"].data).mean()
    assert "Threshold" not in widget.feedback.text
    widget.threshold.value = 0.9
    widget.segment()
    wait(qtbot, widget)
    thinner = np.asarray(viewer.layers["source EM mask [source]"].data).mean()
    assert thinner < default
    assert "Threshold 0.90 (the model's: 0.5): higher draws thinner" in widget.feedback.text
    packaged = widget.session.model.copy()
    packaged.metadata["bioimageio"] = {"threshold": 0.3}
    widget.session.set_model(packaged)
    assert widget.threshold.value == pytest.approx(0.3)
    assert not errors_shown()


def test_docks_opened_from_the_plugins_menu_join_one_tab_bar(make_napari_viewer, qtbot):
    """Opened one after another (as the Plugins menu does), the docks were stacked: each
    kept its least height and the window grew past a 768-px screen (1308 px in a
    walkthrough). Each joins the plugin's tabs instead, with a short title."""
    from qtpy.QtWidgets import QDockWidget

    from napari_bnadapt._widgets.docking import TAB_TITLES

    viewer = make_napari_viewer(show=True)  # a hidden window's docks tab differently
    docks = []
    for name in TAB_TITLES:
        dock, _ = viewer.window.add_plugin_dock_widget("napari-bnadapt", name)
        docks.append(dock)
        qtbot.wait(10)
    window = docks[0].parentWidget()
    qtbot.waitUntil(lambda: len(window.tabifiedDockWidgets(docks[0])) == len(docks) - 1)
    assert [d.windowTitle() for d in docks] == list(TAB_TITLES.values())
    others = [d for d in window.findChildren(QDockWidget) if d not in docks]
    assert others and not any(window.tabifiedDockWidgets(d) for d in others)  # napari's own


def test_the_contrast_latents_may_advise_is_an_option(workbench):
    """Latents may advise an inverted contrast (--polarity invert), which napari could
    not apply: it is under more options, and reaches the adaptation."""
    _, widgets = workbench
    widget = widgets["Segment and adapt"]
    assert widget.polarity.native.isHidden()
    widget.more_options.value = True
    assert not widget.polarity.native.isHidden() and widget.polarity.value == "keep"
    widget.polarity.value = "invert"
    assert widget.adapt_config("adabn").polarity == "invert"


def test_bnadapt_gui_keeps_its_tabs_in_workflow_order(make_napari_viewer, qtbot):
    """The docks bnadapt gui places are not moved by the Plugins-menu rule (the Model tab
    went to the end of the bar, after the event loop came back)."""
    from qtpy.QtWidgets import QTabBar

    from napari_bnadapt._widgets.launch import open_workbench

    bench = open_workbench(make_napari_viewer(show=True), samples=False)
    qtbot.wait(50)
    bars = bench.viewer.window._qt_window.findChildren(QTabBar)
    titles = [[bar.tabText(i) for i in range(bar.count())] for bar in bars]
    assert ["1 Model", "2 Segment, adapt", "3 Compare", "4 Latents", "Latent plots"] in titles


def test_a_few_rows_of_controls_never_scroll_away(workbench):
    """Latents' six rows of controls shrank to a scrolled sliver under a long verdict and
    its table (a walkthrough's export row was out of view); long controls still scroll."""
    from napari_bnadapt._widgets.layout import MIN_BODY_HEIGHT, SHORT_BODY

    _, widgets = workbench
    short = widgets["Latent histograms"].scroll_area
    assert short.minimumSizeHint().height() == short.sizeHint().height() <= SHORT_BODY
    long = widgets["Segment and adapt"].scroll_area
    assert long.sizeHint().height() > SHORT_BODY
    assert long.minimumSizeHint().height() == MIN_BODY_HEIGHT
