"""The first five minutes: the flow a microscopist follows, found by what is on screen."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.qt

TIMEOUT = 60_000


@pytest.fixture
def bench(make_napari_viewer, tiny_samples):
    from napari_bnadapt._widgets.launch import open_workbench

    return open_workbench(make_napari_viewer())


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


def test_the_widgets_are_tabs_in_workflow_order_each_saying_what_it_is_for(bench):
    from napari_bnadapt._widgets.launch import DOCKED

    assert list(bench.widgets) == list(DOCKED)
    assert front_tab(bench).startswith("1 Model")
    assert all(
        widget.purpose.value.startswith(f"Step {i}")
        and widget.purpose.native.isVisibleTo(widget.native)
        for i, widget in enumerate(bench.widgets.values(), 1)
    ), "every widget says in one line what it is for"


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
    assert header.text() == "W2\n(σ)" and "wasserstein_standardised" in header.toolTip()


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
