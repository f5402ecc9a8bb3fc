"""The Compare widget's metrics: a table with one column per mask, every row in view, and
the same figures read out in a sentence or two."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHeaderView

from ..diagnostics.quality import MaskComparison
from .help import percent

METRICS = (
    "entropy", "confident_fraction", "foreground_fraction", "object_count", "dice", "iou",
    "rand_f", "vi_split", "vi_merge", "boundary_f1", "object_f1",
)  # fmt: skip
ROW_NAMES = {
    "entropy": "uncertainty (0–1)", "confident_fraction": "confident (%)",
    "foreground_fraction": "foreground (%)", "object_count": "objects", "dice": "Dice",
    "iou": "IoU", "agreement": "Dice with before", "rand_f": "Rand F (ISBI)",
    "vi_split": "VI split", "vi_merge": "VI merge", "boundary_f1": "boundary F1",
    "object_f1": "object F1 (IoU ≥ 0.5)",
}  # fmt: skip
PERCENT = ("confident_fraction", "foreground_fraction")


def fill_table(table: Any, columns: dict[str, dict]) -> None:
    """Show ``columns`` (mask name → its figures) in a magicgui Table: short headers (the
    full layer name as their tooltip), every row in view."""
    names = list(columns)
    first = columns[names[0]]
    rows = [key for key in (*METRICS, "agreement") if key in first]
    table.value = {
        "data": [[_fmt(columns[n][k], k in PERCENT) for n in names] for k in rows],
        "index": [ROW_NAMES.get(k, k) for k in rows],
        "columns": [header(name) for name in names],
    }
    for index, name in enumerate(names):
        item = table.native.horizontalHeaderItem(index)
        if item is not None:
            item.setToolTip(name)
    table.visible = True
    fit_rows(table)


def fit_rows(table: Any) -> None:
    """A table as tall as its rows: every row in view, no scroll bar, no empty box."""
    native = table.native
    native.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    native.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    native.horizontalHeader().setStretchLastSection(True)
    native.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    height = native.horizontalHeader().height() + 2 * native.frameWidth()
    height += sum(native.rowHeight(row) for row in range(native.rowCount()))
    scroll = native.horizontalScrollBar()
    if scroll.isVisible():
        height += scroll.height()
    native.setFixedHeight(height)


def metrics_reading(pair: MaskComparison, columns: dict[str, dict], truth: Any) -> str:
    """The figures that answer "did it help?" in two lines (the table has the rest)."""
    names = list(columns)
    foreground = " → ".join(percent(columns[n]["foreground_fraction"]) for n in names[:2])
    change = f"Foreground {foreground}; before and after agree at Dice {pair.agreement_dice:.2f}."
    dice = {n: columns[n]["dice"] for n in names if columns[n].get("dice") is not None}
    if truth is None or not dice:
        return change + "\nChoose a ground truth for Dice and IoU."
    best = max(dice, key=lambda n: dice[n])
    pair_names = [n for n in names[:2] if n in dice]
    scores = " → ".join(f"{short(n)} {dice[n]:.3f}" for n in pair_names)
    verdict = ""
    if len(pair_names) == 2:
        gain = dice[pair_names[1]] - dice[pair_names[0]]
        verdict = f" ({'better' if gain > 0 else 'worse' if gain < 0 else 'the same'})"
    tail = "" if best in pair_names else f"; best {short(best)} {dice[best]:.3f}"
    return f"Dice against {truth.name}: {scores}{verdict}{tail}.\n{change}"


def short(name: str) -> str:
    """A mask layer's name by its bracketed state when it has one (``[adabn]``)."""
    return name[name.rindex("[") :] if name.endswith("]") and "[" in name else name


def header(name: str) -> str:
    """A table header: the mask's state, broken after "+" (``histogram+`` / ``adabn``)."""
    return short(name).strip("[]").replace("+", "+\n")


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"
