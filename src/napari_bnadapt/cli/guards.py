"""Checks every command makes on its paths before any work: outputs apart from inputs,
inputs that are files or folders (never a pipe or a device)."""

from __future__ import annotations

import argparse
import os

from ..errors import OutputPathError
from ..io.images import check_output_suffix, is_image_folder
from ..io.paths import NamedPath, check_output_regular, check_outputs_apart, check_regular

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
    command = getattr(args, "command", None)
    folder, written = writes_folder(args), "model" if command in MODEL_COMMANDS else command
    for output in outputs:
        check_output_regular(output.path)
        check_output_kind(output, folder, EXAMPLE.get(command, "result.tif"))
        if not folder:
            check_output_suffix(output, written)
        check_writable(output)


def writes_folder(args: argparse.Namespace) -> bool:
    """Whether this command's outputs are folders (a report, the demo's files, one mask
    per image of a folder) rather than files; a .zarr output is a store either way."""
    command = getattr(args, "command", None)
    if command in ("report", "demo"):
        return True
    source = getattr(args, "input", None)
    return command == "predict" and bool(source) and is_image_folder(source)


#: Commands that write a model file.
MODEL_COMMANDS = ("adapt", "train", "fingerprint")
#: A file name to suggest when a command that writes a file is given a folder.
EXAMPLE = {"adapt": "adapted.pt", "train": "model.pt", "fingerprint": "model.pt",
           "export": "model.zip", "strokes": "strokes.tif"}  # fmt: skip


def check_output_kind(output: NamedPath, folder: bool, example: str = "result.tif") -> None:
    """Refuse a file where a folder is written, and a folder where a file is (suggesting
    ``example`` in that folder)."""
    path = output.path
    if str(path).rstrip("/").endswith(".zarr") or not path.exists():
        return
    if folder and not path.is_dir():
        raise OutputPathError(
            f"{output.label} {str(path)!r} is a file, and a folder is written there: give "
            "a new folder's name (nothing was written)"
        )
    if not folder and path.is_dir():
        raise OutputPathError(
            f"{output.label} {str(path)!r} is a folder: give a file name, e.g. "
            f"{str(path / example)!r} (nothing was written)"
        )


def check_writable(output: NamedPath) -> None:
    """Refuse, before any work, an output whose nearest existing folder cannot be written
    (read-only, another user's): the work would be lost at the very end."""
    folder = output.path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{output.label} {str(output.path)!r}: the folder {str(folder)!r} cannot be "
            "written (read-only, or not yours): choose another (nothing was written)"
        )


def _given(args: argparse.Namespace, options: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (label, str(getattr(args, name)))
        for name, label in options.items()
        if getattr(args, name, None)
    ]
