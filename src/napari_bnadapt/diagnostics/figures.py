"""Matplotlib drawings of diagnoses, on axes the caller provides.

The report draws them into PNG files (Agg) and the napari widgets into Qt canvases: the
same functions serve both, and none of them imports a GUI backend.
"""

from __future__ import annotations

import numpy as np

from .diagnosis import Diagnosis
from .latents import LayerLatents, gaussian_reference
from .shift import layer_scores, shift_matrix

COLOURS = {"source": "0.2", "before": "tab:red", "after": "tab:blue", "gaussian": "0.55"}

#: Mask colours by the statistics that made them: the same state, the same colour, in every
#: widget, grid cell, report and package cover (bright, to stand out on grey EM).
STATE_COLOURS = {"source": "#ff8c1a", "adabn": "#1ac6ff"}
CURE_COLOUR = "#b266ff"


def plot_channel_histogram(ax, diagnosis: Diagnosis, layer: str, channel: int) -> None:
    """Source Gaussian, source images (if any), target before and after, overlaid."""
    ax.clear()
    ax.set_axis_on()
    before = _layer(diagnosis.before, layer)
    if before is None:
        ax.text(0.5, 0.5, "no latent capture for this model", ha="center", transform=ax.transAxes)
        return
    centres = 0.5 * (before.edges[1:] + before.edges[:-1])
    width = float(before.edges[1] - before.edges[0])
    density = lambda probs: probs[channel, 1:-1] / width  # noqa: E731
    ax.plot(
        centres,
        density(gaussian_reference(before)),
        color=COLOURS["gaussian"],
        linestyle="--",
        label="source statistics (Gaussian)",
    )
    # The source reference is measured on source images, or stored in the model (fingerprint).
    source_name = {"source": "source images", "source fingerprint": "source (fingerprint)"}
    source = diagnosis.source
    entries = [("source", source, source_name.get(source.label) if source else None)]
    entries.append(("before", diagnosis.before, None))
    entries.append(("after", diagnosis.after, None))
    for key, capture, name in entries:
        latents = _layer(capture, layer)
        if latents is None:
            continue
        ax.step(
            centres,
            density(latents.probabilities()),
            where="mid",
            color=COLOURS[key],
            label=name or capture.label,
        )
    _focus(ax, centres, before)
    shift = diagnosis.shift_before[layer].values["wasserstein_standardised"][channel]
    ax.set_title(f"{layer}, channel {channel}: W2 before {shift:.2f} σ", fontsize=9)
    frame = "bottleneck output / |γ|" if before.kind == "bottleneck" else "input / running σ"
    ax.set_xlabel(f"{frame} (standardised)", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.tick_params(labelsize=7)


def _focus(ax, centres: np.ndarray, layer: LayerLatents) -> None:
    """Zoom on where the curves have mass; the ReLU's zeros of the bottleneck pile up in
    one bin, which would flatten everything else, so the y axis ignores that bin."""
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()]).reshape(-1, len(centres))
    occupied = np.nonzero(ys.max(axis=0) > 1e-3 * ys.max())[0]
    if occupied.size:
        ax.set_xlim(centres[occupied[0]] - 0.5, centres[occupied[-1]] + 0.5)
    if layer.floor is not None:
        ys[:, np.abs(centres[None, :] - layer.floor[:, None]).min(axis=0) < 0.2] = 0
        ax.set_ylim(0, max(float(ys.max()) * 1.15, 1e-3))


def plot_shift_heatmap(
    ax, diagnosis: Diagnosis, after: bool = False, vmax: float | None = None
) -> object:
    """Layers × channels map of the standardised W2; returns the image for a colour bar.

    Pass the same ``vmax`` for before and after so their colours compare.
    """
    ax.clear()
    table = diagnosis.shift_after if after and diagnosis.shift_after else diagnosis.shift_before
    names, matrix = shift_matrix(table)
    if vmax is None:
        vmax = float(np.nanmax(shift_matrix(diagnosis.shift_before)[1]))
    image = ax.imshow(
        matrix, aspect="auto", cmap="magma", interpolation="nearest", vmin=0, vmax=vmax
    )
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("channel", fontsize=8)
    ax.set_title(
        "shift per layer and channel, "
        + ("after adaptation" if after else "before adaptation")
        + " (W2, σ)",
        fontsize=9,
    )
    ax.tick_params(labelsize=7)
    return image


def plot_layer_overview(ax, diagnosis: Diagnosis) -> None:
    """Bars: how far each layer's features are from the source's, before and after.

    The distance is the mean W1 between the measured histograms and the source's (σ), which
    adaptation lowers without zeroing it; the Gaussian W2 of the statistics, drawn only
    when no histograms were measured, is ~0 after AdaBN by construction, and its bars read
    as missing data.
    """
    ax.clear()
    ax.set_axis_on()
    key = "wasserstein_empirical"
    measured = all(key in shift.values for shift in diagnosis.shift_before.values())
    key = key if measured else "wasserstein_standardised"
    before = layer_scores(diagnosis.shift_before, key)
    names = list(before)
    positions = np.arange(len(names))
    ax.bar(positions - 0.2, [before[n] for n in names], 0.4, color=COLOURS["before"],
           label="before")  # fmt: skip
    if diagnosis.shift_after is not None:
        after = layer_scores(diagnosis.shift_after, key)
        values = [after.get(n, np.nan) for n in names]
        ax.bar(positions + 0.2, values, 0.4, color=COLOURS["after"], label="after")
        if np.nanmax(values) < 0.02 * max(before.values(), default=1.0):
            ax.text(0.5, 0.9, "after: ≈ 0 (the statistics now match the target's)",
                    ha="center", transform=ax.transAxes, fontsize=7)  # fmt: skip
        ax.legend(fontsize=7, frameon=False)
    ax.set_xticks(positions, names, rotation=60, ha="right", fontsize=7)
    unit = "mean W1 to the source (σ)" if measured else "mean W2 (σ)"
    ax.set_ylabel(unit, fontsize=8)
    ax.set_title("which layers shifted most", fontsize=9)
    ax.tick_params(labelsize=7)


def plot_intensities(ax, diagnosis: Diagnosis) -> None:
    """The target's network-input intensity density against the fingerprint's (source)."""
    ax.clear()
    ax.set_axis_on()
    for key, colour, label in (
        ("source", COLOURS["source"], "source (fingerprint)"),
        ("target", COLOURS["before"], "target"),
    ):
        quantiles = diagnosis.intensities.get(key)
        if quantiles is None:
            continue
        centres, density = _density(quantiles)
        ax.plot(centres, density, color=colour, label=label)
    if "source" not in diagnosis.intensities:
        ax.set_title("input intensities (the model has no fingerprint to compare)", fontsize=9)
    else:
        ax.set_title(
            f"input intensities: shift {diagnosis.intensity_shift:.2f} (normalised units)",
            fontsize=9,
        )
    ax.set_xlabel("network input (after the model's normalisation)", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.tick_params(labelsize=7)


def _density(quantiles: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A density on even bins from a quantile function at even levels."""
    low, high = float(quantiles[1]), float(quantiles[-2])  # past the extreme 0.4 %
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    levels = np.linspace(0.0, 1.0, len(quantiles))
    cdf = np.interp(edges, quantiles, levels)
    return 0.5 * (edges[1:] + edges[:-1]), np.diff(cdf) / np.diff(edges)


def plot_masks(axes, image: np.ndarray, before: np.ndarray, after: np.ndarray | None) -> None:
    """Image with the mask before (source, orange) and after (adapted, blue) adaptation, one
    axis each, in the colours of the napari mask layers."""
    from matplotlib.colors import ListedColormap

    panels = [("before adaptation", before, STATE_COLOURS["source"])]
    if after is not None:
        panels.append(("after adaptation", after, STATE_COLOURS["adabn"]))
    for ax, (title, mask, colour) in zip(axes, panels):
        ax.clear()
        ax.imshow(image, cmap="gray")
        overlay = np.ma.masked_equal(np.asarray(mask) > 0, False)
        ax.imshow(overlay, cmap=ListedColormap([colour]), alpha=0.6, interpolation="nearest")
        ax.set_title(f"mask {title}", fontsize=9)
        ax.set_axis_off()


def _layer(capture, name: str) -> LayerLatents | None:
    if capture is None:
        return None
    return capture.layers.get(name)
