"""Screenshots of the real napari window for the README (run under Xvfb).

``xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/screenshots.py docs/images``
drives the whole workflow through the widgets, as a user would, at the two window sizes
users have (1366×768, a laptop; 1920×1080), and saves one PNG per step and size
(``1_model_1366x768.png`` …).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from qtpy.QtWidgets import QApplication

from napari_bnadapt._widgets.launch import open_workbench


def wait_for(widget) -> None:
    while widget.runner.running:
        QApplication.processEvents()


def shoot(bench, dock: str, path: Path) -> None:
    bench.docks[dock].raise_()
    bench.viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
    bench.viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")


SIZES = ((1366, 768), (1920, 1080))


def main(out: Path) -> None:
    import napari

    out.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        walk(out, width, height)
        napari.Viewer.close_all()


def walk(out: Path, width: int, height: int) -> None:
    size = f"{width}x{height}"
    bench = open_workbench()
    viewer = bench.viewer
    viewer.window._qt_window.resize(width, height)
    viewer.window._qt_window.show()
    for _ in range(50):
        QApplication.processEvents()
    for name in ("source EM", "source ground truth", "target ground truth"):
        viewer.layers[name].visible = False
    shoot(bench, "Model", out / f"1_model_{size}.png")

    adapt = bench.widgets["Segment and adapt"]
    adapt.image.value = viewer.layers["target EM"]
    adapt.target.value = viewer.layers["target EM"]
    adapt.segment()
    wait_for(adapt)
    adapt.adapt()
    wait_for(adapt)
    wait_for(adapt)  # the segmentation with adapted statistics follows the adaptation
    while "target EM mask [adabn]" not in viewer.layers:
        QApplication.processEvents()
    wait_for(adapt)
    adapt.cure.value = "histogram+adabn"  # a second cure, for the N-way comparison
    adapt.adapt()
    while "target EM mask [histogram+adabn]" not in viewer.layers:
        QApplication.processEvents()
    wait_for(adapt)
    viewer.layers["target EM mask [source]"].visible = False
    viewer.dims.set_point(0, viewer.dims.range[0].stop / 2)
    shoot(bench, "Segment and adapt", out / f"2_segment_and_adapt_{size}.png")

    compare = bench.widgets["Compare masks"]
    compare.reset_choices()
    compare._refresh()
    compare.truth.value = viewer.layers["target ground truth"]
    compare.more.value = [viewer.layers["target EM mask [adabn]"]]
    compare.metrics()
    wait_for(compare)
    compare.side_by_side()
    shoot(bench, "Compare masks", out / f"3_compare_{size}.png")
    compare.normal_view()

    histograms = bench.widgets["Latent histograms"]
    histograms.reset_choices()
    histograms.target.value = viewer.layers["target EM"]
    histograms.source.value = viewer.layers["source EM"]
    histograms.measure()
    wait_for(histograms)
    histograms.layer.value = "encoder.0.bn2"
    shoot(bench, "Latent histograms", out / f"4_latent_histograms_{size}.png")

    # The AdaBN-adapted model saved as a bioimage.io package, then opened again.
    adapt.reset()
    adapt.cure.value = "adabn"
    adapt.adapt()
    wait_for(adapt)
    wait_for(adapt)
    package = Path(tempfile.mkdtemp(prefix="bnadapt-shots-")) / "demo_adapted.pt"
    adapt.save_path.value = package
    adapt.save_package()
    wait_for(adapt)
    model = bench.widgets["Model"]
    model.path.value = package.with_suffix(".zip")
    model.load()
    wait_for(model)
    shoot(bench, "Model", out / f"5_bioimageio_package_{size}.png")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
