"""Every numeric option of every command given hostile values (NaN, infinities, zero,
negative, astronomical, text): a correct run, or one line with exit code 2 that leaves no
output; never a traceback, and the inputs stay byte-identical."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tifffile
from hypothesis import given
from hypothesis import strategies as st

from napari_bnadapt import memory
from napari_bnadapt.cli import main

#: Each command with a fast base invocation ({d} is the folder) and its numeric options.
COMMANDS = {
    "predict": (
        "predict --model demo --input {d}/img.tif --out {d}/out.tif",
        ["--tile", "--batch-size", "--threshold", "--voxel-size", "--max-memory",
         "--slice-axis", "--block"],
    ),
    "predict-zarr": (
        "predict --model demo --input {d}/img.tif --out {d}/out.zarr --no-rescale",
        ["--block", "--tile", "--batch-size", "--workers"],
    ),
    "adapt": (
        "adapt --model demo --target {d}/img.tif --out {d}/out.pt --patches 2 --patch-size 32",
        ["--alpha", "--prior-strength", "--patches", "--patch-size", "--batch-size",
         "--momentum", "--fda-beta", "--tent-steps", "--seed", "--voxel-size", "--max-memory"],
    ),
    "train": (
        "train --images {d}/img.tif --labels {d}/lbl.tif --out {d}/out.pt --steps 1 "
        "--batch-size 1 --patch-size 16 --depth 1 --base-channels 2",
        ["--steps", "--batch-size", "--patch-size", "--depth", "--base-channels",
         "--learning-rate", "--voxel-size", "--seed"],
    ),
    "report": (
        "report --model demo --input {d}/img.tif --out {d}/out --patches 2",
        ["--patches", "--voxel-size", "--max-memory"],
    ),
}  # fmt: skip
#: Values that must never crash; the huge ones are only tried where a run stays short.
HOSTILE = ["nan", "inf", "-inf", "-1", "0", "1e308", "-1e308", "abc", "", "1,1e308,1e308",
           "1e-300", "99999999999999999999", "0.5", "2"]  # fmt: skip
#: Options that, given a large valid value, would legitimately run for hours.
LONG_RUNNING = {"--steps", "--tent-steps"}


def digest(folder) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * 10**9)


@given(command=st.sampled_from(sorted(COMMANDS)), choice=st.data(), value=st.sampled_from(HOSTILE))
def test_a_hostile_option_value_is_a_run_or_one_line(
    command, choice, value, tmp_path_factory, capsys, small_budget
):
    option = choice.draw(st.sampled_from(COMMANDS[command][1]), "option")
    if option in LONG_RUNNING and value in ("1e308", "99999999999999999999"):
        value = "nan"
    run_case(command, option, value, tmp_path_factory.mktemp("opts"), capsys)


#: What the fuzzing found (each was a traceback, an endless loop or a silent NaN).
FOUND = [
    ("adapt", "--prior-strength", "nan"),  # saved NaN statistics, exit 0
    ("train", "--seed", "-1"),  # numpy's ValueError
    ("train", "--seed", "99999999999999999999"),  # torch's overflow
    ("train", "--patch-size", "2"),  # a 1x1 bottleneck: BatchNorm's ValueError
    ("train", "--batch-size", "99999999999999999999"),  # sampled patches forever
    ("predict-zarr", "--workers", "99999999999999999999"),  # a cluster of 10^20: 21 GB, killed
]


@pytest.mark.parametrize(("command", "option", "value"), FOUND)
def test_what_fuzzing_found_stays_fixed(command, option, value, tmp_path, capsys, small_budget):
    run_case(command, option, value, tmp_path, capsys)


def run_case(command: str, option: str, value: str, folder, capsys) -> None:
    """Run ``command`` with ``option=value``: a run (exit 0) or one line (exit 2) that
    writes nothing; never a traceback; the inputs unchanged."""
    base = COMMANDS[command][0]
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "img.tif", rng.integers(60, 200, (2, 32, 32), dtype=np.uint8))
    tifffile.imwrite(folder / "lbl.tif", rng.integers(0, 2, (2, 32, 32), dtype=np.uint8))
    before = digest(folder)
    argv = [*base.format(d=folder).split(), f"{option}={value}"]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert {k: v for k, v in digest(folder).items() if k in before} == before
    if code == 2:
        assert err.strip().count("\n") == 0 or all(
            line.startswith(("  [", "bnadapt: note")) for line in err.strip().splitlines()[:-1]
        ), err
        assert not list(folder.glob("out*")), "a refused run left an output"
    else:
        assert code == 0, err
