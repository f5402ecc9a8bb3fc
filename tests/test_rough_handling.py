"""Rough handling in napari: double clicks, layers deleted or renamed mid-run, another model
loaded mid-run, the viewer closed mid-run, two widgets' jobs at once, many adapt/reset
cycles. No exception escapes to napari, no worker outlives its widget, and napari's own
check for leaked QtViewers runs after every test (make_napari_viewer)."""

from __future__ import annotations

import gc
import os

import pytest
import torch

pytest.importorskip("napari")
pytestmark = pytest.mark.qt

TIMEOUT = 60_000


@pytest.fixture
def workbench(make_napari_viewer):
    from napari_bnadapt._widgets.launch import open_workbench

    bench = open_workbench(make_napari_viewer(strict_qt=True))
    return bench.viewer, bench.widgets


def wait(qtbot, *widgets):
    qtbot.waitUntil(lambda: not any(w.runner.running for w in widgets), timeout=TIMEOUT)


def errors_shown() -> list[str]:
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records if n.severity == "error"]


def messages(level: str) -> list[str]:
    from napari.utils.notifications import notification_manager

    return [str(n.message) for n in notification_manager.records if n.severity == level]


def test_double_clicks_start_one_job(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.target.value = viewer.layers["target EM"]
    widget.segment_after.value = False
    first = widget.adapt()
    second = widget.adapt()
    assert first is not None and second is None
    assert any("already running" in m for m in messages("warning"))
    wait(qtbot, widget)
    assert widget.session.adapted is not None and not errors_shown()


def test_deleting_or_renaming_the_input_mid_run(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    image = viewer.layers["target EM"]
    widget.image.value = image
    widget.segment()
    viewer.layers.remove(image)  # before the worker is done
    wait(qtbot, widget)
    assert not any("mask" in layer.name for layer in viewer.layers)
    assert any("was closed while it was segmented" in m for m in messages("warning"))
    source = viewer.layers["source EM"]
    widget.image.value = source
    widget.segment()
    source.name = "renamed EM"
    wait(qtbot, widget)
    assert "renamed EM mask [source]" in viewer.layers and not errors_shown()


def test_loading_another_model_mid_adaptation_discards_the_result(workbench, qtbot):
    from napari_bnadapt.model import load_model

    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.target.value = viewer.layers["target EM"]
    widget.segment_after.value = False
    widget.patches.value = 64
    widget.adapt()
    other = load_model("demo")
    widget.session.set_model(other)  # what the Model widget does when its load finishes
    wait(qtbot, widget)
    assert widget.session.model is other and widget.session.adapted is None
    assert any("result was discarded" in m for m in messages("warning"))
    assert not errors_shown()


def test_loading_another_model_mid_segmentation_discards_the_mask(workbench, qtbot):
    """A walkthrough saw the previous model's mask added and described with the new
    model's voxel size and training figures."""
    from napari_bnadapt.model import load_model

    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.image.value = viewer.layers["target EM"]
    widget.segment()
    widget.session.set_model(load_model("demo"))  # the Model widget's load finishing
    wait(qtbot, widget)
    assert "target EM mask [source]" not in viewer.layers
    assert any("model changed while segmenting" in m for m in messages("warning"))
    widget.segment()
    wait(qtbot, widget)
    assert "target EM mask [source]" in viewer.layers and not errors_shown()


def test_closing_the_target_mid_adaptation_is_said_not_blamed(workbench, qtbot):
    """The adaptation is kept and the message says the target was closed; a walkthrough
    got a red "Choose an image to segment" instead. A model loaded before any mask does
    not speak of "the masks shown"."""
    from napari_bnadapt.model import load_model

    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.session.set_model(load_model("demo"))
    assert "masks shown" not in widget.feedback.text
    assert "press Segment to segment an image with it" in widget.feedback.text
    target = viewer.layers["target EM"]
    for layer in [x for x in viewer.layers if x is not target]:
        viewer.layers.remove(layer)  # the only image: none left to segment
    widget.image.value = widget.target.value = target
    widget.adapt()
    viewer.layers.remove(target)
    wait(qtbot, widget)
    assert widget.session.adapted is not None and not errors_shown()
    assert "Open target EM again to segment it" in widget.feedback.text


def test_closing_the_viewer_mid_run_stops_the_workers(make_napari_viewer, qtbot):
    from napari_bnadapt._widgets.launch import open_workbench

    bench = open_workbench(make_napari_viewer())
    widget, histograms = bench.widgets["Segment and adapt"], bench.widgets["Latent histograms"]
    widget.target.value = bench.viewer.layers["target EM"]
    widget.patches.value = 256
    worker = widget.adapt()
    histograms.measure()
    measuring = histograms.runner.worker
    bench.viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running and not measuring.is_running, timeout=TIMEOUT)
    assert not errors_shown()


def test_two_widgets_jobs_at_once(workbench, qtbot):
    viewer, widgets = workbench
    widget, histograms = widgets["Segment and adapt"], widgets["Latent histograms"]
    widget.image.value = viewer.layers["target EM"]
    histograms.target.value = viewer.layers["target EM"]
    histograms.measure()
    widget.segment()
    wait(qtbot, widget, histograms)
    assert histograms.session.diagnosis is not None
    assert "target EM mask [source]" in viewer.layers
    # The capture's recording hooks lived on a copy: the shared model has none left.
    module = widget.session.model.module
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())
    assert not errors_shown()


def resident_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2


def live_models() -> int:
    """LoadedModels and networks still alive (a leak of adapted copies would show here)."""
    from napari_bnadapt.model import LoadedModel

    gc.collect()
    return sum(isinstance(o, LoadedModel | torch.nn.Module) for o in gc.get_objects())


def test_many_adapt_reset_cycles_keep_memory_flat(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    widget.target.value = viewer.layers["target EM"]
    widget.segment_after.value = False
    widget.patches.value = 8
    source = {k: v.clone() for k, v in widget.session.model.module.state_dict().items()}
    cycles = int(os.environ.get("BNADAPT_CYCLES", "20"))
    sizes, models = [], []
    for cycle in range(cycles):
        widget.adapt()
        wait(qtbot, widget)
        widget.reset()
        if cycle in (4, cycles - 1):
            models.append(live_models())
            sizes.append(resident_mb())
    print(f"resident memory after 5 and {cycles} cycles: {sizes[0]:.0f} → {sizes[1]:.0f} MB")
    after = widget.session.model.module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in source.items())
    # No adapted copy, network or worker is kept from one cycle to the next...
    assert models[1] <= models[0], f"{models[1] - models[0]} models/modules kept"
    # ...and resident memory does not follow the cycles (the allocator grows in steps).
    assert sizes[1] - sizes[0] < 150, f"resident memory grew {sizes[1] - sizes[0]:.0f} MB"
    assert widget.session.adapted is None and not errors_shown()


def test_out_of_memory_in_a_widget_job_is_one_notification(workbench, qtbot):
    viewer, widgets = workbench
    widget = widgets["Segment and adapt"]
    model = widget.session.model
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    first = next(m for m in model.module.modules() if isinstance(m, torch.nn.Conv2d))
    handle = first.register_forward_pre_hook(lambda *_: (_ for _ in ()).throw(MemoryError()))
    widget.target.value = viewer.layers["target EM"]
    widget.adapt()
    wait(qtbot, widget)
    handle.remove()
    assert any("out of memory; nothing was changed" in m for m in errors_shown())
    after = model.module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert widget.session.adapted is None
