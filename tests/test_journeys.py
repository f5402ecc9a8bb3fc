"""Journeys through the widgets, checked by what a person sees on a 1366×768 laptop.

Each journey clicks the buttons in the order a microscopist would and asserts what is on
the screen: which layers the choices fall on, which buttons can be pressed, the messages
(what happened, what to do next), the grid cells (each whole image in view, each captioned)
and that nothing computed is cut off or scrolled away (widget geometry). The sample volumes
are tiny (``tiny_samples``) so that every journey takes seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_bnadapt.model import load_model

pytest.importorskip("napari")
pytestmark = pytest.mark.qt

TIMEOUT = 60_000
LAPTOP = (1366, 768)
#: What can be pressed with a model and an image, before anything was adapted or painted.
UNADAPTED = {"Segment", "Adapt BatchNorm statistics", "Paint corrections", "Where to paint next"}


# -- what a person sees ----------------------------------------------------------------------


@pytest.fixture
def bench(make_napari_viewer, tiny_samples, qtbot):
    """``bnadapt gui`` with the (tiny) samples, in a 1366×768 window."""
    from napari_bnadapt._widgets.launch import open_workbench

    bench = open_workbench(make_napari_viewer(show=True))
    on_screen(bench, qtbot, LAPTOP)
    return bench


def on_screen(bench, qtbot, size) -> None:
    window = bench.viewer.window._qt_window
    window.resize(*size)
    window.show()
    qtbot.waitUntil(lambda: window.isVisible(), timeout=TIMEOUT)
    settle(qtbot)


def settle(qtbot) -> None:
    """Let Qt lay out and paint (tabs raised, docks resized, the canvas size updated)."""
    qtbot.wait(60)


def wait(qtbot, *widgets) -> None:
    qtbot.waitUntil(lambda: not any(w.runner.running for w in widgets), timeout=TIMEOUT)
    settle(qtbot)


def front_tab(bench) -> str:
    from qtpy.QtWidgets import QTabBar

    bars = bench.viewer.window._qt_window.findChildren(QTabBar)
    texts = [bar.tabText(bar.currentIndex()) for bar in bars if bar.count() >= 4]
    assert texts, "the widgets are not tabbed"
    return texts[0]


def tabs_uncut(bench) -> list[str]:
    """Tab titles whose text does not fit their tab (Qt elides them to "Model …")."""
    from qtpy.QtWidgets import QTabBar

    cut = []
    for bar in bench.viewer.window._qt_window.findChildren(QTabBar):
        for index in range(bar.count()):
            text = bar.tabText(index)
            if bar.fontMetrics().horizontalAdvance(text) > bar.tabRect(index).width():
                cut.append(text)
    return cut


def raise_tab(bench, qtbot, name: str) -> None:
    bench.docks[name].raise_()
    settle(qtbot)


def readable(bench, widget) -> bool:
    """Shown, wholly in view: not clipped by a scroll area, its dock or the window."""
    from qtpy.QtCore import QPoint

    native = getattr(widget, "native", widget)
    if not native.isVisible() or native.height() == 0:
        return False
    if native.visibleRegion().boundingRect().size() != native.size():
        return False
    window = bench.viewer.window._qt_window
    corner = native.mapTo(window, QPoint(0, 0))
    return corner.y() + native.height() <= window.height() and window.height() <= LAPTOP[1]


def table_fully_shown(table) -> bool:
    """Every row and every column of a table in view (no scrolling needed)."""
    native = table.native
    rows = sum(native.rowHeight(r) for r in range(native.rowCount()))
    columns = sum(native.columnWidth(c) for c in range(native.columnCount()))
    viewport = native.viewport()
    return rows <= viewport.height() and columns <= viewport.width()


def enabled(widget) -> set[str]:
    return {button.text for button in widget.runner.buttons if button.enabled}


def grid_cells(viewer) -> dict[tuple[int, int], list]:
    """The layers of each grid cell, by (row, column)."""
    cells: dict[tuple[int, int], list] = {}
    for index, layer in enumerate(viewer.layers):
        position = viewer.canvas.grid.position(index, viewer.layers)
        if layer.visible and position != (-1, -1):
            cells.setdefault(position, []).append(layer)
    return cells


def captions(viewer) -> list[str]:
    """The text drawn at the top of each grid cell, in cell order."""
    cells = grid_cells(viewer)
    return [
        layer.name
        for position in sorted(cells)
        for layer in cells[position]
        if layer.name_overlay.visible
    ]


def whole_image_in_view(viewer, layer) -> bool:
    """Whether the camera shows all of ``layer`` in its grid cell (or the canvas)."""
    height, width = viewer.canvas.viewbox_size(viewer.layers)
    zoom = viewer.scene.camera.zoom
    centre = np.asarray(viewer.scene.camera.center[-2:])
    extent = np.asarray(layer.extent.world)[:, -2:]
    half = np.array([height, width]) / zoom / 2
    return bool(
        np.all(extent[0] >= centre - half - 1e-6) and np.all(extent[1] <= centre + half + 1e-6)
    )


def toasts() -> list[str]:
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records]


def errors() -> list[str]:
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records if n.severity == "error"]


def show_options(adapt, patches: int) -> None:
    """What a user does for a quick adaptation: more options, fewer patches."""
    adapt.more_options.value = True
    adapt.patches.value = patches


# -- journeys --------------------------------------------------------------------------------


def test_demo_journey_from_model_to_latents(bench, qtbot):
    """The demo flow: the model, a check on the source, the target segmented (empty),
    adapted, compared side by side and explained."""
    viewer = bench.viewer
    model, adapt = bench.widgets["Model"], bench.widgets["Segment and adapt"]
    compare, latents = bench.widgets["Compare masks"], bench.widgets["Latent histograms"]

    # At start: the first step in front, every tab title whole, an image selected (not the
    # hidden ground truth and its paint tools), the slider named z, a next step said.
    assert front_tab(bench) == "1 Model" and not tabs_uncut(bench)
    assert type(viewer.layers.selection.active).__name__ == "Image"
    assert viewer.dims.axis_labels[0] == "z"
    assert "Next: Segment and adapt" in model.feedback.text and readable(
        bench, model.feedback.label
    )

    # Segment the source first (does the model work on its own data?), from the layer list.
    raise_tab(bench, qtbot, "Segment and adapt")
    assert adapt.image.value.name == adapt.target.value.name == "target EM"  # the newest
    assert enabled(adapt) == UNADAPTED  # nothing to reset or save
    viewer.layers.selection.active = viewer.layers["source EM"]
    assert adapt.image.value.name == "source EM"
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    assert "foreground in source EM with the source statistics" in adapt.feedback.text
    assert adapt.target.value.name == "source EM"

    # Then the target: an empty mask says so, and what to do; the target follows.
    viewer.layers.selection.active = viewer.layers["target EM"]
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    said = adapt.feedback.text
    assert "foreground in target EM" in said and "found" in said and "nothing" in said, said
    assert said.startswith(("0 %", "< 0.1 %")) and "press Adapt BatchNorm statistics" in said
    assert adapt.target.value.name == "target EM"  # item 1: not the source
    assert "Reset to source statistics" not in enabled(adapt)  # item 5: nothing to reset
    assert readable(bench, adapt.feedback.label) and readable(bench, adapt.adapt_button)

    show_options(adapt, 8)
    adapt.adapt_button.native.click()
    qtbot.waitUntil(lambda: "target EM mask [adabn]" in viewer.layers, timeout=TIMEOUT)
    wait(qtbot, adapt)
    assert adapt.session.adapted.adaptation.target == "target EM"
    assert "Statistics: adapted (adabn on target EM)" in adapt.status.value
    assert "Reset to source statistics" in enabled(adapt)
    assert "before: " in adapt.feedback.text and "Compare masks" in adapt.feedback.text
    assert not any("BatchNorm" in message for message in toasts())  # no toast over the image

    # Compare: in front, both masks chosen, the ground truth found by its name, nothing else
    # offered as "more results" (no ground truth, not the two masks already chosen).
    assert front_tab(bench) == "3 Compare"
    assert compare.before.value.name == "target EM mask [source]"
    assert compare.after.value.name == "target EM mask [adabn]"
    assert compare.truth.value.name == "target ground truth"
    assert list(compare.more.choices) == [viewer.layers["source EM mask [source]"]]
    assert enabled(compare) == {"Side by side", "Gained / lost layer", "Compute metrics"}
    assert not compare.table.visible  # no empty box before there is something to show

    compare.side_button.native.click()
    settle(qtbot)
    assert viewer.canvas.grid.enabled and "Back to the normal view" in enabled(compare)
    assert captions(viewer) == ["1 before [source], empty", "2 after [adabn]"]  # item 2
    for cell in grid_cells(viewer).values():
        assert whole_image_in_view(viewer, cell[0]), "a cell shows part of its image"
    assert "empty" in compare.feedback.text

    compare.metrics_button.native.click()
    wait(qtbot, compare)
    assert compare.table.visible and table_fully_shown(compare.table)  # item 6
    assert readable(bench, compare.table) and readable(bench, compare.feedback.label)
    # incl. IoU, "Dice with before" and the field's score for objects (object F1)
    assert compare.table.native.rowCount() == 8
    table = compare.table.native
    shown = [table.itemDelegate().displayText(table.item(r, 0).text(), table.locale())
             for r in range(table.rowCount())]  # fmt: skip
    assert not any("e-0" in text for text in shown), shown  # 0.093, not 9.300e-02
    said = compare.feedback.text  # before → after, and which way (a walkthrough's lacked after)
    assert "Dice against target ground truth: [source] 0." in said and "→ [adabn]" in said
    assert "(better)" in said
    assert "Latent histograms" in compare.feedback.text  # item 4: the next step
    compare.normal_button.native.click()
    settle(qtbot)
    assert not viewer.canvas.grid.enabled and "Back to the normal view" not in enabled(compare)
    assert not any(layer.metadata.get("bnadapt_role") == "compare" for layer in viewer.layers)

    # Latents: the reading, the table and the message in view on the laptop (item 3); the
    # plots in their own dock, the "after" bars visible.
    raise_tab(bench, qtbot, "Latent histograms")
    assert latents.target.value.name == "target EM"  # the layer adapted to
    latents.patches.value = 8
    latents.measure_button.native.click()
    wait(qtbot, latents)
    assert latents.verdict.value.startswith("<b>Should I adapt? adapt — cure: adabn")
    shown = (latents.verdict, latents.table, latents.feedback.label, latents.layer,
             latents.export_png, latents.plots_button)  # fmt: skip
    for widget in shown:  # the results, the controls that browse and export them (a
        assert readable(bench, widget)  # walkthrough's export row was scrolled away)
    assert not latents.table.native.verticalHeader().isVisible()  # no row number column
    columns = latents.table.native
    assert sum(columns.columnWidth(c) for c in range(columns.columnCount())) <= (
        columns.viewport().width()
    )
    assert latents.table.native.rowCount() >= 6 and "Latent plots" in latents.feedback.text
    overview = latents.axes[1]
    after = [bar.get_height() for bar in overview.containers[1]]
    before = [bar.get_height() for bar in overview.containers[0]]
    assert min(after) > 0.01 * max(before)  # "after" bars that can be seen
    latents.plots_button.native.click()
    settle(qtbot)
    assert front_tab(bench) == "Latent plots" and not tabs_uncut(bench)
    assert not errors()


def test_the_model_tab_keeps_every_control_in_view_with_a_long_description(bench, qtbot):
    """A packaged model's summary (description, data, licence) is long: the controls stay
    in view and the summary scrolls in its own area, down to its last row (a walkthrough
    found the device row and the licence cut off at 1366×768)."""
    from qtpy.QtWidgets import QScrollArea

    model = bench.widgets["Model"]
    raise_tab(bench, qtbot, "Model")
    model.bundled.value = "membranes-fibsem"
    model.demo_button.native.click()
    wait(qtbot, model)
    for control in (model.path, model.load_button, model.bundled, model.demo_button,
                    model.device, model.feedback.label):  # fmt: skip
        assert readable(bench, control), control
    area = model.summary.native.parentWidget().parentWidget()
    assert isinstance(area, QScrollArea) and "licence" in model.summary.value
    bar = area.verticalScrollBar()
    bar.setValue(bar.maximum())  # the last row can be scrolled to, nothing sideways
    settle(qtbot)
    assert area.viewport().rect().bottom() >= model.summary.native.geometry().bottom() - bar.value()
    assert not area.horizontalScrollBar().isVisible()


def test_real_data_like_journey_with_a_voxel_size(make_napari_viewer, qtbot, tmp_path):
    """A stack dropped into napari with its voxel size (2.5 nm; the model was trained at 5):
    it is resampled and says so; masks come back on the stack's grid; no ground truth."""
    from napari_bnadapt._widgets.launch import open_workbench
    from napari_bnadapt.io.images import write_tiff
    from napari_bnadapt.synthetic import TARGET, make_volume

    stack, _ = make_volume((3, 160, 160), TARGET, seed=7)
    path = tmp_path / "new_stack.tif"
    write_tiff(path, stack, (40.0, 2.5, 2.5), "nm")
    bench = open_workbench(make_napari_viewer(show=True), samples=False, files=[str(path)])
    on_screen(bench, qtbot, (1920, 1080))
    viewer, adapt = bench.viewer, bench.widgets["Segment and adapt"]
    layer = viewer.layers["new_stack"]
    np.testing.assert_allclose(layer.scale, (40.0, 2.5, 2.5))
    assert viewer.dims.axis_labels == ("z", "y", "x")
    assert adapt.image.value is layer and adapt.target.value is layer

    raise_tab(bench, qtbot, "Segment and adapt")
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    said = adapt.feedback.text
    assert "is resampled to the model's 5×5 nm" in said and "foreground in new_stack" in said
    before = viewer.layers["new_stack mask [source]"]
    assert before.data.shape == stack.shape
    np.testing.assert_allclose(before.scale, layer.scale)

    show_options(adapt, 8)
    adapt.adapt_button.native.click()
    qtbot.waitUntil(lambda: "new_stack mask [adabn]" in viewer.layers, timeout=TIMEOUT)
    wait(qtbot, adapt)
    assert adapt.session.adapted.adaptation.voxel_size == (40.0, 2.5, 2.5)
    compare = bench.widgets["Compare masks"]
    assert compare.truth.value is None and not compare.more.visible  # nothing more to offer
    compare.metrics_button.native.click()
    wait(qtbot, compare)
    assert "Choose a ground truth for Dice and IoU" in compare.feedback.text
    assert compare.table.native.rowCount() == 5 and table_fully_shown(compare.table)

    # A single 2D image beside it: the image to segment follows it, its mask is 2D.
    viewer.add_image(stack[1], name="one section", scale=(2.5, 2.5), units=("nm", "nm"))
    assert adapt.image.value.name == "one section"
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    assert viewer.layers["one section mask [adabn]"].data.shape == stack[1].shape
    assert not errors()


def test_cancel_midway_changes_nothing_and_says_so(bench, qtbot):
    viewer, adapt = bench.viewer, bench.widgets["Segment and adapt"]
    model = adapt.session.model
    weights = {k: v.clone() for k, v in model.module.state_dict().items()}
    raise_tab(bench, qtbot, "Segment and adapt")
    show_options(adapt, 256)
    worker = adapt.adapt()
    assert adapt.cancel_button.enabled and enabled(adapt) == set()  # only Cancel while it runs
    assert "Cancel stops it" in adapt.feedback.text
    worker.yielded.connect(lambda _step: adapt.cancel_button.native.click())
    wait(qtbot, adapt)
    assert "cancelled; nothing was changed" in adapt.feedback.text
    assert adapt.session.adapted is None and "source (as trained)" in adapt.status.value
    assert enabled(adapt) == UNADAPTED  # no Reset: nothing to undo
    assert not adapt.cancel_button.enabled
    for key, value in model.module.state_dict().items():
        torch.testing.assert_close(value, weights[key])
    assert not any("mask" in layer.name for layer in viewer.layers)

    # A segmentation cancelled midway adds no mask either (a stack long enough for several
    # batches of whole slices, so that the cancel lands between two).
    image = viewer.layers["target EM"]
    viewer.add_image(np.tile(image.data, (48, 1, 1)), name="long stack", scale=image.scale)
    assert adapt.image.value.name == "long stack"
    worker = adapt.segment()
    worker.yielded.connect(lambda _step: adapt.cancel_button.native.click())
    wait(qtbot, adapt)
    assert "cancelled" in adapt.feedback.text
    assert not any("mask" in layer.name for layer in viewer.layers)
    assert not errors()


def test_two_cures_then_three_masks_compared(bench, qtbot):
    viewer, adapt, compare = (
        bench.viewer, bench.widgets["Segment and adapt"], bench.widgets["Compare masks"]
    )  # fmt: skip
    raise_tab(bench, qtbot, "Segment and adapt")
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    show_options(adapt, 8)
    for cure in ("adabn", "histogram+adabn"):
        adapt.cure.value = cure
        adapt.adapt_button.native.click()
        qtbot.waitUntil(lambda c=cure: f"target EM mask [{c}]" in viewer.layers, timeout=TIMEOUT)
        wait(qtbot, adapt)
    assert "histogram+adabn on target EM" in adapt.status.value

    # The newest cure is "after"; "more results" offers only the other cure's mask.
    assert compare.before.value.name == "target EM mask [source]"
    assert compare.after.value.name == "target EM mask [histogram+adabn]"
    assert [x.name for x in compare.more.choices] == ["target EM mask [adabn]"]
    assert compare.truth.value.name == "target ground truth"
    compare.more.value = list(compare.more.choices)
    compare.side_button.native.click()
    settle(qtbot)
    assert captions(viewer) == [
        "1 before [source], empty", "2 after [histogram+adabn]", "3 [adabn]"
    ]  # fmt: skip
    cells = grid_cells(viewer)
    assert len(cells) == 3 and all(whole_image_in_view(viewer, c[0]) for c in cells.values())
    compare.metrics_button.native.click()
    wait(qtbot, compare)
    assert compare.table.native.columnCount() == 3 and table_fully_shown(compare.table)
    for shown in (compare.table, compare.feedback.label, compare.truth, compare.metrics_button,
                  compare.side_button):  # fmt: skip
        assert readable(bench, shown)  # three masks: still no control scrolled away
    table = compare.last_table
    assert table["target EM mask [adabn]"]["dice"] > table["target EM mask [source]"]["dice"] + 0.3
    # The field's scores beside Dice, as rows of the table (the structure the truth shows).
    shown = {"Rand F (ISBI)", "object F1 (IoU ≥ 0.5)"} & set(compare.table.value["index"])
    assert len(shown) == 1
    assert "→ [histogram+adabn]" in compare.feedback.text
    # Closing a mask shown side by side: the cells no longer pair what they say (a
    # walkthrough's captions stacked in one cell): the normal view comes back, said.
    viewer.layers.remove("target EM mask [adabn]")
    settle(qtbot)
    assert not viewer.grid.enabled and not captions(viewer)
    assert "target EM mask [adabn] was closed: back to the normal view" in compare.feedback.text
    assert not errors()


def paint_from_truth(viewer, layer, rows=(24, 64, 104), z=1) -> None:
    """What a person paints: a few lines across one slice, foreground where the ground
    truth has it, background elsewhere (as the mouse would, then the layer redrawn)."""
    truth = viewer.layers["target ground truth"].data
    for row in rows:
        layer.data[z, row, 20:108] = np.where(truth[z, row, 20:108] > 0, 2, 1)
    layer.refresh()


def weights_of(model) -> dict:
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def test_strokes_journey_paint_teach_look_where_next_compare_and_reset(bench, qtbot, tmp_path):
    """Issue 23's napari flow: segment, adapt label-free, paint corrections, see where the
    network is unsure, go there, adapt with the strokes, compare the three masks, reset."""
    from napari_bnadapt.adapt import reset

    viewer, adapt, compare = (
        bench.viewer, bench.widgets["Segment and adapt"], bench.widgets["Compare masks"]
    )  # fmt: skip
    source = weights_of(adapt.session.model)
    raise_tab(bench, qtbot, "Segment and adapt")
    strokes = adapt.strokes
    assert readable(bench, strokes.paint_button) and readable(bench, strokes.map_button)
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    show_options(adapt, 8)
    strokes.steps.value = 20  # a quick lesson, two checks (the default: 200 at most)
    adapt.more_options.value = False  # the options keep their values, hidden
    adapt.adapt_button.native.click()
    qtbot.waitUntil(lambda: "target EM mask [adabn]" in viewer.layers, timeout=TIMEOUT)
    wait(qtbot, adapt)
    raise_tab(bench, qtbot, "Segment and adapt")  # back from Compare masks
    assert "Adapt with strokes" not in enabled(adapt)  # nothing painted yet

    # Paint corrections: a labels layer over the target, two named colours, brush ready.
    image = viewer.layers["target EM"]
    strokes.paint_button.native.click()
    layer = viewer.layers["target EM strokes"]
    assert viewer.layers.selection.active is layer and layer.mode == "paint"
    assert layer.selected_label == 2 and layer.brush_size == 1
    assert layer.data.shape == image.data.shape and np.allclose(layer.scale, image.scale)
    assert list(layer.features["class"]) == ["not labelled", "background", "foreground"]
    magenta, yellow = (tuple(np.round(layer.colormap.map(v)[:3], 2)) for v in (1, 2))
    assert magenta[2] > magenta[1] and yellow[0] > yellow[2]
    settle(qtbot)
    said = adapt.feedback.text
    assert "Paint on target EM strokes: 2 = foreground (yellow)" in said
    assert "1 = background (magenta)" in said
    assert "press Adapt with strokes" in said and readable(bench, adapt.feedback.label)
    assert "Adapt with strokes" not in enabled(adapt)  # still nothing painted
    paint_from_truth(viewer, layer)
    assert "Adapt with strokes" in enabled(adapt)

    # Saved strokes (File ▸ Save Selected Layers) open again as a labels layer that the
    # flow takes as the target's strokes, whatever the file is called (the file keeps the
    # target's name: a walkthrough's "my strokes.tif" was a plain labels layer).
    saved = viewer.layers.save(
        str(tmp_path / "my strokes.tif"), selected=True, plugin="napari-bnadapt"
    )
    painted = np.array(layer.data)
    viewer.layers.remove(layer)
    assert "Adapt with strokes" not in enabled(adapt)
    [layer] = viewer.open(saved[0], plugin="napari-bnadapt")
    assert type(layer).__name__ == "Labels" and layer.name == "my strokes"
    np.testing.assert_array_equal(layer.data, painted)
    assert strokes.strokes_layer(image) is layer and "Adapt with strokes" in enabled(adapt)

    # Where to paint next: the map as a layer under the strokes, then the most unsure
    # region not painted yet moves the view.
    strokes.map_button.native.click()
    wait(qtbot, adapt)
    mapped = viewer.layers["target EM uncertainty"]
    assert mapped.data.shape == image.data.shape and mapped.colormap.name == "bnadapt unsure"
    assert viewer.layers.index(mapped) < viewer.layers.index(layer)  # strokes on top
    assert "the redder, the less sure" in adapt.feedback.text
    assert "Next uncertain region" in enabled(adapt)
    assert adapt.image.value is image and adapt.target.value is image  # not the map
    before = (viewer.dims.current_step, viewer.scene.camera.center, viewer.scene.camera.zoom)
    strokes.next_button.native.click()
    after = (viewer.dims.current_step, viewer.scene.camera.center, viewer.scene.camera.zoom)
    assert after != before and "Unsure region 1 of target EM" in adapt.feedback.text
    region = strokes.visited[0]
    assert viewer.dims.current_step[0] == region[0].start
    assert region[0] != slice(1, 2)  # slice 1 is painted across: nothing there to propose
    # The region outlined on its slice (where to paint, not only where the view went),
    # under the strokes, which stay selected; the next region replaces the outline.
    outline = viewer.layers["target EM unsure region"]
    [box] = outline.data
    assert np.all(box[:, 0] == region[0].start) and outline.shape_type == ["rectangle"]
    assert box[:, 1].min() == region[1].start - 0.5 and box[:, 2].max() == region[2].stop - 0.5
    assert viewer.layers[-1] is layer and viewer.layers.selection.active is layer
    adapt.roi.reset_choices()
    assert outline not in adapt.roi.choices and layer in adapt.roi.choices  # not an ROI
    strokes.next_button.native.click()
    assert len(outline.data) == 1 and len(strokes.visited) == 2
    assert np.all(outline.data[0][:, 0] == strokes.visited[1][0].start)
    assert not [t for t in toasts() if "units" in t]  # drawn in the target's units

    # Adapt with strokes: a copy taught, the target segmented again, what it did said.
    strokes.adapt_button.native.click()
    assert "Teaching a copy of the network" in adapt.feedback.text
    qtbot.waitUntil(lambda: "target EM mask [adabn+strokes]" in viewer.layers, timeout=TIMEOUT)
    wait(qtbot, adapt)
    record = adapt.session.adapted.adaptation
    details = record.details["strokes"]
    said = adapt.feedback.text
    assert said.startswith(f"Trained on {details['strokes']} strokes")
    assert f"({details['labelled_pixels']} px" in said and "slice 1)" in said
    assert f"{details['steps']} steps; held-back strokes" in said and "[adabn+strokes]" in said
    held = details["held_out_before"]["accuracy"]
    assert f"{100 * held:.0f} %" in said and ("kept" in said or "undone" in said)
    assert ": kept." in said if details["guard"]["kept"] else ": undone" in said
    assert "Paint more there" in said and front_tab(bench) == "2 Segment, adapt"  # stays
    assert readable(bench, adapt.feedback.label) and readable(bench, strokes.adapt_button)
    assert readable(bench, adapt.reset_button)  # the undo in view under a long message
    assert details["from"] == "my strokes" and details["slices"] == [1]  # the layer taught
    assert "Statistics: adapted (adabn+strokes on target EM)" in adapt.status.value
    assert {"Reset to source statistics", "Adapt with strokes"} <= enabled(adapt)
    assert viewer.layers[-1] is layer and viewer.layers.selection.active is layer  # paint more

    assert "label-free: " in said  # the share of foreground the strokes changed from
    # Only the newest mask shows (an older one under it would fill its gaps); the map and
    # outline of the network before are out of date: hidden, no region to go to.
    assert viewer.layers["target EM mask [adabn+strokes]"].visible
    assert not viewer.layers["target EM mask [adabn]"].visible
    assert not mapped.visible and not outline.visible
    assert "Next uncertain region" not in enabled(adapt)

    # Compare: the source mask before, the strokes' after, the label-free one offered; its
    # message names the new mask, not the label-free one it chose before.
    assert compare.before.value.name == "target EM mask [source]"
    assert compare.after.value.name == "target EM mask [adabn+strokes]"
    assert "target EM mask [adabn+strokes] (after)" in compare.feedback.text
    assert [x.name for x in compare.more.choices] == ["target EM mask [adabn]"]  # not strokes
    compare.metrics_button.native.click()
    wait(qtbot, compare)
    assert "Paint more there" in compare.feedback.text  # not the latents: weights changed

    # Reset: the source again, bit for bit (and the taught copy resets bit for bit too).
    taught = adapt.session.adapted.copy()
    raise_tab(bench, qtbot, "Segment and adapt")
    adapt.reset_button.native.click()
    assert adapt.session.adapted is None and "source (as trained)" in adapt.status.value
    assert "Back to the source statistics and weights, as trained." in adapt.feedback.text
    for model in (adapt.session.model, taught):
        if model is taught:
            reset(model)
        for key, value in model.module.state_dict().items():
            assert torch.equal(value, source[key]), key
    assert not errors()


def test_strokes_cancelled_midway_change_nothing(bench, qtbot):
    """The cure menu's "strokes" needs painted strokes; cancelling it keeps the model, the
    strokes and the layers as they were."""
    viewer, adapt = bench.viewer, bench.widgets["Segment and adapt"]
    source = weights_of(adapt.session.model)
    raise_tab(bench, qtbot, "Segment and adapt")
    adapt.cure.value = "strokes"
    assert "Adapt BatchNorm statistics" not in enabled(adapt)  # nothing painted to learn from
    layer = adapt.strokes.paint()
    paint_from_truth(viewer, layer)
    painted = layer.data.copy()
    assert {"Adapt BatchNorm statistics", "Adapt with strokes"} <= enabled(adapt)
    layers = [x.name for x in viewer.layers]
    adapt.strokes.steps.value = 5000  # long enough to be cancelled between two steps
    worker = adapt.adapt()  # the cure menu's choice: the strokes flow
    assert "(strokes, at most 5000 steps)" in adapt.feedback.text
    assert enabled(adapt) == set() and adapt.cancel_button.enabled
    worker.yielded.connect(lambda _step: adapt.cancel_button.native.click())
    wait(qtbot, adapt)
    assert "cancelled; nothing was changed" in adapt.feedback.text
    assert adapt.session.adapted is None and [x.name for x in viewer.layers] == layers
    np.testing.assert_array_equal(layer.data, painted)
    for key, value in adapt.session.model.module.state_dict().items():
        assert torch.equal(value, source[key]), key
    assert not errors()


@pytest.mark.parametrize(
    ("cure", "left", "fallback", "status", "next_step"),
    [
        ("adabn+strokes", "adabn", "label-free [adabn]",
         "Statistics: adapted (adabn on target EM (strokes undone)).", "Paint more there"),
        # The source finds nothing on the shifted target: adapting it is the next step.
        ("strokes", "source", "source", "Statistics: source (strokes on target EM undone).",
         "Next: press Adapt BatchNorm statistics"),
    ],
)  # fmt: skip
def test_strokes_undone_by_the_guard_leave_the_label_free_network_and_say_so(
    bench, qtbot, monkeypatch, cure, left, fallback, status, next_step
):
    """When the held-out strokes reject what was learnt, everything the user sees says the
    network is the label-free one (or the source, after ``strokes`` alone): no stroke mask,
    the status line, the message (and its next step: paint where the mask is wrong)."""
    from napari_bnadapt.adapt import stroke_training

    monkeypatch.setattr(stroke_training.HeldOutScore, "better_than", lambda *_: False)
    viewer, adapt = bench.viewer, bench.widgets["Segment and adapt"]
    raise_tab(bench, qtbot, "Segment and adapt")
    adapt.segment_button.native.click()
    wait(qtbot, adapt)
    layer = adapt.strokes.paint()
    paint_from_truth(viewer, layer)
    adapt.cure.value = cure
    adapt.strokes.steps.value = 20
    adapt.strokes.adapt_button.native.click()
    qtbot.waitUntil(lambda: "Trained on" in adapt.feedback.text, timeout=TIMEOUT)
    wait(qtbot, adapt)
    record = adapt.session.adapted.adaptation
    assert record.cure == cure and record.undone == "strokes" and record.in_force == left
    assert f"target EM mask [{cure}]" not in viewer.layers
    assert f"target EM mask [{left}]" in viewer.layers
    said = adapt.feedback.text
    assert f": undone, the network and mask are the {fallback} ones." in said
    assert "label-free: " not in said  # the mask is the label-free one: no self-comparison
    assert next_step in said and front_tab(bench) == "2 Segment, adapt"
    assert adapt.status.value == status
    active = viewer.layers.selection.active  # the strokes on top: paint elsewhere
    assert active.name == "target EM strokes" and viewer.layers[-1] is active
    assert not errors()


def test_a_taught_model_keeps_its_strokes_and_brings_them_back(bench, qtbot, tmp_path):
    """Strokes are saved and loaded with the model: a taught model saved, opened again
    another day (its strokes layer gone), and Paint corrections brings back what the network
    was told, ready to paint more and teach again."""
    viewer, adapt = bench.viewer, bench.widgets["Segment and adapt"]
    models = bench.widgets["Model"]
    raise_tab(bench, qtbot, "Segment and adapt")
    layer = adapt.strokes.paint()
    paint_from_truth(viewer, layer)
    painted = np.array(layer.data)
    show_options(adapt, 8)
    adapt.strokes.steps.value = 10
    adapt.strokes.adapt_button.native.click()
    qtbot.waitUntil(lambda: "Trained on" in adapt.feedback.text, timeout=TIMEOUT)
    wait(qtbot, adapt)
    adapt.save_path.value = str(tmp_path / "taught.pt")
    adapt.save_button.native.click()
    wait(qtbot, adapt)
    assert "with the strokes it was taught with" in adapt.feedback.text

    viewer.layers.remove("target EM strokes")  # another day: only the model file is left
    raise_tab(bench, qtbot, "Model")
    models.path.value = str(tmp_path / "taught.pt")
    models.load_button.native.click()
    wait(qtbot, models)
    assert "Paint corrections brings them back" in models.feedback.text
    assert "strokes" in models.summary.value and "stored in the model" in models.summary.value

    raise_tab(bench, qtbot, "Segment and adapt")
    adapt.strokes.paint_button.native.click()
    restored = viewer.layers["target EM strokes"]
    np.testing.assert_array_equal(restored.data, painted)
    assert viewer.layers.selection.active is restored and restored.mode == "paint"
    said = adapt.feedback.text
    assert "Brought back the strokes the model was taught with" in said
    assert f"{int((painted > 0).sum()):,} labelled pixels painted on target EM" in said
    assert "Adapt with strokes" in enabled(adapt)

    adapt.reset_button.native.click()  # the source again: the Model tab says so, not the strokes
    assert "strokes" not in models.feedback.text and "strokes" not in models.summary.value
    assert models.feedback.text.startswith("Using ")
    assert not errors()
    # Saved over another copy of the taught file, its strokes would be lost: refused, as
    # on the CLI (a walkthrough lost them so).
    precious = tmp_path / "precious.pt"
    precious.write_bytes((tmp_path / "taught.pt").read_bytes())
    adapt.save_path.value = str(precious)
    adapt.save_button.native.click()
    wait(qtbot, adapt)
    assert "taught with painted strokes" in adapt.feedback.text
    assert load_model(precious).strokes is not None
