"""Paths the user gives: outputs kept apart from inputs, and only regular files read.

Every command (and the napari writers and save buttons) checks, before any work, that no
output path, nor the ``<out>.partial`` store a block-wise output is written to first, is an
input, contains one or lies inside one: writing a mask over the image it came from, or a
report into the folder it reads, destroys the user's data with exit code 0.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputDataError, OutputPathError

#: Suffix of the store a block-wise output is written to before it is renamed.
PARTIAL = ".partial"


@dataclass(frozen=True)
class NamedPath:
    """A path and how the user gave it (``--out``, ``--input``, ``layer 'EM'``)."""

    label: str
    path: Path

    @classmethod
    def of(cls, label: str, path: str | os.PathLike[str]) -> NamedPath:
        return cls(label, Path(os.path.expanduser(os.fspath(path))))


def check_outputs_apart(
    outputs: Iterable[NamedPath], inputs: Iterable[NamedPath], *, existing_only: bool = True
) -> None:
    """Raise :class:`OutputPathError` when an output (or its ``.partial``) is, contains or
    lies inside an input. With ``existing_only``, inputs that do not exist on disk (a
    bundled model's name) are ignored; without, every path counts (outputs checked against
    each other). Paths are compared resolved (symbolic links followed) and by inode (a hard
    link to the input is the input)."""
    existing = [i for i in inputs if not existing_only or os.path.lexists(i.path)]
    for output in outputs:
        for candidate in (output.path, Path(f"{output.path}{PARTIAL}")):
            for source in existing:
                relation = _relation(candidate, source.path)
                if relation is not None:
                    raise OutputPathError(
                        _message(output, candidate, relation, source, existing_only)
                    )


def _relation(output: Path, source: Path) -> str | None:
    """How ``output`` touches ``source`` (``"is the"``, ``"contains the"``, ``"is inside
    the"``), or None."""
    out, src = output.resolve(), source.resolve()
    if out == src or _same_file(out, src):
        return "is the"
    if src.is_relative_to(out):
        return "contains the"
    if out.is_relative_to(src):
        return "is inside the"
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _message(
    output: NamedPath, candidate: Path, relation: str, source: NamedPath, existing_only: bool
) -> str:
    what = output.label if candidate == output.path else f"{output.label}'s {PARTIAL} store"
    shown = f"{what} {str(candidate)!r} {relation} {source.label} {str(source.path)!r}"
    if not existing_only:  # two outputs
        return f"{shown}: give each output a path of its own (nothing was written)"
    return (
        f"{shown}: writing there could destroy your input; choose an output path outside "
        "every input (nothing was written)"
    )


def check_regular(path: str | os.PathLike[str], what: str = "file") -> None:
    """Refuse a named pipe, a device or a socket: reading one can block forever or never
    end (``/dev/zero``). Folders (zarr, N5, packages) and regular files pass; a path that
    does not exist is left to the reader's own message."""
    kind = special_kind(path)
    if kind is not None:
        raise InputDataError(f"{os.fspath(path)!r} is {kind}, not a {what}: give a {what} on disk")


def check_output_regular(path: str | os.PathLike[str]) -> None:
    """Refuse to write over a named pipe, a device or a socket: the atomic rename would
    replace it with a file (a walkthrough's ``--out /dev/null`` replaced the device)."""
    kind = special_kind(path)
    if kind is not None:
        raise OutputPathError(
            f"{os.fspath(path)!r} is {kind}, not a file: give a file name to write "
            "(nothing was written)"
        )


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder (a named
    pipe, a device, a socket), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def layer_sources(layers: Iterable[object]) -> list[NamedPath]:
    """The files napari layers were read from (napari's ``layer.source.path``, or the path
    this plugin's reader records in ``layer.metadata``): what a save must not overwrite."""
    sources = []
    for layer in layers:
        source = getattr(getattr(layer, "source", None), "path", None)
        source = source or (getattr(layer, "metadata", None) or {}).get("source_path")
        if source:
            sources.append(NamedPath.of(f"file of layer {getattr(layer, 'name', '')!r}", source))
    return sources
