"""What replacing an existing file with an output would lose.

Outputs never touch inputs (:mod:`.io.paths`), but an output path may also name a file that
is no input: a ground truth, a mask corrected by hand, another trained network, a model
taught with painted strokes. Each was lost so in a walkthrough. An output may replace only
what the same step can make again:

- a mask or probability map replaces a file that ``bnadapt predict`` wrote (its TIFF
  Software tag, :data:`~.io.volumes.PREDICTED`);
- a report replaces the files of an earlier report (its ``report.json`` says what wrote
  it), never a folder's own ``report.json``, ``masks.png``, … that something else wrote;
- a model replaces a model file of the *same network* (the same source weights: its
  statistics and record may differ, as after another cure or a reset) that carries no
  painted strokes.

Anything else is refused in one line that says what would be lost, unless the caller was
told to replace it (``--force``). Qt-free: the CLI and the widgets ask the same questions.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import tifffile

from .errors import BnAdaptError, OutputPathError
from .io.volumes import PREDICTED, TIFF_SUFFIXES
from .model.checkpoint import load_model
from .model.loaded import LoadedModel


def prediction_kept_back(path: str | Path) -> str | None:
    """What replacing ``path`` with a predicted mask or map would lose (None: nothing: it
    does not exist, or ``bnadapt predict`` wrote it)."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() in TIFF_SUFFIXES and PREDICTED in _tiff_software(path):
        return None
    return "exists and was not written by bnadapt predict (an image, labels, a mask corrected by hand?)"


def refuse_unnamed(typed: str | Path, written: str | Path) -> None:
    """Refuse to write ``written`` (``typed`` with the format's suffix put on) over a file
    the user did not name. Save dialogs ask about the name typed: napari's writer replaced
    a hand-corrected ``mask.tif`` for ``mask``, a Latents export ``notes.csv`` for
    ``notes.txt``."""
    typed, written = Path(typed), Path(written)
    if typed.name != written.name and written.exists():
        raise OutputPathError(
            f"{written.name} exists, and saving {typed.name!r} in this format would replace "
            f"it: choose another name, or name {written.name} itself to replace it (nothing "
            "was written)"
        )


def report_kept_back(folder: str | Path, names: list[str]) -> str | None:
    """What writing a report's files ``names`` into ``folder`` would lose (None: nothing:
    none of them is there, or an earlier ``bnadapt report`` wrote them, as its
    ``report.json`` says)."""
    folder = Path(folder)
    existing = [name for name in names if (folder / name).exists()]
    if not existing or _written_by_report(folder / "report.json"):
        return None
    return f"holds {', '.join(existing)}, which bnadapt report did not write and would replace"


def model_kept_back(path: str | Path, network: LoadedModel | None) -> str | None:
    """What replacing ``path`` with a model of ``network``'s weights would lose (None:
    nothing). ``network`` is None for a network trained anew (no file holds it yet)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        existing = load_model(path)
    except BnAdaptError:
        return "exists and is not a model napari-bnadapt can read (another program's file?)"
    if existing.strokes is not None:
        return (
            f"is a model taught with painted strokes ({existing.strokes.describe()}), which "
            "the new file would not keep; save them first (bnadapt strokes --model "
            f"{shlex.quote(str(path))} --out strokes.tif)"
        )
    if network is None or source_identity(existing) != source_identity(network):
        return f"holds another network ({describe_network(existing)})"
    return None


def describe_network(model: LoadedModel) -> str:
    """A network in a few words: its name, what it was trained on and when, its state
    (every network ``bnadapt train`` makes is called "unet")."""
    provenance = model.metadata.get("provenance") or {}
    images = ", ".join(str(n) for n in provenance.get("training_images") or [])
    created = str(provenance.get("created") or "")[:10]
    trained = " ".join(p for p in (f"on {images}" if images else "", created) if p)
    return ", ".join(
        p
        for p in (model.name, f"trained {trained}" if trained else "", f"{model.state} statistics")
        if p
    )


def refuse_to_replace(label: str, path: str | Path, lost: str | None, remedy: str) -> None:
    """Raise :class:`OutputPathError` when ``lost`` says what replacing ``path`` would lose."""
    if lost is not None:
        raise OutputPathError(
            f"{label} {str(path)!r} {lost}: choose a new name, or {remedy} (nothing was written)"
        )


def source_identity(model: LoadedModel) -> str:
    """A digest of the network's source weights: the same for every adapted, taught or
    reset copy of one trained network, different for another network."""
    digest = hashlib.blake2b(digest_size=16)
    source = model.source_weights or {}
    for name, parameter in sorted(model.module.named_parameters()):
        tensor = source.get(name, parameter).detach().float().cpu().contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _written_by_report(path: Path) -> bool:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and str(found.get("software", "")).startswith("napari-bnadapt")


def _tiff_software(path: Path) -> str:
    try:
        with tifffile.TiffFile(path) as tif:
            return str(tif.pages[0].software or "")
    except Exception:  # an unreadable file is not one predict wrote
        return ""
