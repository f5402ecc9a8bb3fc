"""Outputs never touch inputs, fuzzed over every command: an output that is an input
(by name, through ``.``/``..``, a symbolic or a hard link), that contains one or lies
inside one is refused in one line with exit code 2, before any work; every input stays
byte-identical and nothing new appears."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import assume, given
from hypothesis import strategies as st

from napari_bnadapt.cli import main
from napari_bnadapt.io.paths import NamedPath, check_outputs_apart
from napari_bnadapt.model.checkpoint import DEMO_PATH

#: Each command with the inputs it reads (role → file made by :func:`make_inputs`) and
#: the options that write.
COMMANDS = {
    "predict": (["--model", "model.pt", "--input", "img.tif"], ["--out", "--probabilities"]),
    "predict-folder": (["--model", "model.pt", "--input", "imgs"], ["--out", "--probabilities"]),
    "predict-zarr": (["--model", "model.pt", "--input", "in.zarr", "--no-rescale"],
                     ["--out", "--probabilities"]),
    "adapt": (["--model", "model.pt", "--target", "img.tif", "--roi", "lbl.tif"], ["--out"]),
    "adapt-reset": (["--reset", "--model", "model.pt"], ["--out"]),
    "report": (["--model", "model.pt", "--input", "img.tif", "--labels", "lbl.tif"], ["--out"]),
    "fingerprint": (["--model", "model.pt", "--source", "img.tif"], ["--out"]),
    "export": (["--model", "model.pt", "--sample", "img.tif"], ["--out"]),
    "train": (["--images", "img.tif", "--labels", "lbl.tif"], ["--out"]),
}  # fmt: skip
RELATIONS = ("same", "dotted", "symlink", "hardlink", "parent", "inside")


def make_inputs(folder: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (2, 32, 32), dtype=np.uint8)
    tifffile.imwrite(folder / "img.tif", image)
    tifffile.imwrite(folder / "lbl.tif", (image > 128).astype(np.uint8))
    (folder / "imgs").mkdir()
    tifffile.imwrite(folder / "imgs" / "a.tif", image[0])
    store = zarr.open_array(str(folder / "in.zarr"), mode="w", shape=image.shape, dtype="u1")
    store[:] = image
    shutil.copy(DEMO_PATH, folder / "model.pt")


def fingerprint_of(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a digest of its bytes (links as their target)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in sorted(files + [d for d in dirs if Path(root, d).is_symlink()]):
            path = Path(root, name)
            data = path.read_bytes() if path.is_file() else os.readlink(path).encode()
            found[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return found


def output_touching(folder: Path, target: str, relation: str) -> str | None:
    """An output path that stands in ``relation`` to the input ``target``."""
    path = folder / target
    if relation == "same":
        return str(path)
    if relation == "dotted":
        (folder / "sub").mkdir(exist_ok=True)
        return f"{folder}/sub/.././{target}"
    if relation == "symlink":
        link = folder / f"link-{path.name}"
        link.symlink_to(path)
        return str(link)
    if relation == "hardlink":
        if path.is_dir():
            return None
        link = folder / f"hard-{path.name}"
        os.link(path, link)
        return str(link)
    if relation == "parent":
        return str(folder)
    return str(path / "out.zarr") if path.is_dir() else None  # inside a folder input


@given(
    command=st.sampled_from(sorted(COMMANDS)),
    relation=st.sampled_from(RELATIONS),
    choice=st.data(),
)
def test_an_output_over_an_input_is_refused_and_nothing_changes(
    command, relation, choice, tmp_path_factory, capsys
):
    folder = tmp_path_factory.mktemp("paths")
    make_inputs(folder)
    arguments, outputs = COMMANDS[command]
    inputs = [v for v in arguments if not v.startswith("--") and (folder / v).exists()]
    target = choice.draw(st.sampled_from(inputs), "input")
    option = choice.draw(st.sampled_from(outputs), "output option")
    out = output_touching(folder, target, relation)
    assume(out is not None)
    argv = [command.split("-")[0]]
    argv += [str(folder / a) if (folder / a).exists() else a for a in arguments]
    if option != "--out":
        argv += ["--out", str(tmp_path_factory.mktemp("elsewhere") / "mask.tif")]
    argv += [option, out]
    before = fingerprint_of(folder)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could destroy your input" in err, err
    assert fingerprint_of(folder) == before


@pytest.mark.parametrize("partial", ["out", "probabilities"])
def test_a_partial_store_over_an_input_or_output_is_refused(tmp_path, capsys, partial):
    make_inputs(tmp_path)
    shutil.move(tmp_path / "in.zarr", tmp_path / "m.zarr.partial")
    before = fingerprint_of(tmp_path)
    argv = ["predict", "--model", "demo", "--no-rescale"]
    if partial == "out":  # m.zarr's own .partial store is the input
        argv += ["--input", str(tmp_path / "m.zarr.partial"), "--out", str(tmp_path / "m.zarr")]
    else:  # two outputs: one is the other's .partial
        argv += ["--input", str(tmp_path / "img.tif"), "--out", str(tmp_path / "o.zarr"),
                 "--probabilities", str(tmp_path / "o.zarr.partial")]  # fmt: skip
    assert main(argv) == 2
    assert ".partial" in capsys.readouterr().err
    assert fingerprint_of(tmp_path) == before


def test_the_core_writer_refuses_its_own_input_store(tmp_path, small_model_2d):
    from napari_bnadapt.blockwise.stream import predict_to_zarr
    from napari_bnadapt.errors import OutputPathError
    from napari_bnadapt.io.volumes import read_volume

    make_inputs(tmp_path)
    before = fingerprint_of(tmp_path)
    source = read_volume(tmp_path / "in.zarr").source
    with pytest.raises(OutputPathError, match="could destroy your input"):
        predict_to_zarr(small_model_2d, source, tmp_path / "in.zarr")
    assert fingerprint_of(tmp_path) == before


def test_apart_paths_pass(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"x")
    check_outputs_apart([NamedPath.of("--out", tmp_path / "b.tif")], [
        NamedPath.of("--input", tmp_path / "a.tif"), NamedPath.of("--model", "demo"),
    ])  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_special_files_are_refused_before_they_are_read(tmp_path, capsys, kind):
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    assert main(["info", str(path)]) == 2
    assert main(["predict", "--model", "demo", "--input", str(path), "--out", str(tmp_path / "m.tif")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and ("named pipe" in err or "device" in err)


def test_a_special_file_is_never_written_over(tmp_path, capsys):
    """A walkthrough's ``--out /dev/null`` replaced the device with a file (the atomic
    rename): an output that is a named pipe or a device is refused, by every writer."""
    from napari_bnadapt.errors import OutputPathError
    from napari_bnadapt.io.files import atomic_output

    make_inputs(tmp_path)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for argv in (
        ["predict", "--model", "demo", "--input", str(tmp_path / "img.tif"), "--out", str(pipe)],
        ["adapt", "--model", "demo", "--target", str(tmp_path / "img.tif"), "--out", str(pipe)],
        ["export", "--model", "demo", "--format", "torchscript", "--out", str(pipe)],
    ):
        assert main(argv) == 2 and "named pipe" in capsys.readouterr().err
    with pytest.raises(OutputPathError, match="named pipe"), atomic_output(pipe) as tmp:
        tmp.write_bytes(b"x")
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)


@pytest.mark.parametrize(
    ("argv", "made", "said"),
    [
        (["predict", "--model", "demo", "--input", "{d}/img.tif", "--out", "{d}/x"], "folder", "is a folder"),
        (["adapt", "--model", "demo", "--target", "{d}/img.tif", "--out", "{d}/x"], "folder", "is a folder"),
        (["report", "--model", "demo", "--input", "{d}/img.tif", "--out", "{d}/x"], "file", "is a file"),
        (["demo", "--out", "{d}/x"], "file", "is a file"),
    ],
)  # fmt: skip
def test_a_file_where_a_folder_goes_and_back_is_one_line(tmp_path, capsys, argv, made, said):
    make_inputs(tmp_path)
    (tmp_path / "x").mkdir() if made == "folder" else (tmp_path / "x").write_bytes(b"mine")
    before = fingerprint_of(tmp_path)
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err
    assert fingerprint_of(tmp_path) == before


def test_a_report_that_fails_midway_leaves_nothing(tmp_path, monkeypatch, small_model_2d):
    from napari_bnadapt import report as report_module
    from napari_bnadapt.synthetic import TARGET, make_volume

    volume = make_volume((2, 48, 48), TARGET, seed=0)[0]
    built = report_module.build_report(small_model_2d, volume)

    def broken(*_):
        raise RuntimeError("a figure failed")

    monkeypatch.setitem(report_module.FIGURES, "heatmap.png", broken)
    with pytest.raises(RuntimeError):
        report_module.write_report(built, tmp_path / "rep")
    assert list(tmp_path.iterdir()) == []  # no report folder, no staging folder
