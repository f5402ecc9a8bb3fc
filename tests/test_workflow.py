"""The first five minutes: the flow a microscopist follows, found by what is on screen."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.qt

TIMEOUT = 60_000


@pytest.fixture
def bench(make_napari_viewer):
    from napari_bnadapt._widgets.launch import open_workbench

    return open_workbench(make_napari_viewer())


def button(widget, text):
    """The button a user sees with this text."""
    from magicgui.widgets import PushButton

    found = [w for w in walk(widget) if isinstance(w, PushButton) and w.text == text]
    assert found, f"no button {text!r}"
    return found[0]


def walk(container):
    from magicgui.widgets import Container

    for child in container:
        yield child
        if isinstance(child, Container):
            yield from walk(child)


def front_tab(bench) -> str:
    from qtpy.QtWidgets import QTabBar

    bars = bench.viewer.window._qt_window.findChildren(QTabBar)
    texts = [bar.tabText(bar.currentIndex()) for bar in bars if bar.count() >= 4]
    assert texts, "the widgets are not tabbed"
    return texts[0]


def test_the_flow_in_order_from_model_to_comparison(bench, qtbot):
    from napari_bnadapt._widgets.launch import DOCKED

    assert list(bench.widgets) == list(DOCKED)
    assert front_tab(bench).startswith("Model")
    assert all(
        widget.purpose.value.startswith(f"Step {i}")
        and widget.purpose.native.isVisibleTo(widget.native)
        for i, widget in enumerate(bench.widgets.values(), 1)
    ), "every widget says in one line what it is for"
    adapt = bench.widgets["Segment and adapt"]
    adapt.image.value = bench.viewer.layers["target EM"]
    button(adapt, "Segment").native.click()
    qtbot.waitUntil(lambda: "target EM mask [source]" in bench.viewer.layers, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not adapt.runner.running, timeout=TIMEOUT)
    assert "Adapt" in adapt.next_step.value
    adapt.target.value = bench.viewer.layers["target EM"]
    adapt.patches.value = 16
    button(adapt, "Adapt BatchNorm statistics").native.click()
    qtbot.waitUntil(lambda: "target EM mask [adabn]" in bench.viewer.layers, timeout=TIMEOUT)
    compare = bench.widgets["Compare masks"]
    # The next step is offered: its tab in front, both masks chosen.
    assert front_tab(bench).startswith("Compare")
    assert compare.before.value.name == "target EM mask [source]"
    assert compare.after.value.name == "target EM mask [adabn]"
    assert "Compare" in adapt.next_step.value
    assert "adapted to target EM (adabn" in bench.widgets["Model"].live.value
    button(compare, "Compute metrics").native.click()
    qtbot.waitUntil(lambda: not compare.runner.running, timeout=TIMEOUT)
    table = compare.table.native
    shown = [table.itemDelegate().displayText(table.item(r, 0).text(), table.locale())
             for r in range(table.rowCount())]  # fmt: skip
    assert shown and not any("e-0" in text for text in shown), shown
    # Masks are coloured by the statistics that made them.
    before, after = (bench.viewer.layers[f"target EM mask [{s}]"] for s in ("source", "adabn"))
    assert not np.allclose(before.colormap.map(1), after.colormap.map(1))


def test_every_control_explains_itself(bench):
    from magicgui.widgets import Label, Table

    for name, widget in bench.widgets.items():
        for control in walk(widget):
            if isinstance(control, (Label, Table)) or (not control.name and not control.label):
                continue
            if type(control).__name__ == "Container":
                continue
            assert control.tooltip, f"{name}: {control.label or control.name} has no tooltip"


def test_histogram_headers_are_short_with_the_full_name_as_tooltip(bench):
    header = bench.widgets["Latent histograms"].table.native.horizontalHeaderItem(1)
    assert header.text() == "W2 (σ)" and "wasserstein_standardised" in header.toolTip()


def test_plots_follow_napari_theme(bench):
    from matplotlib.colors import to_hex

    widget = bench.widgets["Latent histograms"]
    bench.viewer.theme = "light"
    light = to_hex(widget.figure.get_facecolor())
    bench.viewer.theme = "dark"
    dark = to_hex(widget.figure.get_facecolor())
    assert light != dark and dark == "#23242b"


def test_main_actions_have_keys(bench):
    from napari_bnadapt._widgets.launch import SHORTCUTS

    bound = {str(k) for k in bench.viewer.keymap}
    for key, *_ in SHORTCUTS:
        assert any(key.replace("-", "+") in b or key in b for b in bound), (key, bound)


def test_gui_opens_the_users_files_and_model(make_napari_viewer, tmp_path, small_model_2d):
    import tifffile

    from napari_bnadapt._widgets.launch import open_workbench

    tifffile.imwrite(
        tmp_path / "stack.tif", np.zeros((3, 32, 32), np.uint8), photometric="minisblack"
    )
    bench = open_workbench(
        make_napari_viewer(), samples=False, files=[str(tmp_path / "stack.tif")],
        model=small_model_2d,
    )  # fmt: skip
    assert [layer.name for layer in bench.viewer.layers] == ["stack"]
    assert bench.widgets["Model"].session.model is small_model_2d
