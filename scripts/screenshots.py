"""Screenshots of the real napari window for the README (run under Xvfb).

``xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/screenshots.py docs/images``
walks the whole workflow by pressing the widgets' buttons, as a user would, at the two
window sizes users have (1366×768, a laptop; 1920×1080), and saves one PNG per step and size
(``1_model_1366x768.png`` …). Nothing is arranged for the camera: what the widgets leave on
the screen is what the pictures show.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from qtpy.QtWidgets import QApplication

from napari_bnadapt._widgets.launch import open_workbench

SIZES = ((1366, 768), (1920, 1080))


def settle(rounds: int = 40) -> None:
    for _ in range(rounds):
        QApplication.processEvents()


def wait_for(widget) -> None:
    """Until the widget's job (and a job it chains, such as segmenting after adapting) ends."""
    settle(5)
    while widget.runner.running:
        QApplication.processEvents()
        time.sleep(0.01)
    settle()


def shoot(bench, dock: str, path: Path) -> None:
    bench.docks[dock].raise_()
    settle()
    bench.viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")


def main(out: Path) -> None:
    import napari

    out.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        walk(out, width, height)
        napari.Viewer.close_all()


def walk(out: Path, width: int, height: int) -> None:
    size = f"{width}x{height}"
    bench = open_workbench()
    viewer, widgets = bench.viewer, bench.widgets
    viewer.window._qt_window.resize(width, height)
    viewer.window._qt_window.show()
    settle(60)
    shoot(bench, "Model", out / f"1_model_{size}.png")

    # Segment the shifted target: an empty mask, and what to do about it.
    adapt = widgets["Segment and adapt"]
    adapt.segment_button.native.click()
    wait_for(adapt)
    viewer.dims.set_point(0, viewer.dims.range[0].stop / 2)
    shoot(bench, "Segment and adapt", out / f"2_segmented_{size}.png")

    # Adapt (it segments again); then a second cure, for the three-way comparison.
    adapt.adapt_button.native.click()
    wait_for(adapt)
    adapt.cure.value = "histogram+adabn"
    adapt.adapt_button.native.click()
    wait_for(adapt)
    shoot(bench, "Segment and adapt", out / f"2_segment_and_adapt_{size}.png")

    compare = widgets["Compare masks"]
    compare.more.value = list(compare.more.choices)
    compare.side_button.native.click()
    settle()
    compare.metrics_button.native.click()
    wait_for(compare)
    shoot(bench, "Compare masks", out / f"3_compare_{size}.png")
    compare.normal_button.native.click()

    histograms = widgets["Latent histograms"]
    histograms.source.value = viewer.layers["source EM"]
    histograms.measure_button.native.click()
    wait_for(histograms)
    shoot(bench, "Latent histograms", out / f"4_latent_histograms_{size}.png")
    histograms.plots_button.native.click()
    shoot(bench, "Latent plots", out / f"4_latent_plots_{size}.png")

    # Teach it with strokes: a few lines painted from the ground truth on the slice in view,
    # the most unsure region outlined, then the network taught and the target segmented.
    strokes = adapt.strokes
    layer = strokes.paint()
    z = int(viewer.dims.current_step[0])
    truth = viewer.layers["target ground truth"].data
    for row in (40, 96, 152):
        layer.data[z, row, 16:176] = (truth[z, row, 16:176] > 0) + 1
    layer.refresh()
    strokes.map_button.native.click()
    wait_for(adapt)
    strokes.next_button.native.click()
    shoot(bench, "Segment and adapt", out / f"6_strokes_region_{size}.png")
    strokes.adapt_button.native.click()
    wait_for(adapt)
    shoot(bench, "Segment and adapt", out / f"6_strokes_taught_{size}.png")

    # The AdaBN-adapted model saved as a bioimage.io package, then opened again.
    adapt.reset_button.native.click()
    adapt.cure.value = "adabn"
    adapt.adapt_button.native.click()
    wait_for(adapt)
    package = Path(tempfile.mkdtemp(prefix="bnadapt-shots-")) / "demo_adapted.pt"
    adapt.save_path.value = package
    adapt.package_button.native.click()
    wait_for(adapt)
    model = widgets["Model"]
    model.path.value = package.with_suffix(".zip")
    model.load_button.native.click()
    wait_for(model)
    shoot(bench, "Model", out / f"5_bioimageio_package_{size}.png")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
