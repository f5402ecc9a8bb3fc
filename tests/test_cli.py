import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_bnadapt.cli import main
from napari_bnadapt.model import load_model
from napari_bnadapt.synthetic import SOURCE, TARGET, make_dataset, make_volume


@pytest.fixture
def target_tif(tmp_path):
    volume, _ = make_volume((3, 64, 64), TARGET, seed=4)
    path = tmp_path / "target.tif"
    tifffile.imwrite(path, volume)
    return path


def test_info_describes_the_demo_model(capsys):
    assert main(["info", "demo"]) == 0
    out = capsys.readouterr().out
    assert "14× BatchNorm2d" in out and "adaptable BN:   14" in out
    assert main(["info", "--model", "demo"]) == 0  # as every other command names it
    assert capsys.readouterr().out == out
    for both_or_none in (["info"], ["info", "demo", "--model", "demo"]):
        with pytest.raises(SystemExit) as exit_:
            main(both_or_none)
        assert exit_.value.code == 2


def test_predict_writes_a_mask_with_the_input_shape(tmp_path, target_tif):
    out, probs = tmp_path / "mask.tif", tmp_path / "prob.tif"
    assert main(["predict", "--model", "demo", "--input", str(target_tif), "--out", str(out),
                 "--probabilities", str(probs), "--device", "cpu"]) == 0  # fmt: skip
    mask = tifffile.imread(out)
    assert mask.shape == (3, 64, 64) and mask.dtype == np.uint8
    assert tifffile.imread(probs).dtype == np.float32


def test_predicted_masks_keep_the_image_voxel_size(tmp_path):
    """A mask without the image's voxel size did not overlay it in napari (scale 1 against
    50×4.6×4.6 nm): the mask and the probabilities carry it, with --no-rescale too."""
    from napari_bnadapt.io.images import write_tiff
    from napari_bnadapt.io.volumes import read_volume

    volume, _ = make_volume((3, 64, 64), TARGET, seed=4)
    write_tiff(tmp_path / "em.tif", volume, (50.0, 4.6, 4.6), "nm")
    for extra in ([], ["--no-rescale"]):
        out, probs = tmp_path / "mask.tif", tmp_path / "prob.tif"
        assert main(["predict", "--model", "demo", "--input", str(tmp_path / "em.tif"),
                     "--out", str(out), "--probabilities", str(probs), *extra]) == 0  # fmt: skip
        for path in (out, probs):
            assert read_volume(path).voxel_size == pytest.approx((50.0, 4.6, 4.6)), extra
        assert read_volume(out).labels


def test_predict_on_a_folder_writes_one_mask_per_image(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    images, _ = make_dataset(2, (48, 40), SOURCE, seed=0)
    tifffile.imwrite(folder / "a.tif", images[0])
    Image.fromarray(images[1]).save(folder / "b.png")
    assert (
        main(
            ["predict", "--model", "demo", "--input", str(folder), "--out", str(tmp_path / "masks")]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.tif", "b.tif"]
    assert tifffile.imread(tmp_path / "masks" / "b.tif").shape == (48, 40)


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: p.write_bytes(b"II*\x00 truncated"), "truncated or corrupt"),
        (lambda p: p.write_bytes(b"\x89PNG broken"), "could not be read"),
        (
            lambda p: tifffile.imwrite(
                p, np.zeros((2, 3, 4, 16, 16), np.uint8), photometric="minisblack"
            ),
            "spatial axes",
        ),
        (lambda p: tifffile.imwrite(p, np.full((16, 16), np.nan, np.float32)), "NaN"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, make_input, message):
    bad = tmp_path / "bad.tif"
    make_input(bad)
    out = tmp_path / "mask.tif"
    assert main(["predict", "--model", "demo", "--input", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".mask.tif*"))


def test_not_a_model_exits_2(tmp_path, target_tif, capsys):
    fake = tmp_path / "fake.pt"
    fake.write_text("hello")
    assert (
        main(
            [
                "predict",
                "--model",
                str(fake),
                "--input",
                str(target_tif),
                "--out",
                str(tmp_path / "m.tif"),
            ]
        )
        == 2
    )
    assert "fake.pt" in capsys.readouterr().err


def test_unknown_device_exits_2(tmp_path, target_tif, capsys):
    code = main(
        [
            "predict",
            "--model",
            "demo",
            "--input",
            str(target_tif),
            "--out",
            str(tmp_path / "m.tif"),
            "--device",
            "cuda:3",
        ]
    )
    assert code == 2 and "not available" in capsys.readouterr().err


def test_train_then_predict(tmp_path):
    images, masks = make_dataset(4, (48, 48), SOURCE, seed=1)
    tifffile.imwrite(tmp_path / "img.tif", images)
    tifffile.imwrite(tmp_path / "lbl.tif", masks * 255)
    model_path = tmp_path / "model.pt"
    assert main(["train", "--images", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lbl.tif"),
                 "--out", str(model_path), "--steps", "4", "--seed", "1", "--device", "cpu",
                 "--patch-size", "32", "--base-channels", "4", "--depth", "2"]) == 0  # fmt: skip
    model = load_model(model_path)
    assert model.config.base_channels == 4 and model.metadata["training"]["steps"] == 4


def test_adapt_then_reset(tmp_path, target_tif, capsys):
    adapted, restored = tmp_path / "adapted.pt", tmp_path / "restored.pt"
    assert main(["adapt", "--model", "demo", "--target", str(target_tif), "--out", str(adapted),
                 "--patches", "8", "--seed", "3", "--device", "cpu"]) == 0  # fmt: skip
    model = load_model(adapted)
    assert model.state == "adapted" and model.adaptation.target == "target.tif"
    assert model.adaptation.patches <= 8 and model.adaptation.config["seed"] == 3
    assert main(["adapt", "--reset", "--model", str(adapted), "--out", str(restored)]) == 0
    source = load_model("demo")
    restored_model = load_model(restored)
    assert restored_model.state == "source"
    for key, value in source.module.state_dict().items():
        assert (value == restored_model.module.state_dict()[key]).all(), key
    said = capsys.readouterr()
    assert "source statistics restored" in said.out
    assert "] \n" not in said.err  # no progress line without words
    # A model never adapted: the copy is the model as it was, and said so (not "restored").
    assert main(["adapt", "--reset", "--model", "demo", "--out", str(tmp_path / "r.pt")]) == 0
    assert "demo was not adapted, so it is unchanged" in capsys.readouterr().out
    # A folder as --out: the example named is a model file, not a mask.
    assert main(["adapt", "--reset", "--model", "demo", "--out", str(tmp_path)]) == 2
    assert repr(str(tmp_path / "adapted.pt")) in capsys.readouterr().err


def test_how_far_the_statistics_still_move_is_read_for_the_user():
    from napari_bnadapt.cli.commands import settling

    assert settling(0.01, 64).endswith("settled (more --patches would change little)")
    assert settling(0.2, 64).endswith("still moving; --patches 128 would steady them")


def test_demo_prints_dice_and_writes_outputs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "before" in out and "adapted" in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["dice_target_after"] > summary["dice_target_before"] + 0.5
    mask = tifffile.imread(tmp_path / "demo" / "target_mask_adapted.tif")
    # The target and its truth too: what adapt --target / --strokes and report --labels take.
    for name in ("target.tif", "target_truth.tif"):
        assert tifffile.imread(tmp_path / "demo" / name).shape == mask.shape, name


def test_every_option_of_every_command_has_help():
    from napari_bnadapt.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "==SUPPRESS==" and a.choices)
    for name, command in commands.choices.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"bnadapt {name} {action.option_strings or action.dest}"


def test_help_shows_the_config_defaults(capsys):
    from napari_bnadapt.adapt import AdaptConfig

    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {AdaptConfig().patches})" in text and "(default: standard)" in text


@pytest.mark.parametrize(
    "command, option, value, words",
    [
        ("train", "--depth", "0", "depth"),
        ("train", "--patch-size", "7", "multiple of 8"),
        ("train", "--steps", "-1", "steps"),
        ("train", "--batch-size", "0", "batch size"),
        ("predict", "--threshold", "2", "threshold"),
        ("predict", "--tile", "0", "tile"),
        ("predict", "--batch-size", "0", "batch size"),
        ("adapt", "--alpha", "1.5", "alpha"),
        ("adapt", "--patches", "0", "patches"),
    ],
)
def test_bad_option_values_get_one_line_and_exit_code_2(
    tmp_path, target_tif, capsys, command, option, value, words
):
    files = {
        "train": ["--images", str(target_tif), "--labels", str(target_tif)],
        "predict": ["--model", "demo", "--input", str(target_tif)],
        "adapt": ["--model", "demo", "--target", str(target_tif)],
    }[command]
    out = tmp_path / ("out.tif" if command == "predict" else "out.pt")
    assert main([command, *files, "--out", str(out), option, value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bnadapt: error:") and words in err and "\n" not in err
    assert not out.exists()


def test_an_output_named_as_another_format_is_refused(tmp_path, target_tif, capsys):
    """A model under an image's name, a TIFF mask under .png: one line, nothing written."""
    for args, words in (
        (["adapt", "--model", "demo", "--target", str(target_tif), "--out", "a.tif"],
         "a model is written there"),
        (["predict", "--model", "demo", "--input", str(target_tif), "--out", "m.png"],
         "masks are written as TIFF"),
    ):  # fmt: skip
        args[-1] = str(tmp_path / args[-1])
        assert main(args) == 2
        assert words in capsys.readouterr().err and not (tmp_path / args[-1]).exists()


def test_adapt_with_a_cure_records_it_and_predict_applies_it(tmp_path, capsys):
    from napari_bnadapt.io.images import write_tiff
    from napari_bnadapt.synthetic import SHIFTS

    volume, truth = make_volume((3, 96, 96), SHIFTS["gamma"], seed=4)
    write_tiff(tmp_path / "gamma.tif", volume, (50.0, 5.0, 5.0), "nm")
    adapted = tmp_path / "cured.pt"
    assert main(["adapt", "--model", "demo", "--target", str(tmp_path / "gamma.tif"),
                 "--out", str(adapted), "--cure", "histogram+adabn", "--patches", "8",
                 "--device", "cpu"]) == 0  # fmt: skip
    assert "histogram+adabn after histogram matched" in capsys.readouterr().out
    model = load_model(adapted)
    assert model.adaptation.cure == "histogram+adabn" and model.adaptation.voxel_size == (
        50.0, 5.0, 5.0,
    )  # fmt: skip
    assert model.adaptation.zoom is None  # 5 nm pixels, as the demo model was trained at
    out = tmp_path / "mask.tif"
    assert main(["predict", "--model", str(adapted), "--input", str(tmp_path / "gamma.tif"),
                 "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    from napari_bnadapt.arrays.metrics import dice

    assert dice(tifffile.imread(out), truth) > 0.9


def test_voxel_size_option_resamples_and_no_rescale_turns_it_off(tmp_path):
    source_tif = tmp_path / "source.tif"
    tifffile.imwrite(source_tif, make_volume((3, 64, 64), SOURCE, seed=4)[0])
    masks = {}
    for name, extra in (("meta", []), ("given", ["--voxel-size", "10"]),
                        ("off", ["--voxel-size", "10", "--no-rescale"])):  # fmt: skip
        out = tmp_path / f"{name}.tif"
        assert main(["predict", "--model", "demo", "--input", str(source_tif), "--out", str(out),
                     "--device", "cpu", *extra]) == 0  # fmt: skip
        masks[name] = tifffile.imread(out)
    assert masks["given"].shape == masks["meta"].shape == (3, 64, 64)
    assert np.array_equal(masks["off"], masks["meta"])  # no metadata: no resampling either
    assert not np.array_equal(masks["given"], masks["meta"])  # 10 nm → the model's 5 nm


def test_bad_cures_and_voxel_sizes_are_one_line_errors(tmp_path, target_tif, capsys):
    common = ["--model", "demo", "--target", str(target_tif), "--out", str(tmp_path / "a.pt")]
    with pytest.raises(SystemExit) as exit_info:
        main(["adapt", *common, "--cure", "magic"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert main(["adapt", *common, "--voxel-size", "5,abc"]) == 2
    assert "--voxel-size" in capsys.readouterr().err
    assert main(["adapt", *common, "--voxel-size", "1,2,3,4"]) == 2
    assert "one size per spatial axis" in capsys.readouterr().err
    assert not (tmp_path / "a.pt").exists()


@pytest.fixture
def target_h5(tmp_path):
    import h5py

    volume, _ = make_volume((3, 64, 64), TARGET, seed=4)
    path = tmp_path / "target.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("raw", data=volume, chunks=(1, 32, 32)).attrs["resolution"] = [
            5,
            5,
            5,
        ]
        handle["labels"] = np.zeros_like(volume)
    return path


def test_predict_streams_a_container_into_ome_zarr(tmp_path, target_h5, target_tif, capsys):
    from napari_bnadapt.io.volumes import read_volume

    out = tmp_path / "mask.zarr"
    assert main(["predict", "--model", "demo", "--input", str(target_h5), "--key", "raw",
                 "--out", str(out), "--block", "2,64,64", "--device", "cpu"]) == 0  # fmt: skip
    assert "in 2 blocks" in capsys.readouterr().out
    assert main(["predict", "--model", "demo", "--input", str(target_tif), "--out",
                 str(tmp_path / "mask.tif"), "--device", "cpu"]) == 0  # fmt: skip
    streamed = read_volume(out)
    assert streamed.voxel_size == (5.0, 5.0, 5.0)
    np.testing.assert_array_equal(np.asarray(streamed.data), tifffile.imread(tmp_path / "mask.tif"))


def test_predict_streams_an_input_at_another_voxel_size_as_in_memory(tmp_path, target_h5):
    """Resampled to the model's voxel size block by block, and back: the mask the TIFF
    path (the whole volume resampled in memory) writes."""
    from napari_bnadapt.io.volumes import read_volume

    base = ["predict", "--model", "demo", "--input", str(target_h5), "--key", "raw",
            "--device", "cpu", "--voxel-size", "10,7,8"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "m.zarr"), "--block", "2,40,40"]) == 0
    assert main([*base, "--out", str(tmp_path / "m.tif")]) == 0
    np.testing.assert_array_equal(
        np.asarray(read_volume(tmp_path / "m.zarr").data), tifffile.imread(tmp_path / "m.tif")
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "several arrays (labels, raw): choose one with --key, e.g. --key raw"),
        (["--key", "raw", "--block", "0"], "--block '0'"),
        (["--key", "raw", "--workers", "2", "--scheduler", "tcp://x:1"], "not both"),
    ],
)
def test_streaming_mistakes_exit_2_with_one_line(tmp_path, target_h5, capsys, extra, message):
    out = tmp_path / "mask.zarr"
    args = ["predict", "--model", "demo", "--input", str(target_h5), "--out", str(out)]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and not (tmp_path / "mask.zarr.partial").exists()


def test_tiff_output_refuses_cluster_options(tmp_path, target_tif, capsys):
    args = ["predict", "--model", "demo", "--input", str(target_tif), "--out",
            str(tmp_path / "m.tif"), "--workers", "2"]  # fmt: skip
    assert main(args) == 2 and "--out mask.zarr" in capsys.readouterr().err


def test_gui_with_a_missing_file_or_model_exits_2_before_napari_opens(tmp_path, capsys):
    assert main(["gui", str(tmp_path / "missing.tif")]) == 2
    assert "missing.tif not found" in capsys.readouterr().err
    (tmp_path / "stack.tif").write_bytes(b"")
    assert main(["gui", str(tmp_path / "stack.tif"), "--model", str(tmp_path / "no.pt")]) == 2
    assert "no.pt" in capsys.readouterr().err


def test_flat_memory_sets_the_allocator_only_when_asked(tmp_path, target_h5, monkeypatch):
    from napari_bnadapt.cli import streaming

    calls = []
    monkeypatch.setattr(streaming, "serve_large_buffers_from_mmap", lambda: calls.append(1))
    base = ["predict", "--model", "demo", "--input", str(target_h5), "--key", "raw",
            "--device", "cpu"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "a.zarr")]) == 0 and calls == []
    assert main([*base, "--out", str(tmp_path / "b.zarr"), "--flat-memory"]) == 0 and calls == [1]


def test_the_scale_of_the_input_is_said(tmp_path, target_tif, capsys):
    from napari_bnadapt.io.images import write_tiff

    run = ["predict", "--model", "demo", "--out", str(tmp_path / "m.tif"), "--device", "cpu"]
    assert main([*run, "--input", str(target_tif)]) == 0
    err = capsys.readouterr().err
    assert "no voxel size" in err and "5×5 nm" in err and "--voxel-size" in err
    write_tiff(tmp_path / "fine.tif", tifffile.imread(target_tif), (50.0, 2.5, 2.5), "nm")
    assert main([*run, "--input", str(tmp_path / "fine.tif")]) == 0
    err = capsys.readouterr().err
    assert "(2.5×2.5 nm in plane) is resampled to the model's 5×5 nm" in err
    assert main([*run, "--input", str(tmp_path / "fine.tif"), "--no-rescale"]) == 0
    assert capsys.readouterr().err == ""


def test_info_credits_the_bundled_model_s_training_data(capsys):
    assert main(["info", "membranes-fibsem"]) == 0
    out = capsys.readouterr().out
    assert "CC BY 4.0" in out and "NeuroProof" in out and "licence:" in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["adapt", "--model", "demo", "--target", "t.tif", "--out", "a.pt", "--patchs", "10"],
         "bnadapt adapt: error: unrecognized option --patchs: did you mean --patches?"),
        # The issue's own example: the misspelling is said although --model is missing too.
        (["adapt", "--patchs", "10"],
         "bnadapt adapt: error: unrecognized option --patchs: did you mean --patches?"),
        (["predict", "--model", "demo", "--input", "x", "--out", "y", "--tile=256",
          "--thresh", "abc"],
         "bnadapt predict: error: argument --threshold"),  # a prefix is no mistake
        (["predict", "--model", "demo", "--input", "x", "--out", "y", "--tile", "abc"],
         "bnadapt predict: error: argument --tile"),
        (["adapt", "--model", "demo", "--target", "t", "--out", "a.pt", "--alpha", "nan"],
         "'nan' is not a finite number"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_from_the_command_they_belong_to(capsys, argv, said):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and said in err, err


def test_help_answers_before_torch_loads():
    """``bnadapt --help`` and a command's help read no network library (issue 21: 3.5 s
    when torch loaded first)."""
    code = (
        "import sys\n"
        "from napari_bnadapt.cli import main\n"
        "for argv in (['--help'], ['adapt', '--help'], ['predict', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'scipy', 'matplotlib', 'zarr') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--patches" in done.stdout and "--precision" in done.stdout


def test_progress_prints_about_twenty_lines_however_many_steps_it_counts(capsys):
    """A log or a pipe gets a line per 5 % and per change of work, not one per counted step
    ("step 57/200" changes at every step)."""
    from napari_bnadapt.cli.common import printer
    from napari_bnadapt.jobs import Progress

    show = printer()
    show(Progress(0, 200, ""))  # a job's first tick says nothing: no empty line
    for i in range(1, 201):
        show(Progress(i, 200, f"learning from strokes, step {i}/200"))
    lines = capsys.readouterr().err.splitlines()
    assert 15 <= len(lines) <= 22 and lines[-1].endswith("step 200/200")


def test_a_label_image_given_as_the_image_is_pointed_out(tmp_path, capsys):
    """A walkthrough segmented a membrane mask ("foreground 100 %") with no hint."""
    _, truth = make_volume((2, 48, 48), TARGET, seed=4)
    tifffile.imwrite(tmp_path / "truth.tif", truth.astype(np.uint8))
    out = tmp_path / "mask.tif"
    assert main(["predict", "--model", "demo", "--input", str(tmp_path / "truth.tif"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert "looks like labels" in capsys.readouterr().err
    volume, _ = make_volume((2, 48, 48), TARGET, seed=4)
    tifffile.imwrite(tmp_path / "em.tif", volume)
    assert main(["predict", "--model", "demo", "--input", str(tmp_path / "em.tif"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert "looks like labels" not in capsys.readouterr().err
