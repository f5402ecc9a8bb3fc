"""The hostile-input pass of issue 20, replayed: every example class, run as a user would
(``bnadapt`` in a fresh process), with the peak memory, the time, the exit code, what it
printed, and whether every input stayed byte-identical and no partial output was left.

``python benchmarks/hostile.py [OUT.json]`` prints one row per case and the counts per
class (the table of docs/reliability.md). Each case runs under a 120 s timeout; the peak
resident memory is GNU time's ``%M``. The cases are built here, from tiny synthetic files,
in a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
import zarr

from napari_bnadapt.model.checkpoint import BUNDLED, EXTRA_FILE

TIMEOUT = 300
#: Peak memory (MB) allowed for a refusal (issue 20: under 1 GB), and for a run that works.
REFUSAL_MB, BOUND_MB = 1024, 4096
TIME = shutil.which("time") or "/usr/bin/time"


@dataclass
class Case:
    cls: str
    name: str
    argv: list[str]
    #: "refused" (one line, exit 2), "ok" (a correct result: ``check`` has ``shape``), or
    #: "bounded" (either, within :data:`BOUND_MB` of memory: a legitimate if large request)
    expect: str = "refused"
    check: str | None = None  # a path whose TIFF shape must equal ``shape``
    shape: tuple[int, ...] | None = None


@dataclass
class Outcome:
    cls: str
    name: str
    code: int | None
    seconds: float
    peak_mb: float
    lines: int
    last: str
    inputs_intact: bool
    partial_left: bool
    verdict: str


def digest(folder: Path) -> dict[str, str]:
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def demo_document() -> dict:
    return torch.load(BUNDLED["demo"], weights_only=True)


def hostile_model(folder: Path, name: str, edit) -> str:
    document = demo_document()
    edit(document)
    path = folder / f"{name}.pt"
    torch.save(document, path)
    return str(path)


def with_meta(change):
    def edit(document):
        meta = json.loads(document["metadata_json"])
        change(meta)
        document["metadata_json"] = json.dumps(meta)

    return edit


def at_voxel_size(size: list[float]):
    """A model trained at ``size`` nm, as its metadata and its fingerprint say."""

    def edit(document):
        with_meta(lambda m: m["metadata"].update(voxel_size=size))(document)
        document["fingerprint"]["voxel_size"] = size

    return edit


def make_package(folder: Path) -> Path:
    """A tiny TorchScript bioimage.io package (via the test suite's own builder)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    import conftest

    folder.mkdir(parents=True, exist_ok=True)
    build = conftest.make_package.__wrapped__(folder)
    return build(conftest.TinyNet())


def edit_zip(source: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            new.writestr(item, change(item.filename, data))
    return target


def silent_server() -> int:
    """A listener that accepts connections and never answers (a web server's manner)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        held = []
        while True:
            connection, _ = listener.accept()
            held.append(connection)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def build_cases(d: Path) -> list[Case]:
    rng = np.random.default_rng(0)
    image = rng.integers(40, 220, (4, 256, 256), dtype=np.uint8)
    tifffile.imwrite(d / "in.tif", image)
    tifffile.imwrite(d / "t.tif", image)
    tifffile.imwrite(d / "big.tif", rng.integers(40, 220, (20, 1024, 1024), dtype=np.uint8))
    tifffile.imwrite(d / "thin.tif", image[:, :1, :1].repeat(4, axis=0))
    store = zarr.open_array(
        str(d / "in.zarr"), mode="w", shape=image.shape, chunks=(1, 128, 128), dtype="u1"
    )
    store[:] = image
    v2 = zarr.open_array(
        str(d / "plain.zarr"),
        mode="w",
        shape=image.shape,
        chunks=(1, 128, 128),
        dtype="u1",
        zarr_format=2,
    )
    v2[:] = image
    holed = zarr.open_array(
        str(d / "holed.zarr"), mode="w", shape=image.shape, chunks=(1, 128, 128), dtype="u1"
    )
    holed[:] = image
    shutil.rmtree(d / "holed.zarr" / "c" / "2")
    zarr.open_array(
        str(d / "huge.zarr"),
        mode="w",
        shape=(100000, 100000, 100000),
        chunks=(1, 1024, 1024),
        dtype="u1",
    )
    (d / "rep").mkdir()
    (d / "rep" / "masks.png").write_bytes(b"\x89PNG mine")
    (d / "afolder").mkdir()
    (d / "afile").write_bytes(b"mine")
    os.mkfifo(d / "pipe")
    # A 16x1x1 stack, a 3D model file, a partial store from another run.
    tifffile.imwrite(d / "stack16.tif", image[0, :16, :1][:, :, None].reshape(16, 1, 1))
    tifffile.imwrite(d / "labels.tif", (image > 128).astype(np.uint8))
    subprocess.run(
        [
            "bnadapt",
            "train",
            "--images",
            str(d / "in.tif"),
            "--labels",
            str(d / "labels.tif"),
            "--out",
            str(d / "m3d.pt"),
            "--dims",
            "3",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--patch-size",
            "16",
            "--depth",
            "1",
            "--base-channels",
            "2",
            "--voxel-size",
            "10,10,10",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "bnadapt",
            "adapt",
            "--model",
            "demo",
            "--target",
            str(d / "in.tif"),
            "--out",
            str(d / "adapted.pt"),
            "--patches",
            "4",
        ],
        check=True,
        capture_output=True,
    )
    interrupted = [
        "bnadapt",
        "predict",
        "--model",
        "demo",
        "--input",
        str(d / "in.tif"),
        "--no-rescale",
        "--out",
        str(d / "res.zarr"),
        "--block",
        "1,128,128",
    ]
    subprocess.run(interrupted, check=True, capture_output=True)
    shutil.move(d / "res.zarr", d / "res.zarr.partial")  # as if killed before the rename
    shutil.copytree(d / "res.zarr.partial", d / "res2.zarr.partial")
    models = {
        "base1024": hostile_model(
            d, "base1024", lambda doc: doc["architecture"]["config"].update(base_channels=1024)
        ),
        "depth40": hostile_model(
            d, "depth40", lambda doc: doc["architecture"]["config"].update(depth=40)
        ),
        "divisor": hostile_model(
            d, "divisor", with_meta(lambda m: m["metadata"].update(divisor=25000))
        ),
        "tiny_voxel": hostile_model(d, "tiny_voxel", at_voxel_size([0.05, 0.05])),
        "string_int": hostile_model(
            d, "string_int", with_meta(lambda m: m["metadata"].update(training_axis="z"))
        ),
        "classes_int": hostile_model(d, "classes_int", with_meta(lambda m: m.update(classes=1))),
        "percentile": hostile_model(
            d,
            "percentile",
            with_meta(lambda m: m["normalization"].update(mode="percentile", high_percentile=400)),
        ),
        "nan_voxel": hostile_model(
            d, "nan_voxel", with_meta(lambda m: m["metadata"].update(voxel_size=[float("nan")] * 2))
        ),
        "nan_mean": hostile_model(
            d, "nan_mean", with_meta(lambda m: m["normalization"].update(mean=float("nan")))
        ),
        "minus5": hostile_model(
            d, "minus5", with_meta(lambda m: m["metadata"].update(voxel_size=[-5.0, -5.0]))
        ),
        "e300": hostile_model(
            d, "e300", with_meta(lambda m: m["metadata"].update(voxel_size=[1e-300, 1e-300]))
        ),
    }
    state = {f"encoder.{i}.conv1.weight": torch.zeros(2, 1, 3, 3) for i in range(41)}
    state["encoder.0.conv1.weight"] = torch.zeros(2, 1, 3, 3)
    state["head.weight"] = torch.zeros(1, 2, 1, 1)
    torch.save(state, d / "encoder40.pt")
    scripted = torch.jit.script(torch.nn.Conv2d(1, 1, 3, padding=1))
    torch.jit.save(scripted, str(d / "badjson.pt"), _extra_files={EXTRA_FILE: "{not json"})
    torch.save({"x": torch.zeros(1)}, d / "weights.pt")
    package = make_package(d / "pkg")
    folder = d / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
        secret = d / "secret.pt"
        secret.write_bytes(archive.read("weights.pt"))
    absolute = d / "absolute"
    shutil.copytree(folder, absolute)
    text = (absolute / "rdf.yaml").read_text()
    (absolute / "rdf.yaml").write_text(text.replace("source: weights.pt", f"source: {secret}"))
    (folder / "weights.pt").unlink()
    (folder / "weights.pt").symlink_to(secret)
    min_axis = edit_zip(
        package,
        d / "min40000.zip",
        lambda n, b: (
            b.decode().replace("min: 16", "min: 40000", 1).encode() if n == "rdf.yaml" else b
        ),
    )
    laughs = "".join(
        f"{a}: &{a} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
        for a, p in zip("abcdefghi", ["", *"abcdefgh"])
    )
    lol = edit_zip(
        package,
        d / "laughs.zip",
        lambda n, b: (
            (laughs + b.decode().replace("%YAML 1.2\n---\n", "")).encode() if n == "rdf.yaml" else b
        ),
    )
    n5 = d / "bad.n5"
    (n5 / "raw").mkdir(parents=True)
    (n5 / "attributes.json").write_text('{"n5": "2.0.0"}')
    (n5 / "raw" / "attributes.json").write_text(
        json.dumps(
            {
                "dimensions": [8, 8, 4],
                "blockSize": [4, 4, 1],
                "dataType": "uint8",
                "compression": {"type": "nonsense", "x": "y" * 400},
            }
        )
    )
    ome = d / "ome.zarr"
    from napari_bnadapt.io.ome_zarr_writer import BlockStore

    block = BlockStore(
        str(ome), image.shape, "uint8", (1, 128, 128), ("z", "y", "x"), (1.0, 1e308, 1e308), "nm"
    )
    block.create()
    block.write(tuple(slice(0, n) for n in image.shape), image, 0)
    block.finish("ome")
    port = silent_server()
    monai_args = (
        '{{"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": {}, "strides": [2]}}'
    )
    p = lambda *a: ["predict", "--model", "demo", *a]  # noqa: E731
    D = str(d)
    return [
        Case(
            "data loss",
            "predict zarr over its input",
            p("--input", f"{D}/in.zarr", "--out", f"{D}/in.zarr", "--no-rescale"),
        ),
        Case(
            "data loss",
            "predict plain zarr v2 over its input",
            p("--input", f"{D}/plain.zarr", "--out", f"{D}/plain.zarr", "--no-rescale"),
        ),
        Case(
            "data loss",
            "predict tif over its input",
            p("--input", f"{D}/in.tif", "--out", f"{D}/in.tif"),
        ),
        Case(
            "data loss",
            "probabilities over the input",
            p("--input", f"{D}/in.tif", "--out", f"{D}/o.tif", "--probabilities", f"{D}/in.tif"),
        ),
        Case(
            "data loss",
            "adapt --out over the target",
            ["adapt", "--model", "demo", "--target", f"{D}/t.tif", "--out", f"{D}/t.tif"],
        ),
        Case(
            "data loss",
            "report into the folder of its input",
            ["report", "--model", "demo", "--input", f"{D}/rep/masks.png", "--out", f"{D}/rep"],
        ),
        Case(
            "data loss",
            "reset over the model itself",
            ["adapt", "--reset", "--model", f"{D}/adapted.pt", "--out", f"{D}/adapted.pt"],
        ),
        Case(
            "silently wrong",
            "--resume a store of another model",
            [
                "predict",
                "--model",
                f"{D}/adapted.pt",
                "--input",
                f"{D}/in.tif",
                "--no-rescale",
                "--out",
                f"{D}/res.zarr",
                "--block",
                "1,128,128",
                "--resume",
            ],
        ),
        Case(
            "silently wrong",
            "--resume with another --block",
            p(
                "--input",
                f"{D}/in.tif",
                "--no-rescale",
                "--out",
                f"{D}/res2.zarr",
                "--block",
                "2,256,256",
                "--resume",
            ),
        ),
        Case(
            "silently wrong",
            "--prior-strength nan",
            [
                "adapt",
                "--model",
                "demo",
                "--target",
                f"{D}/in.tif",
                "--out",
                f"{D}/p.pt",
                "--prior-strength",
                "nan",
            ],
        ),
        Case(
            "silently wrong",
            "a missing zarr chunk",
            p("--input", f"{D}/holed.zarr", "--out", f"{D}/h.tif", "--no-rescale"),
        ),
        Case(
            "silently wrong",
            "a 16x1x1 stack",
            p("--input", f"{D}/stack16.tif", "--out", f"{D}/s16.tif"),
            "ok",
            f"{D}/s16.tif",
            (16, 1, 1),
        ),
        Case("reads outside", "absolute weights path in rdf.yaml", ["info", f"{D}/absolute"]),
        Case("reads outside", "weights.pt a symlink outside", ["info", str(folder)]),
        Case("unbounded memory", "base_channels 1024", ["info", models["base1024"]]),
        Case("unbounded memory", "depth 40", ["info", models["depth40"]]),
        Case("unbounded memory", "an encoder.40 key", ["info", f"{D}/encoder40.pt"]),
        Case(
            "unbounded memory",
            "a divisor of 25,000",
            [
                "predict",
                "--model",
                models["divisor"],
                "--input",
                f"{D}/in.tif",
                "--out",
                f"{D}/d.tif",
            ],
        ),
        Case("unbounded memory", "a package axis min 40000", ["info", str(min_axis)]),
        Case("unbounded memory", "billion laughs rdf.yaml", ["info", str(lol)]),
        Case("unbounded memory", "info /dev/zero", ["info", "/dev/zero"]),
        Case(
            "unbounded memory",
            "a container declaring 10^15 voxels",
            p("--input", f"{D}/huge.zarr", "--out", f"{D}/hz.tif", "--no-rescale"),
        ),
        Case(
            "unbounded memory",
            "a model at 0.05 nm",
            [
                "predict",
                "--model",
                models["tiny_voxel"],
                "--input",
                f"{D}/in.tif",
                "--out",
                f"{D}/tv.tif",
                "--voxel-size",
                "50,4.6,4.6",
            ],
        ),
        Case(
            "unbounded memory",
            "--voxel-size 1,100,100",
            p("--input", f"{D}/big.tif", "--out", f"{D}/v.tif", "--voxel-size", "1,100,100"),
            "bounded",
            f"{D}/v.tif",
            (20, 1024, 1024),
        ),
        Case(
            "unbounded memory",
            "3D model at 1000,1,1",
            [
                "predict",
                "--model",
                f"{D}/m3d.pt",
                "--input",
                f"{D}/in.tif",
                "--out",
                f"{D}/m3.tif",
                "--voxel-size",
                "1000,1,1",
            ],
            "bounded",
            f"{D}/m3.tif",
            image.shape,
        ),
        Case(
            "hangs",
            "--scheduler at a silent server",
            p(
                "--input",
                f"{D}/in.zarr",
                "--out",
                f"{D}/sc.zarr",
                "--no-rescale",
                "--scheduler",
                f"tcp://127.0.0.1:{port}",
            ),
        ),
        Case("hangs", "info on a named pipe", ["info", f"{D}/pipe"]),
        Case("tracebacks", "a string where an int is expected", ["info", models["string_int"]]),
        Case("tracebacks", "classes an int", ["info", models["classes_int"]]),
        Case("tracebacks", "bad JSON in a TorchScript extra file", ["info", f"{D}/badjson.pt"]),
        Case("tracebacks", "percentiles outside [0, 100]", ["info", models["percentile"]]),
        Case("tracebacks", "a NaN model voxel size", ["info", models["nan_voxel"]]),
        Case(
            "tracebacks",
            "--architecture ..os.system",
            ["info", f"{D}/weights.pt", "--architecture", "..os.system"],
        ),
        Case(
            "tracebacks",
            "MONAI channels negative",
            [
                "info",
                f"{D}/weights.pt",
                "--architecture",
                "monai.networks.nets.UNet",
                "--architecture-args",
                monai_args.format("[-4, 8]"),
            ],
        ),
        Case(
            "tracebacks",
            "MONAI channels astronomical",
            [
                "info",
                f"{D}/weights.pt",
                "--architecture",
                "monai.networks.nets.UNet",
                "--architecture-args",
                monai_args.format("[1000000, 2000000]"),
            ],
        ),
        Case(
            "tracebacks",
            "--voxel-size 1,1e308,1e308",
            p("--input", f"{D}/in.tif", "--out", f"{D}/e.tif", "--voxel-size", "1,1e308,1e308"),
        ),
        Case(
            "tracebacks",
            "OME scale 1e308",
            p("--input", str(ome), "--out", f"{D}/oe.tif"),
            "ok",
            f"{D}/oe.tif",
            image.shape,
        ),
        Case(
            "tracebacks",
            "--out an existing folder",
            p("--input", f"{D}/in.tif", "--out", f"{D}/afolder"),
        ),
        Case(
            "tracebacks",
            "report --out an existing file",
            ["report", "--model", "demo", "--input", f"{D}/in.tif", "--out", f"{D}/afile"],
        ),
        Case(
            "tracebacks",
            "--scheduler garbage://%%%",
            p(
                "--input",
                f"{D}/in.zarr",
                "--out",
                f"{D}/g.zarr",
                "--no-rescale",
                "--scheduler",
                "garbage://%%%",
            ),
        ),
        Case(
            "misleading",
            "a NaN normalisation mean in the model",
            [
                "predict",
                "--model",
                models["nan_mean"],
                "--input",
                f"{D}/in.tif",
                "--out",
                f"{D}/nm.tif",
            ],
        ),
        Case(
            "misleading",
            "a model trained at -5 nm",
            [
                "predict",
                "--model",
                models["minus5"],
                "--input",
                f"{D}/in.tif",
                "--out",
                f"{D}/m5.tif",
                "--voxel-size",
                "50,4.6,4.6",
            ],
        ),
        Case(
            "misleading",
            "a model at 1e-300 nm",
            [
                "predict",
                "--model",
                models["e300"],
                "--input",
                f"{D}/in.tif",
                "--out",
                f"{D}/e300.tif",
                "--voxel-size",
                "50,4.6,4.6",
            ],
        ),
        Case(
            "misleading",
            "an N5 error",
            p("--input", str(n5), "--key", "raw", "--out", f"{D}/n5.tif"),
        ),
    ]


def run(case: Case, folder: Path) -> Outcome:
    before = digest(folder)
    started = time.perf_counter()
    command = [TIME, "-f", "PEAK %M", "bnadapt", *case.argv]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        code, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, err = None, (exc.stderr or b"").decode(errors="replace") + "\nPEAK 0"
    seconds = time.perf_counter() - started
    lines = [line for line in err.splitlines() if not line.startswith(("PEAK", "Command exited"))]
    peak = next(
        (float(line.split()[1]) for line in err.splitlines() if line.startswith("PEAK")), 0.0
    )
    messages = [line for line in lines if not line.startswith(("  [", "bnadapt: note"))]
    after = digest(folder)
    intact = all(after.get(k) == v for k, v in before.items())
    partial = any(k not in before and (".partial" in k or k.endswith(".part")) for k in after)
    worked = code == 0 and case.check and tifffile.imread(case.check).shape == case.shape
    refused = code == 2 and len(messages) == 1 and "Traceback" not in err
    good = {"ok": worked, "refused": refused, "bounded": worked or refused}[case.expect]
    limit = BOUND_MB if case.expect != "refused" else REFUSAL_MB
    good = bool(good) and intact and not partial and peak / 1024 < limit
    return Outcome(
        case.cls,
        case.name,
        code,
        round(seconds, 1),
        round(peak / 1024, 1),
        len(messages),
        (messages or [""])[-1][:160],
        intact,
        partial,
        "ok" if good else "FAILED",
    )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory(prefix="bnadapt-hostile-") as tmp:
        folder = Path(tmp)
        cases = build_cases(folder)
        outcomes = []
        for case in cases:
            outcome = run(case, folder)
            outcomes.append(outcome)
            print(
                f"{outcome.verdict:6} {outcome.cls:17} {outcome.name:38} exit {outcome.code} "
                f"{outcome.seconds:5.1f} s {outcome.peak_mb:6.0f} MB  {outcome.last[:90]}"
            )
    counts: dict[str, list[int]] = {}
    for o in outcomes:
        counts.setdefault(o.cls, [0, 0])[o.verdict == "ok"] += 1
    print("\nclass              cases  ok  failed  max peak MB  max s")
    for cls, (failed, ok) in counts.items():
        rows = [o for o in outcomes if o.cls == cls]
        print(
            f"{cls:18} {failed + ok:5} {ok:3} {failed:7} {max(o.peak_mb for o in rows):12.0f} "
            f"{max(o.seconds for o in rows):6.1f}"
        )
    if out is not None:
        out.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))


if __name__ == "__main__":
    main()
