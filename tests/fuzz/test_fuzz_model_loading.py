"""Model loading fuzzed: random bytes and archives, pickles that try to run code, zip
bombs, path traversal, TorchScript programs with unexpected signatures. Every case is a
:class:`ModelFileError` (one line) or a model; no code from a file ever runs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

from napari_bnadapt.cli import main
from napari_bnadapt.errors import ModelFileError
from napari_bnadapt.model import load_model
from napari_bnadapt.model import package as package_module


def refused(path: Path) -> str:
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    message = str(error.value)
    assert "\n" not in message and len(message) < 400
    return message


@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".pt", ".pth", ".zip", ".ts"]))
def test_random_bytes_are_refused(data, suffix, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("bytes") / f"model{suffix}"
    path.write_bytes(data)
    refused(path)
    assert main(["info", str(path)]) == 2  # and the CLI says it in one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


names = st.one_of(
    st.sampled_from(["rdf.yaml", "bioimageio.yaml", "data.pkl", "archive/data.pkl",
                     "archive/constants.pkl", "weights.pt", "code/x.py", "version"]),
    st.text(min_size=1, max_size=12),
)  # fmt: skip


@given(members=st.dictionaries(names, st.binary(max_size=256), min_size=1, max_size=5))
def test_random_archives_are_refused(members, tmp_path_factory):
    path = tmp_path_factory.mktemp("zips") / "model.zip"
    try:
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    except (IndexError, ValueError):  # a name zipfile itself cannot write
        assume(False)
    refused(path)


class RunsCode:
    """An object whose unpickling would call ``Path.touch`` on a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@given(
    wrap=st.sampled_from(["bare", "dict", "list", "state_dict", "nested", "native"]),
)
def test_pickles_that_run_code_are_refused_and_never_run(wrap, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pickles")
    marker = folder / "code-ran"
    evil = RunsCode(marker)
    payload = {
        "bare": evil,
        "dict": {"weight": torch.zeros(2), "x": evil},
        "list": [torch.zeros(1), evil],
        "state_dict": {"state_dict": {"w": evil}},
        "nested": {"a": {"b": [evil]}},
        "native": {"format": "napari-bnadapt-model", "format_version": 1, "state_dict": evil},
    }[wrap]
    path = folder / "model.pt"
    torch.save(payload, path)
    refused(path)
    assert not marker.exists()


def test_a_package_whose_state_dict_is_a_pickle_never_runs_it(
    make_package, nets, tmp_path, damaged
):
    monai = pytest.importorskip("monai")
    args = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [4, 8],
            "strides": [2], "num_res_units": 0, "norm": "batch"}  # fmt: skip
    net = monai.networks.nets.UNet(**args).eval()
    package = make_package(net, weights="library", library=("monai.networks.nets", "UNet", args))
    marker = tmp_path / "code-ran"
    evil = io.BytesIO()
    torch.save({"model.0.conv.weight": RunsCode(marker)}, evil)
    bad = tmp_path / "evil.zip"
    damaged(package, bad, lambda name, data: evil.getvalue() if name == "weights.pt" else data)
    assert "weights" in refused(bad)
    assert not marker.exists()


def test_a_zip_bomb_is_refused_before_it_is_read(
    make_package, nets, tmp_path, monkeypatch, damaged
):
    package = make_package(nets.tiny())
    bomb = tmp_path / "bomb.zip"
    # 64 MiB of zeros: 64 KiB packed.
    damaged(
        package, bomb, extra={"padding.npy": bytes(64 * 1024**2)}, compression=zipfile.ZIP_DEFLATED
    )
    monkeypatch.setattr(package_module, "BOMB_FLOOR", 16 * 1024**2)
    assert "zip bomb" in refused(bomb)
    monkeypatch.setattr(package_module, "BOMB_FLOOR", 256 * 1024**2)
    monkeypatch.setattr(package_module, "MAX_UNPACKED_BYTES", 32 * 1024**2)
    assert "zip bomb" in refused(bomb)


@pytest.mark.parametrize("where", ["member", "reference"])
def test_path_traversal_in_a_package_is_refused(make_package, nets, tmp_path, damaged, where):
    package = make_package(nets.tiny())
    bad = tmp_path / "traversal.zip"

    def traverse(name: str, data: bytes) -> bytes:
        if name == "rdf.yaml" and where == "reference":
            return data.replace(b"source: weights.pt", b"source: ../../weights.pt")
        return data

    extra = {"../../outside.txt": b"x"} if where == "member" else {}
    damaged(package, bad, traverse, extra)
    before = set(tmp_path.parent.iterdir())
    assert "outside the package" in refused(bad)
    assert set(tmp_path.parent.iterdir()) == before


@pytest.mark.parametrize(
    "escape",
    ["absolute in a folder", "absolute in a zip", "file url", "linked file", "linked folder",
     "link member"],
)  # fmt: skip
def test_a_package_never_reads_outside_itself(make_package, nets, tmp_path, damaged, escape):
    package = make_package(nets.tiny())
    secret = tmp_path / "secret"
    secret.mkdir()
    with zipfile.ZipFile(package) as archive:
        (secret / "weights.pt").write_bytes(archive.read("weights.pt"))  # loadable if read
        text = archive.read("rdf.yaml").decode()
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    target = folder
    if escape == "absolute in a folder":
        (folder / "rdf.yaml").write_text(text.replace("source: weights.pt", f"source: {secret}/weights.pt"))  # fmt: skip
    elif escape == "absolute in a zip":
        target = damaged(package, tmp_path / "bad.zip", lambda n, d: d.replace(
            b"source: weights.pt", f"source: {secret}/weights.pt".encode()) if n == "rdf.yaml" else d)  # fmt: skip
    elif escape == "file url":
        (folder / "rdf.yaml").write_text(text.replace("source: weights.pt", f"source: file://{secret}/weights.pt"))  # fmt: skip
    elif escape == "linked file":
        (folder / "weights.pt").unlink()
        (folder / "weights.pt").symlink_to(secret / "weights.pt")
    elif escape == "linked folder":
        (folder / "rdf.yaml").write_text(text.replace("source: weights.pt", "source: sub/weights.pt"))  # fmt: skip
        (folder / "sub").symlink_to(secret)
    else:
        target = tmp_path / "link.zip"
        with zipfile.ZipFile(package) as archive, zipfile.ZipFile(target, "w") as out:
            for item in archive.infolist():
                out.writestr(item, archive.read(item))
            link = zipfile.ZipInfo("extra")
            link.external_attr = (0o120777) << 16  # a symbolic link
            out.writestr(link, str(secret / "weights.pt"))
    assert "outside the package" in refused(target)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda t: t.replace("min: 16", "min: 40000", 1), "min_size"),
        (lambda t: t.replace("step: 8", "step: 25000", 1), "divisor"),
        (lambda t: "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e]\n"
         "g: &g [*f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g]\n"
         + t.replace("%YAML 1.2\n---\n", ""), "YAML aliases"),
        (lambda t: t + "\n# " + "x" * (2 * 1024**2), "MB"),
    ],
    ids=["min 40000", "step 25000", "billion laughs", "huge description"],
)  # fmt: skip
def test_a_package_that_claims_the_impossible_is_refused_before_it_runs(
    make_package, nets, tmp_path, damaged, change, said
):
    package = make_package(nets.tiny())
    edit = lambda name, data: change(data.decode()).encode() if name == "rdf.yaml" else data  # noqa: E731
    assert said in refused(damaged(package, tmp_path / "bad.zip", edit))


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class ReturnsTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv(x), x


class Shrinks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 0:
            raise RuntimeError("this program refuses every input")
        return self.conv(x)


@pytest.mark.parametrize("program", [TwoInputs, ReturnsTuple, Shrinks, Raises])
def test_torchscript_with_an_unexpected_signature_is_refused_on_load(program, tmp_path):
    path = tmp_path / "program.pt"
    torch.jit.save(torch.jit.script(program()), str(path))
    assert "napari-bnadapt needs forward(x)" in refused(path)
