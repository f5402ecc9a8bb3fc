"""What each widget is for and what each control does, in a microscopist's words.

One place for the words the widgets show: a one-line purpose at the top of each widget,
the next step after each action, and a tooltip for every control (the term explained, and
its default). :func:`explain` attaches them; a test checks no control is left without one.
"""

from __future__ import annotations

from typing import Any

from ..adabn.config import DEFAULT_PATCHES, AdaptConfig
from ..diagnostics.latents import LatentConfig

ADAPT = AdaptConfig()

PURPOSE = {
    "Model": "Step 1 · Choose the network that segments your data (a file or a bundled model).",
    "Segment and adapt": "Step 2 · Segment an image; poor mask? Adapt the network to the "
    "new data (no labels), or teach it with a few strokes.",
    "Compare masks": "Step 3 · Look at the masks before and after adaptation side by side, "
    "and measure how they differ.",
    "Latent histograms": "Step 4 · Why adaptation helped or not: the network's internal "
    "features of the new data against its training data's.",
}

#: What to do next, after each action (``{target}``: the layer concerned). Each button named
#: here is one the user can press at that moment.
NEXT_STEP = {
    "start": "Next: choose the image to segment and press Segment.",
    "model loaded": "Next: Segment and adapt (step 2): segment an image with this model.",
    "other model": "The masks shown are of the model before: press Segment to see this one's.",
    "other model, no masks": "Next: press Segment to segment an image with it.",
    "no batchnorm": "This model has no BatchNorm layer to re-estimate: it can segment, but "
    "not be adapted.",
    "segmented": "Poor mask? Press Adapt BatchNorm statistics to adapt the network to "
    "{target} (no labels needed); it segments again. Good mask: File ▸ Save Selected Layers.",
    "segmented lazily": "The store is removed when napari quits: File ▸ Save Selected Layers "
    "keeps the mask. Poor mask? Press Adapt BatchNorm statistics; it segments again.",
    "empty": "Next: press Adapt BatchNorm statistics to adapt the network to {target} (no "
    "labels needed); it segments again.",
    "adapted": "Next: Compare masks (step 3, now in front) shows the masks before and after "
    "side by side.",
    "adapted, no before": "Segment with the source statistics too (Reset, Segment) to "
    "compare before and after.",
    "adapted, not segmented": "Next: press Segment to see the mask with the adapted statistics.",
    "no gain": "Try another cure (cure: auto tries several), check the voxel size, or "
    "press Reset to source statistics.",
    "reset": "Press Segment to see the mask with the source statistics again.",
    "painting": "Next: press Adapt with strokes.",
    "taught": "Still wrong somewhere? Paint more there and press Adapt with strokes again; "
    "Compare masks (step 3) sets the masks side by side.",
    "mapped": "Next: press Next uncertain region, and paint what is wrong there.",
    "region": "Paint what is wrong here, then press Next uncertain region again, or Adapt "
    "with strokes.",
    "saved": "The file keeps the source statistics: bnadapt adapt --reset restores them.",
    "packaged": "Open it in deepImageJ, ilastik or the Model widget (step 1).",
    "side by side": "Back to the normal view restores your layers.",
    "compared": "Next: Latent histograms (step 4) shows why adaptation changed the masks.",
    "compared, taught": "Still wrong somewhere? Paint more there (Segment and adapt, step 2) "
    "and teach again; side by side shows what the strokes changed.",
    "measured": "The plots: the Latent plots tab (Show the plots).",
}

TOOLTIPS: dict[str, dict[str, str]] = {
    "Model": {
        "path": "A model file: this plugin's .pt, a TorchScript file (.pt/.ts), or a "
        "bioimage.io model-zoo package (.zip, or the rdf.yaml of an unpacked one). Press "
        "Load model after choosing it.",
        "load_button": "Load the chosen file (the current model stays until it loads).",
        "bundled": "Models shipped with the plugin: demo (synthetic data) or membranes-fibsem "
        "(cell membranes in FIB-SEM of neural tissue, 10 nm pixels).",
        "demo_button": "Load the bundled model chosen on the left.",
        "device": "Where the network runs: auto picks a CUDA GPU, then Apple MPS, then the CPU.",
    },
    "Segment and adapt": {
        "image": "The image or volume to segment with the current statistics.",
        "voxel_size": "The voxel size of the image and target in nm (z, y, x, or one value "
        "for all), e.g. 50,4.6,4.6. Empty (default): the layer's own scale when its unit is "
        "physical (read from the file's metadata). When it differs from the model's training "
        "voxel size (Model widget) the input is resampled to the model's scale and the mask "
        "back: on real data this matters more than any cure.",
        "probabilities": "Also add the foreground probability (0–1) as an image layer.",
        "threshold": "A pixel is foreground where its probability is at least this (default: "
        "the model's own, 0.5 unless its package says otherwise). Higher draws thinner "
        "membranes, lower thicker ones: a thickness convention, not a new network. Press "
        "Segment again to see it.",
        "segment_button": "Segment the image (shortcut Alt+S). The mask layer's name says "
        "which statistics made it: [source] or the cure, e.g. [adabn].",
        "target": "Unlabeled images of the new data. Adaptation only looks at their pixels: "
        "no labels are needed. Usually the same image you segment.",
        "cure": "What is changed to fit the new data. adabn (default): re-estimate the "
        "BatchNorm statistics, seconds, reversible. histogram/fda: match the intensities / "
        "illumination to the training data first. tent, self-training: also tune weights "
        "(slower, guarded). auto: try several and keep one without labels. adabn+strokes, "
        "strokes: learn from strokes you paint (Paint corrections), after AdaBN or from "
        "the source.",
        "mode": "How the statistics are measured: standard (default, AdaBN); consistent "
        "(what each layer sees at inference, a few more passes); ema (PyTorch's moving "
        "average, for reproducing papers).",
        "alpha": "How much of the new statistics to use: 0 keeps the training statistics, "
        f"1 (default {ADAPT.alpha:g}) uses only the new data's. Lower it when the target is "
        "small or unlike the data you will segment.",
        "patches": f"How many patches of the target are measured (default {DEFAULT_PATCHES}): "
        "beyond about 64 the statistics move less than 1 % of σ; fewer is faster but noisier.",
        "bn_layers": "Which BatchNorm layers get new statistics: all (default); encoder or "
        "first:2 for intensity/contrast changes (they sit in the first layers); the "
        "histogram widget shows where the shift sits.",
        "polarity": "The target's contrast: keep (default); invert it first, when its "
        "membranes are bright where the training data's were dark (what Latents may advise); "
        "auto: invert when the first layer's features look mirrored (it has misfired on real "
        "EM: compare the masks).",
        "roi": "Optional: a Shapes or Labels layer; patches are only drawn inside it (e.g. "
        "to avoid resin or empty regions). Shapes on one slice apply to every slice.",
        "more_options": "Show the adaptation's finer options: mode, α, patches, which "
        "BatchNorm layers, the contrast, a sampling ROI, the stroke steps (their defaults suit most data).",
        "segment_after": "After adapting, segment the image again with the new statistics.",
        "adapt_button": "Adapt a copy of the network to the target (shortcut Alt+A); the "
        "loaded model is not changed until this succeeds.",
        "cancel_button": "Stop the running job; nothing changes.",
        "strokes.paint_button": "Add a labels layer over the unlabeled target to paint "
        "corrections on, the brush ready: 2 = foreground (yellow) where the mask misses "
        "structures, 1 = background (magenta) where it marks too much. Thin strokes on one "
        "slice are enough to start. An existing strokes layer is kept and selected.",
        "strokes.adapt_button": "Teach a copy of the network with the painted strokes (cure "
        "adabn+strokes, or strokes if chosen above) and segment the target again; a share "
        "of the strokes is held back to check it, and it is undone unless it does better "
        "there. Reset to source statistics undoes it.",
        "strokes.steps": f"Most fine-tuning steps on the strokes (default {ADAPT.stroke_steps}; "
        "the strokes held back stop it earlier). Fewer: a first result sooner.",
        "strokes.map_button": "Show where the network is unsure on the target (the entropy "
        "of its prediction: the redder, the less sure) as a layer: strokes there should "
        "teach it most.",
        "strokes.next_button": "Go to the most unsure region not yet visited or painted "
        "(after Where to paint next).",
        "reset_button": "Back to the network as it was trained: its statistics (and its "
        "weights, after strokes), bit for bit (shortcut Alt+R).",
        "save_path": "Where to save the adapted model (.pt); it keeps the training statistics "
        "inside, so it can always be reset.",
        "save_button": "Save the adapted (or source) model to the file above.",
        "package_button": "Save the current model as a bioimage.io package (.zip, next to "
        "the file above) for deepImageJ, ilastik, bioimageio.core and the model zoo: the "
        "adapted weights, test images cut from the target layer, a cover and a note on how "
        "to undo the adaptation. It is checked with bioimageio.core's test_model.",
    },
    "Compare masks": {
        "image": "The image under the masks.",
        "before": "The mask made with the training statistics ([source]).",
        "after": "The mask made after adaptation (e.g. [adabn]).",
        "more": "Further masks to compare, e.g. of other cures (Ctrl+click to choose several).",
        "truth": "Optional: a labels layer with the correct segmentation, for Dice and IoU.",
        "side_button": "Show each mask over its image in its own grid cell, one shared camera "
        "(shortcut Alt+C).",
        "normal_button": "Back to the normal view: your layers as they were.",
        "difference_button": "Add a labels layer: gained foreground in green, lost in magenta.",
        "metrics_button": "Measure every mask: confidence, foreground, objects, agreement "
        "(and Dice/IoU with a ground truth).",
        "table": "One column per mask (hover a header for the layer's full name).",
    },
    "Latent histograms": {
        "target": "The new data whose internal features are measured.",
        "source": "Optional: images like the training data, the most faithful reference; "
        "without it, the model's stored fingerprint (or its training statistics) is used.",
        "patches": f"Patches measured per image (default {LatentConfig().patches}).",
        "measure_button": "Measure the features under the training statistics (and the "
        "adapted ones, if adapted).",
        "cancel_button": "Stop the measurement; nothing changes.",
        "layer": "A BatchNorm layer of the network (opens on the most shifted one).",
        "channel": "A feature channel of that layer (opens on the most shifted one).",
        "export_path": "A .png (the figure) or .csv (the table) file to export to.",
        "export_png": "Save the figure as PNG.",
        "export_csv": "Save the per-channel distances of every layer as CSV.",
        "plots_button": "Bring the Latent plots tab to the front (the channel histogram, "
        "which layers shifted most, the input intensities).",
        "table": "Per-channel distances of the chosen layer, before and after adaptation "
        "(click a header to sort; hover it for the full name).",
    },
}

#: Short table headers, and what they stand for (shown as the header's tooltip).
COLUMN_HEADERS = {
    "channel": ("ch", "feature channel of the layer"),
    "wasserstein_standardised": ("W2\n(σ)", "Wasserstein-2 distance between the target's and "
                                 "the source's distribution, in units of the source σ"),
    "wasserstein": ("W2", "Wasserstein-2 distance between the Gaussians of the statistics"),
    "bhattacharyya": ("Bhatt.", "Bhattacharyya distance between the Gaussians (0 = identical)"),
    "kl": ("KL", "Kullback–Leibler divergence of the target from the source Gaussian"),
    "wasserstein_empirical": ("W1\nbefore", "Wasserstein-1 distance between the measured "
                              "histograms, before adaptation (σ)"),
    "wasserstein_empirical_after": ("W1\nafter", "the same after adaptation (σ)"),
    "q50_before": ("med.\nbefore", "median of the standardised feature before adaptation (σ)"),
    "q50_after": ("med.\nafter", "median after adaptation (σ)"),
}  # fmt: skip


def wrapping(label: Any) -> Any:
    """Let a magicgui Label wrap its words over the whole width it is given.

    A word-wrapped QLabel keeps a fixed width of about 280 px by default, so a sentence
    took four lines in a 640 px dock and pushed the last controls off a 768 px screen.
    """
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


def percent(fraction: float) -> str:
    """``0 %``, ``0.3 %``, ``38 %``: a foreground fraction as people read it."""
    value = 100 * fraction
    if value == 0 or value >= 1:
        return f"{value:.0f} %"
    return "< 0.1 %" if value < 0.1 else f"{value:.1f} %"


def add_purpose(widget: Any, name: str) -> Any:
    """Put widget ``name``'s one-line purpose at its top, across its full width."""
    from magicgui.widgets import Label

    label = wrapping(Label(value=PURPOSE[name]))
    # Into the native layout: a Label among a labelled container's rows would sit in the
    # value column only.
    widget.native.layout().insertWidget(0, label.native)
    widget.purpose = label
    return label


def explain(widget: Any, name: str) -> None:
    """Attach the tooltips of widget ``name`` to its controls (attributes by name)."""
    for attribute, text in TOOLTIPS[name].items():
        control = control_of(widget, attribute)
        if control is not None:
            control.tooltip = text


def control_of(widget: Any, name: str) -> Any:
    """The control ``name`` of ``widget``: an attribute, or a dotted path to one of a part
    (``strokes.paint_button``: a section built by its own module); None if there is none."""
    found = widget
    for part in name.split("."):
        found = getattr(found, part, None)
    return found


def show_as_written(table: Any) -> None:
    """Cells show the text the widget wrote (``40.0``, ``0.093``), not magicgui's own
    number format (``9.300e-02``), and columns fit their headers and values."""
    from qtpy.QtWidgets import QHeaderView, QStyledItemDelegate

    native = table.native
    native.setItemDelegate(QStyledItemDelegate(native))
    native.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)


def set_headers(table: Any, columns: list[str]) -> None:
    """Short headers with the full metric name as tooltip, on a magicgui Table."""
    native = table.native
    for index, column in enumerate(columns):
        short, meaning = COLUMN_HEADERS.get(column, (column, column))
        item = native.horizontalHeaderItem(index)
        if item is not None:
            item.setText(short)
            item.setToolTip(f"{column}: {meaning}")
