"""bioimage.io model packages opened as a :class:`LoadedModel`, offline, without running code.

A package is a ``.zip`` or a folder with ``rdf.yaml``/``bioimageio.yaml`` (spec 0.4 or
0.5; 0.4 is converted by ``bioimageio.spec``). It is read with I/O checks off, so nothing
is downloaded; a package whose weights are only a URL is refused with a message.

TorchScript weights load without running package code. ``pytorch_state_dict`` weights
need the network's class: one from a library trusted here (:data:`TRUSTED_PACKAGES`) is
imported from the installed library; code shipped in the package is imported only when
the caller passes ``trust_code=True`` (the CLI's ``--trust-code``, a confirmation in
napari). The weights themselves are always read with ``weights_only=True``.

A package exported by napari-bnadapt carries its metadata in ``config.napari_bnadapt``
and its source statistics in an attachment, so that it opens again with the adaptation
record and a working reset.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..arrays.normalization import NormalizationSpec
from ..errors import ModelFileError, UntrustedCodeError, first_line
from .architecture import Architecture, is_trusted, load_weights
from .documents import extras_from, read_tensor_bytes, record_from
from .loaded import LoadedModel
from .package_processing import (
    activation_of,
    engine_network,
    input_layout,
    normalization_of,
    output_layout,
    voxel_size_nm,
)
from .schema import check_document, check_geometry
from .signature import probe_output_channels

#: File names of a package's description.
DESCRIPTION_NAMES = ("rdf.yaml", "bioimageio.yaml")
#: The attachment that holds an exported model's source statistics and fingerprint.
TENSORS_ATTACHMENT = "bnadapt_tensors.pt"
#: The key of ``config`` that holds napari-bnadapt's metadata document.
CONFIG_KEY = "napari_bnadapt"
#: Set in that document when the cure's input steps were compiled into the network.
STEPS_IN_NETWORK = "input_steps_in_network"
#: Packages unpacking to more than this are refused before anything is read.
MAX_UNPACKED_BYTES = 16 * 1024**3
#: Above this size, a compression ratio above :data:`BOMB_RATIO` is a zip bomb (weights
#: compress about 1.1×; even empty test images rarely reach 100×).
BOMB_FLOOR, BOMB_RATIO = 256 * 1024**2, 100
#: A model description is a few KB of YAML; beyond these it is refused before parsing.
MAX_DESCRIPTION_BYTES, MAX_YAML_ALIASES = 1024**2, 16


def is_package(path: str | Path) -> bool:
    """Whether ``path`` is a bioimage.io package: a zip or folder with a description, or
    the description file itself."""
    path = Path(path)
    if path.is_dir():
        return any((path / name).is_file() for name in DESCRIPTION_NAMES) or any(
            path.glob("*.bioimageio.yaml")
        )
    if _is_description_name(path.name):
        return path.is_file()
    if path.suffix.lower() != ".zip" or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(_is_description_name(n) for n in archive.namelist() if "/" not in n)
    except (zipfile.BadZipFile, OSError):
        return False


def load_package(path: str | Path, trust_code: bool = False) -> LoadedModel:
    """Open the bioimage.io package at ``path`` (see module); ``trust_code`` allows
    importing a network class shipped as code in the package."""
    path = Path(path)
    check_archive(path)
    descr = read_description(path)
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise ModelFileError(
            f"{path.name} has {len(descr.inputs)} inputs and {len(descr.outputs)} outputs: "
            "napari-bnadapt segments with one-input, one-output networks"
        )
    source, target = descr.inputs[0], descr.outputs[0]
    layout_in = input_layout(source)
    layout_out = output_layout(target, str(source.id))
    check_geometry(layout_in.step, layout_in.min_size, layout_out.halo, path.name)
    normalization = normalization_of(list(source.preprocessing))
    activation, threshold = activation_of(list(target.postprocessing), layout_out.channels)
    module = engine_network(_network(descr, path, trust_code), layout_in, layout_out, activation)
    size = max(layout_in.min_size, layout_in.step)
    probe_output_channels(module, len(layout_in.spatial), layout_in.channels, size, path.name)
    ours = _our_document(descr.config)
    meta = check_document(ours, path.name) if ours is not None else {}
    if meta.get("normalization"):  # ours, exact (the package's step adds an epsilon)
        normalization = NormalizationSpec.from_dict(meta["normalization"])
    if meta.get(STEPS_IN_NETWORK):  # the steps become reversible input steps again
        module = module.net
    tensors = _attachment_tensors(descr, path) if ours else {}
    metadata = dict(meta.get("metadata") or {})
    metadata.update(
        name=metadata.get("name") or str(descr.name),
        provenance=metadata.get("provenance") or f"bioimage.io package {path.name}",
        divisor=layout_in.step,
        min_size=layout_in.min_size,
        halo=layout_out.halo,
        bioimageio=_package_facts(descr, path, threshold),
    )
    voxel_size = voxel_size_nm(source)
    if voxel_size and not metadata.get("voxel_size"):
        metadata["voxel_size"] = list(voxel_size)
    return LoadedModel.build(
        module.eval(),
        normalization,
        dims=len(layout_in.spatial),
        in_channels=layout_in.channels,
        out_channels=layout_out.channels,
        source_stats=tensors.get("source_bn_stats") or None,
        classes=meta.get("classes") or _channel_names(target, layout_out.channels),
        metadata=metadata,
        format="bioimageio",
        adaptation=record_from(meta),
        **extras_from(meta, tensors, path),
    )


def check_archive(path: Path, limit: int | None = None) -> None:
    """Refuse a zip whose members would unpack to more than ``limit`` bytes (default
    :data:`MAX_UNPACKED_BYTES`), or that compresses suspiciously well (a zip bomb), or
    that names files outside itself; read from the zip's directory, before any member."""
    if path.is_dir() or not zipfile.is_zipfile(path):
        return
    limit = MAX_UNPACKED_BYTES if limit is None else limit
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if unpacked > limit or (unpacked > BOMB_FLOOR and unpacked / packed > BOMB_RATIO):
        raise ModelFileError(
            f"{path.name} would unpack to {unpacked / 1024**3:.1f} GiB from "
            f"{packed / 1024**2:.1f} MiB: refused as a possible zip bomb (a model package "
            "holds at most a few GiB of weights)"
        )
    outside = [
        m.filename
        for m in members
        if ".." in Path(m.filename).parts
        or m.filename.startswith("/")
        or stat.S_ISLNK(m.external_attr >> 16)  # a link's target lies outside
    ]
    if outside:
        raise ModelFileError(
            f"{path.name} names a file outside the package ({outside[0]!r}): refused"
        )


def read_description(path: Path) -> Any:
    """The package's model description (spec 0.5), read offline; one line if invalid."""
    # Imported here: bioimageio.spec takes a second to import, and only packages need it.
    from bioimageio.spec import InvalidDescr, load_description

    check_description_text(_description_bytes(path), path.name)
    try:
        descr = load_description(
            _description_source(path), format_version="latest", perform_io_checks=False
        )
    except Exception as exc:  # the spec's readers raise many kinds on damaged input
        raise ModelFileError(
            f"{path.name} is not a readable bioimage.io package ({type(exc).__name__}: "
            f"{first_line(exc, 160)}): check the file, or download it again"
        ) from None
    if isinstance(descr, InvalidDescr):
        raise ModelFileError(
            f"{path.name} is not a valid bioimage.io model ({_first_error(descr)}): fix the "
            "description, or download the package again"
        )
    if getattr(descr, "type", None) != "model":
        raise ModelFileError(f"{path.name} describes a {descr.type}, not a model")
    return descr


def check_description_text(text: bytes, name: str) -> None:
    """Refuse a description no model needs: over :data:`MAX_DESCRIPTION_BYTES`, or with
    more than :data:`MAX_YAML_ALIASES` YAML aliases (a "billion laughs" document expands
    a few lines into gigabytes when parsed). Scanned as tokens, never constructed."""
    import yaml

    if len(text) > MAX_DESCRIPTION_BYTES:
        raise ModelFileError(
            f"{name}: its description is {len(text) / 1024**2:.1f} MB (a model's is a few "
            "KB): refused"
        )
    try:
        aliases = sum(isinstance(t, yaml.AliasToken) for t in yaml.scan(text.decode("utf-8")))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelFileError(
            f"{name}: its description is not readable YAML ({first_line(exc, 80)}): check the "
            "file, or download the package again"
        ) from None
    if aliases > MAX_YAML_ALIASES:
        raise ModelFileError(
            f"{name}: its description repeats itself through {aliases} YAML aliases (a "
            "document that expands when read): refused"
        )


def _description_bytes(path: Path) -> bytes:
    """The description's bytes, from the zip's directory-checked member or the folder."""
    source = _description_source(path)
    if source.is_file() and not zipfile.is_zipfile(source):
        if source.stat().st_size > MAX_DESCRIPTION_BYTES:
            return b" " * (MAX_DESCRIPTION_BYTES + 1)
        return source.read_bytes()
    with zipfile.ZipFile(source) as archive:
        names = [n for n in archive.namelist() if "/" not in n and _is_description_name(n)]
        if not names:
            return b""
        info = archive.getinfo(names[0])
        if info.file_size > MAX_DESCRIPTION_BYTES:
            return b" " * (MAX_DESCRIPTION_BYTES + 1)
        return archive.read(info)


def _network(descr: Any, path: Path, trust_code: bool) -> nn.Module:
    """The package's network: TorchScript first, else a state_dict with its class."""
    weights = descr.weights
    if weights.torchscript is not None:
        data = _read_file(weights.torchscript, path, "TorchScript weights")
        try:
            return torch.jit.load(io.BytesIO(data), map_location="cpu")
        except Exception as exc:
            raise ModelFileError(
                f"{path.name}: its TorchScript weights do not load ({type(exc).__name__}): "
                "the package is damaged or needs a newer PyTorch"
            ) from None
    if weights.pytorch_state_dict is not None:
        entry = weights.pytorch_state_dict
        module = _architecture(entry.architecture, path, trust_code)
        data = _read_file(entry, path, "state_dict weights")
        return load_weights(module, io.BytesIO(data), _callable_name(entry.architecture), path.name)
    formats = ", ".join(k for k, v in weights if v is not None)
    raise ModelFileError(
        f"{path.name} has only {formats} weights: napari-bnadapt adapts PyTorch networks "
        "(torchscript or pytorch_state_dict weights); convert the weights with bioimageio.core"
    )


def _architecture(arch: Any, path: Path, trust_code: bool) -> nn.Module:
    """Build the network class a state_dict entry names (see module for what is trusted)."""
    name = _callable_name(arch)
    library = getattr(arch, "import_from", None)
    kwargs = dict(arch.kwargs or {})
    if library is not None and is_trusted(name):
        return Architecture(name, kwargs).build()
    where = f"the library {library}" if library else f"the file {arch.source} in the package"
    if not trust_code:
        raise UntrustedCodeError(
            f"{path.name}'s network {name} is built by code from {where}; importing it runs "
            "that code, so it was not loaded: if you trust the package's authors, open it "
            "with --trust-code (in napari: confirm), or use a package with TorchScript weights"
        )
    if library is not None:
        return Architecture(name, kwargs).build()
    # Imported here: bioimageio.core is only needed, and only imported, for trusted code.
    from bioimageio.core.digest_spec import import_callable

    try:
        network = import_callable(arch)(**kwargs)
    except Exception as exc:  # the package's own code may raise anything
        raise ModelFileError(
            f"{path.name}: the package's network code failed ({type(exc).__name__}: "
            f"{first_line(exc, 160)})"
        ) from None
    if not isinstance(network, nn.Module):
        raise ModelFileError(f"{path.name}: {name} did not build a torch.nn.Module")
    return network


def _read_file(entry: Any, path: Path, what: str) -> bytes:
    """The bytes of a file a package references; remote files are refused (offline), and
    so is anything outside the package: ``..``, an absolute path, a symbolic link."""
    source = str(entry.source)
    if _leaves_package(entry.source, source, path):
        raise ModelFileError(
            f"{path.name} references its {what} outside the package ({source[:80]}): refused"
        )
    if source.startswith(("http://", "https://")):
        raise ModelFileError(
            f"{path.name} references its {what} by URL ({source[:80]}): napari-bnadapt "
            "works offline; download the whole package as a .zip and open that"
        )
    try:
        return entry.get_reader().read()
    except Exception as exc:
        raise ModelFileError(
            f"{path.name}: its {what} ({Path(source).name}) are missing or unreadable "
            f"({type(exc).__name__}): the package is incomplete"
        ) from None


def _leaves_package(reference: Any, source: str, path: Path) -> bool:
    """Whether a reference points outside the package: ``..``, an absolute path (which
    ``bioimageio.spec`` hands over as a plain ``Path``), or in an unpacked package a
    symbolic link on the way to the file, or a file that resolves outside the folder."""
    if source.startswith(("http://", "https://")):
        return False  # refused on its own, with its own message
    relative = Path(source)
    if ".." in relative.parts or relative.is_absolute() or isinstance(reference, Path):
        return True
    if source.startswith("file:") or (len(source) > 1 and source[1] == ":"):  # C:\...
        return True
    if zipfile.is_zipfile(path) and not path.is_dir():
        return False  # members are checked from the zip's directory (check_archive)
    root = path if path.is_dir() else path.parent
    step = root
    for part in relative.parts:
        step = step / part
        if step.is_symlink():
            return True
    return not (root / relative).resolve().is_relative_to(root.resolve())


def _our_document(config: Any) -> dict[str, Any] | None:
    """napari-bnadapt's metadata document in a package's ``config``, if it has one."""
    extra = config if isinstance(config, dict) else getattr(config, "model_extra", None) or {}
    document = extra.get(CONFIG_KEY)
    return document if isinstance(document, dict) else None


def _attachment_tensors(descr: Any, path: Path) -> dict[str, Any]:
    for attachment in descr.attachments or ():
        if Path(str(attachment.source)).name == TENSORS_ATTACHMENT:
            return read_tensor_bytes(_read_file(attachment, path, "statistics"), path)
    return {}


def _package_facts(descr: Any, path: Path, threshold: float | None) -> dict[str, Any]:
    """What an export needs to name this package as its parent."""
    return {
        "source": str(path),
        "id": str(descr.id) if getattr(descr, "id", None) else None,
        "version": str(descr.version) if getattr(descr, "version", None) else None,
        "name": str(descr.name),
        "license": str(descr.license) if descr.license else None,
        "authors": [str(a.name) for a in descr.authors or ()],
        "threshold": threshold,
    }


def _channel_names(tensor: Any, channels: int) -> list[str] | None:
    for axis in tensor.axes:
        if axis.type == "channel" and channels > 1:
            return [str(n) for n in axis.channel_names]
    return None


def _callable_name(arch: Any) -> str:
    library = getattr(arch, "import_from", None)
    return f"{library}.{arch.callable}" if library else str(arch.callable)


def _description_source(path: Path) -> Path:
    """What ``load_description`` opens: the zip, or the description file of a folder."""
    if path.is_dir():
        for name in DESCRIPTION_NAMES:
            if (path / name).is_file():
                return path / name
        return next(path.glob("*.bioimageio.yaml"))
    return path


def _is_description_name(name: str) -> bool:
    return name in DESCRIPTION_NAMES or name.endswith(".bioimageio.yaml")


def _first_error(descr: Any) -> str:
    summary = getattr(descr, "validation_summary", None)
    errors = [e for d in getattr(summary, "details", []) for e in d.errors]
    if not errors:
        return "invalid description"
    error = errors[0]
    return f"{'.'.join(map(str, error.loc))}: {error.msg}"[:200]
