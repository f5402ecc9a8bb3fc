"""Checks every command makes on its paths before any work: outputs apart from inputs,
inputs that are files or folders (never a pipe or a device)."""

from __future__ import annotations

import argparse

from ..io.paths import NamedPath, check_outputs_apart, check_regular

#: Options whose value is read (attribute name → how the user wrote it).
INPUTS = {
    "model": "--model", "model_option": "--model", "input": "--input", "target": "--target",
    "images": "--images", "labels": "--labels", "roi": "--roi", "source": "--source",
    "adapted": "--adapted", "sample": "--sample", "strokes": "--strokes",
}  # fmt: skip
#: Options whose value is written.
OUTPUTS = {"out": "--out", "probabilities": "--probabilities"}


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, in one line and before any work, an output that is, contains or lies inside
    an input or another output, and an input that is a special file."""
    inputs = [NamedPath.of(label, value) for label, value in _given(args, INPUTS)]
    inputs += [NamedPath.of("input", f) for f in getattr(args, "files", None) or ()]
    for named in inputs:
        check_regular(named.path)
    outputs = [NamedPath.of(label, value) for label, value in _given(args, OUTPUTS)]
    check_outputs_apart(outputs, inputs)
    for i, first in enumerate(outputs):
        check_outputs_apart([first], outputs[i + 1 :], existing_only=False)


def _given(args: argparse.Namespace, options: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (label, str(getattr(args, name)))
        for name, label in options.items()
        if getattr(args, name, None)
    ]
