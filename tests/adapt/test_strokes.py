"""The stroke cure: its contract (labels, shapes, classes), what it learns, its guard, its
record, its reset, its cancel, resampling, 2D/3D and multi-class models, the CLI."""

import numpy as np
import pytest
import torch

from napari_bnadapt.adapt import AdaptConfig, adapt, reset
from napari_bnadapt.adapt.stroke_training import (
    HeldOutScore,
    StrokeBatch,
    held_out_score,
)
from napari_bnadapt.adapt.stroke_verdict import stroke_verdict
from napari_bnadapt.adapt.strokes import (
    BACKGROUND,
    FOREGROUND,
    brush_width,
    split_blocks,
    split_strokes,
)
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.cli import main
from napari_bnadapt.errors import CancelledError, InputDataError
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.images import read_image, write_tiff
from napari_bnadapt.model import load_model, save_model
from napari_bnadapt.model.loaded import wrap_unet
from napari_bnadapt.model.unet import UNet, UNetConfig
from napari_bnadapt.synthetic import SHIFTS, make_volume

CPU = {"device": "cpu"}
SHAPE = (3, 96, 96)
QUICK = AdaptConfig(cure="adabn+strokes", stroke_steps=3, **CPU)


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def paint(truth: np.ndarray, count: int = 40, slices=(1,), seed: int = 0) -> np.ndarray:
    """Dots of 3×3 pixels on the truth's classes (1 = background, 2 = foreground)."""
    rng = np.random.default_rng(seed)
    strokes = np.zeros(truth.shape, np.uint8)
    for z in slices:
        for label, where in ((FOREGROUND, truth[z] > 0), (BACKGROUND, truth[z] == 0)):
            inner = where.copy()
            inner[[0, -1]] = inner[:, [0, -1]] = False
            points = np.argwhere(inner)
            for y, x in points[rng.choice(len(points), count // 2, replace=False)]:
                strokes[z, y - 1 : y + 2, x - 1 : x + 2][where[y - 1 : y + 2, x - 1 : x + 2]] = (
                    label
                )
    return strokes


@pytest.fixture(scope="module")
def demo():
    return load_model("demo")


@pytest.fixture(scope="module")
def shifted():
    return make_volume(SHAPE, SHIFTS["brightness"], seed=5)


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s[:, :50], "shape"),
        (lambda s: np.where(s == 2, 5, s), "stroke labels must be 0"),
        (lambda s: np.where(s == 2, 0, s), "no foreground strokes"),
        (lambda s: np.zeros_like(s), "no background and no foreground"),
        (lambda s: s.astype(np.float32) + 0.5, "non-integer"),
    ],
)
def test_strokes_that_do_not_fit_say_what_to_do_in_one_line(demo, shifted, change, expected):
    volume, truth = shifted
    with pytest.raises(InputDataError) as error:
        adapt(demo, volume, QUICK, strokes=change(paint(truth)))
    assert expected in one_line(error)


def test_the_cure_and_the_strokes_must_go_together(demo, shifted):
    volume, truth = shifted
    with pytest.raises(InputDataError, match="learns from painted strokes"):
        adapt(demo, volume, QUICK)
    with pytest.raises(InputDataError, match="label-free"):
        adapt(demo, volume, AdaptConfig(**CPU), strokes=paint(truth))
    with pytest.raises(InputDataError, match="single target"):
        adapt(demo, [volume[0], volume[1]], QUICK, strokes=paint(truth)[:2])
    with pytest.raises(InputDataError, match="stroke parameters"):
        AdaptConfig(cure="strokes", stroke_parameters="encoder")


@pytest.mark.slow
def test_strokes_repair_what_adabn_cannot_and_reset_is_bit_exact(demo, tmp_path):
    # Inverted contrast: AdaBN alone keeps the wrong polarity; strokes on one slice say
    # which structures are foreground. The label-free model is wrong everywhere, so its
    # anchor is weakened (the default, 3, is for strokes that correct a mostly right mask).
    volume, truth = make_volume(SHAPE, SHIFTS["inverted"], seed=5)
    source = state(demo)
    adabn = dice(predict(adapt(demo, volume, AdaptConfig(**CPU)).model, volume).mask, truth)
    config = AdaptConfig(cure="adabn+strokes", stroke_steps=30, stroke_consistency=0.3, **CPU)
    result = adapt(demo, volume, config, strokes=paint(truth, 60))
    cured = dice(predict(result.model, volume, PredictConfig(**CPU)).mask, truth)
    assert cured > adabn + 0.3, (adabn, cured)
    details = result.record.details["strokes"]
    assert details["guard"]["kept"] and result.record.cure == "adabn+strokes"
    assert details["slices"] == [1] and details["labelled_pixels"] == int(
        (paint(truth, 60) > 0).sum()
    )
    assert details["held_out_after"]["accuracy"] > details["held_out_before"]["accuracy"]
    cells = details["cells"]  # counted on the painted slice, before and after (2D model)
    assert cells["label_free"] >= 0 and cells["taught"] >= 0
    assert 0 < details["steps"] <= 30 and details["seconds"] > 0
    assert same(state(demo), source)  # the user's model never changes
    save_model(result.model, tmp_path / "cured.pt")
    for again in (result.model, load_model(tmp_path / "cured.pt")):
        reset(again)
        assert again.adaptation is None and same(state(again), source)


def test_the_guard_undoes_training_that_makes_held_out_strokes_worse(demo, shifted):
    volume, truth = shifted
    adabn = adapt(demo, volume, AdaptConfig(**CPU)).model
    # A step size ten thousand times too large wrecks the network at the first step.
    config = AdaptConfig(cure="adabn+strokes", stroke_steps=2, stroke_learning_rate=10.0, **CPU)
    result = adapt(demo, volume, config, strokes=paint(truth))
    assert result.record.details["strokes"]["guard"]["kept"] is False
    assert result.model.source_weights is None
    assert same(state(result.model), state(adabn))
    assert result.model.strokes is not None  # painted all the same: kept to paint more on


def test_cancel_leaves_the_model_as_it_was(demo, shifted):
    volume, truth = shifted
    source = state(demo)
    seen = []

    def stop() -> bool:
        return any("strokes" in step.message for step in seen)

    with pytest.raises(CancelledError):
        adapt(demo, volume, QUICK, strokes=paint(truth), progress=seen.append, should_stop=stop)
    assert same(state(demo), source) and demo.adaptation is None


def test_progress_rises_once_to_the_end(demo, shifted):
    volume, truth = shifted
    steps = []
    adapt(demo, volume, AdaptConfig(cure="strokes", stroke_steps=3, **CPU),
          strokes=paint(truth), progress=steps.append)  # fmt: skip
    done = [s.done for s in steps]
    assert done == sorted(done) and len({s.total for s in steps}) == 1
    assert done[-1] == steps[-1].total


def test_strokes_are_resampled_with_the_target(demo, shifted):
    volume, truth = shifted
    # Pixels twice the model's size: the target (and the strokes) are zoomed ×2.
    size = tuple(2 * v for v in demo.voxel_size)
    strokes = paint(truth)
    details = adapt(demo, volume, QUICK, strokes=strokes, voxel_size=(50.0, *size)).record.details
    scaled = details["strokes"]["labelled_pixels_at_model_scale"]
    assert scaled == pytest.approx(4 * details["strokes"]["labelled_pixels"], rel=0.05)


def test_the_brush_is_one_model_pixel_wide_on_the_target(demo):
    shape, size = (3, 96, 96), demo.voxel_size
    assert brush_width(demo, shape, None) == 1  # no voxel size: no resampling
    assert brush_width(demo, shape, (50.0, *size)) == 1
    assert brush_width(demo, shape, (50.0, *(v / 2 for v in size))) == 2  # shrunk ×0.5
    assert brush_width(demo, shape, (50.0, *(v / 3 for v in size))) == 3
    assert brush_width(demo, shape, (50.0, *(2 * v for v in size))) == 1  # zoomed ×2


def test_held_out_blocks_leave_every_class_something_to_learn():
    labels = np.zeros((1, 64, 64), np.uint8)
    labels[0, 5, :] = FOREGROUND  # four blocks of 16 px: one held out
    labels[0, 40, 3:12] = BACKGROUND  # one block of 16 px: split into blocks of 8
    labels[0, 60, 60] = 3  # a single pixel: nothing to hold out
    held = split_blocks(labels, 3, 2, seed=0)
    assert held[labels == FOREGROUND].sum() == 16
    assert 0 < held[labels == BACKGROUND].sum() < 9
    assert not held[labels == 3].any()


def test_whole_strokes_are_held_out_when_a_class_has_several():
    labels = np.zeros((2, 64, 64), np.uint8)
    for row in (5, 20, 35, 50):  # four foreground strokes: one held out, whole
        labels[0, row, 10:40] = FOREGROUND
    labels[1, 20, 10:40] = FOREGROUND  # another slice: a stroke of its own (2D model)
    labels[0, 60, 3:12] = BACKGROUND  # a single background stroke: blocks of it
    held = split_strokes(labels, 2, 2, seed=0)
    painted = [labels[z, r, 10:40] for z, r in ((0, 5), (0, 20), (0, 35), (0, 50), (1, 20))]
    whole = [held[z, r, 10:40].all() for z, r in ((0, 5), (0, 20), (0, 35), (0, 50), (1, 20))]
    none = [not held[z, r, 10:40].any() for z, r in ((0, 5), (0, 20), (0, 35), (0, 50), (1, 20))]
    assert all(p.all() for p in painted)
    assert sum(whole) == 1 and sum(none) == 4  # round(0.25 × 5) strokes, each whole or not
    assert 0 < held[labels == BACKGROUND].sum() < 9


def test_a_stroke_that_holds_nearly_all_its_class_lends_blocks():
    """A region filled, or a whole membrane network, beside a few specks: holding out a
    speck judged the class on a few pixels (22 of 34,363 on the real pair). The big stroke
    lends blocks instead, about a quarter of the class."""
    labels = np.zeros((1, 96, 96), np.uint8)
    labels[0, 4:92, 4:92] = BACKGROUND  # a region filled with the bucket
    labels[0, 94, 0:3] = labels[0, 0, 94:96] = BACKGROUND  # two specks
    for row in (20, 40, 60):  # foreground strokes of equal length: whole strokes
        labels[0, row, 10:40] = FOREGROUND
    held = split_strokes(labels, 2, 2, seed=0)
    share = held[labels == BACKGROUND].mean()
    assert 0.1 < share < 0.5, share
    assert sum(held[0, r, 10:40].all() for r in (20, 40, 60)) == 1


def test_a_3d_model_learns_from_strokes_on_a_few_slices(small_model_3d):
    volume, truth = make_volume((16, 32, 32), SHIFTS["brightness"], seed=2)
    config = AdaptConfig(cure="adabn+strokes", stroke_steps=2, patches=4, **CPU)
    result = adapt(small_model_3d, volume, config, strokes=paint(truth, 20, slices=(3, 9)))
    details = result.record.details["strokes"]
    assert details["slices"] == [3, 9] and details["patch_size"] == [
        16,
        32,
        32,
    ]  # clipped to the volume
    reset(result.model)
    assert same(state(result.model), state(small_model_3d))


def test_a_multiclass_model_takes_class_index_plus_one():
    torch.manual_seed(0)
    unet = UNet(UNetConfig(dims=2, depth=2, base_channels=4, out_channels=3)).eval()
    model = wrap_unet(unet, NormalizationSpec(mode="fixed", mean=100.0, std=40.0))
    volume, truth = make_volume((2, 64, 64), SHIFTS["brightness"], seed=2)
    strokes = paint(truth, 20)
    strokes[1, 30:33, 30:33] = 3  # "class 2"
    config = AdaptConfig(cure="strokes", stroke_steps=2, **CPU)
    details = adapt(model, volume, config, strokes=strokes).record.details["strokes"]
    assert details["pixels_per_class"]["class 2"] == 9
    with pytest.raises(InputDataError, match="3 = class 2"):
        adapt(model, volume, config, strokes=np.where(strokes == 3, 4, strokes))


def test_cli_adapts_with_strokes_and_says_what_they_did(demo, shifted, tmp_path, capsys):
    volume, truth = shifted
    save_model(demo, tmp_path / "m.pt")
    write_tiff(tmp_path / "t.tif", volume)
    write_tiff(tmp_path / "s.tif", paint(truth))
    common = ["adapt", "--model", str(tmp_path / "m.pt"), "--target", str(tmp_path / "t.tif")]
    common += ["--out", str(tmp_path / "a.pt"), "--device", "cpu", "--stroke-steps", "2"]
    assert main([*common, "--cure", "adabn+strokes", "--strokes", str(tmp_path / "s.tif")]) == 0
    out = capsys.readouterr().out
    record = load_model(tmp_path / "a.pt").adaptation
    # The napari message's words: the held-back strokes, kept or undone and why.
    assert f"strokes: {record.details['strokes']['strokes']} strokes," in out
    assert stroke_verdict(record.details["strokes"]) in out and "held-back strokes" in out
    assert record.cure == "adabn+strokes"
    assert record.details["strokes"]["from"] == str(
        tmp_path / "s.tif"
    )  # the saved record names them
    assert main([*common, "--cure", "strokes", "--force"]) == 2  # a.pt is taught: --force
    assert "--strokes strokes.tif" in capsys.readouterr().err


class FixedLogits(torch.nn.Module):
    """A 'network' whose logits are given, whatever its input."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(x)]


def test_a_network_that_predicts_one_class_everywhere_is_never_kept(demo):
    # Strokes painted where the label-free model is wrong: it scores 0 on the held-out
    # strokes; a network collapsed to background scores 0.5 there, yet learnt nothing.
    labels = torch.zeros((1, 32, 32), dtype=torch.long)
    labels[0, 2, 2:30] = FOREGROUND
    labels[0, 20, 2:30] = BACKGROUND
    labels[0, 10, 2:30] = FOREGROUND
    labels[0, 28, 2:30] = BACKGROUND
    held = torch.zeros_like(labels, dtype=torch.bool)
    held[0, 10], held[0, 28] = True, True
    held &= labels > 0
    batch = StrokeBatch(torch.zeros((1, 1, 32, 32)), labels, held, torch.zeros((1, 1, 32, 32)))

    def score(logits: torch.Tensor) -> HeldOutScore:
        return held_out_score(FixedLogits(logits[None, None]), batch, demo, torch.device("cpu"))

    wrong = torch.where(labels[0] == FOREGROUND, -5.0, 5.0)
    collapsed = torch.full((32, 32), -5.0)
    learnt = -wrong
    label_free, one_class, right = score(wrong), score(collapsed), score(learnt)
    assert label_free.accuracy == 0.0 and one_class.accuracy == 0.5 and right.accuracy == 1.0
    assert one_class.taught == 0.0 and right.taught == 1.0
    assert not one_class.better_than(label_free)
    assert right.better_than(label_free) and right.better_than(one_class)


def test_the_taught_model_keeps_its_strokes_for_the_next_round(demo, shifted, tmp_path, capsys):
    """Strokes are saved with the model (``bnadapt strokes`` writes them back as a labels
    TIFF to paint more on); a label-free cure on a taught model leaves none behind."""
    volume, truth = shifted
    painted = paint(truth)
    taught = adapt(demo, volume, QUICK, strokes=painted, target_name="t.tif").model
    assert taught.strokes.target == "t.tif" and demo.strokes is None
    np.testing.assert_array_equal(taught.strokes.to_array(), painted)
    assert adapt(taught, volume, AdaptConfig(**CPU)).model.strokes is None
    save_model(taught, tmp_path / "taught.pt")
    out = tmp_path / "strokes.tif"
    assert main(["strokes", "--model", str(tmp_path / "taught.pt"), "--out", str(out)]) == 0
    assert "labelled pixels painted on t.tif (3×96×96)" in capsys.readouterr().out
    again = read_image(out)
    np.testing.assert_array_equal(again, painted)
    assert main(["strokes", "--model", "demo", "--out", str(tmp_path / "none.tif")]) == 2
    assert "carries no strokes" in capsys.readouterr().err
    assert not (tmp_path / "none.tif").exists()
    # Strokes are annotations: an existing file (an image, strokes painted since) is kept.
    write_tiff(out, np.ones_like(painted))
    again = ["strokes", "--model", str(tmp_path / "taught.pt"), "--out", str(out)]
    assert main(again) == 2 and "add --force" in capsys.readouterr().err
    np.testing.assert_array_equal(read_image(out), np.ones_like(painted))
    assert main([*again, "--force"]) == 0
    np.testing.assert_array_equal(read_image(out), painted)
    png = ["strokes", "--model", str(tmp_path / "taught.pt"), "--out", str(tmp_path / "s.png")]
    assert main(png) == 2 and "ending in .tif" in capsys.readouterr().err
    # Reset writes the source; the taught file keeps its strokes, and the message says so.
    reset = ["adapt", "--reset", "--model", str(tmp_path / "taught.pt")]
    assert main([*reset, "--out", str(tmp_path / "source.pt")]) == 0
    assert "are not in" in capsys.readouterr().out
    assert load_model(tmp_path / "source.pt").strokes is None
    assert load_model(tmp_path / "taught.pt").strokes is not None
    # A taught model is not replaced by another's output (its strokes may be nowhere
    # else), unless --force; a model without strokes is replaced as any output.
    copy = tmp_path / "copy.pt"
    copy.write_bytes((tmp_path / "taught.pt").read_bytes())
    assert main([*reset, "--out", str(copy)]) == 2
    assert "taught with painted strokes" in capsys.readouterr().err
    assert load_model(copy).strokes is not None
    assert main([*reset, "--out", str(copy), "--force"]) == 0
    assert load_model(copy).strokes is None
    assert main([*reset, "--out", str(copy)]) == 0


def test_a_kept_run_records_the_cells_of_its_painted_slices(demo, shifted, monkeypatch):
    """Strokes that open membranes merge cells, which the held-out strokes do not see: a
    kept run of a 2D model counts the cells of its painted slices before and after, and
    one whose cells merged is undone (bit for bit the label-free network)."""
    from napari_bnadapt.adapt import stroke_cure, stroke_training
    from napari_bnadapt.diagnostics.quality import cells_per_slice

    monkeypatch.setattr(stroke_training.HeldOutScore, "better_than", lambda *_: True)
    monkeypatch.setattr(stroke_cure, "cells_merged", lambda *_: False)
    volume, truth = shifted
    result = adapt(demo, volume, QUICK, strokes=paint(truth))
    details = result.record.details["strokes"]
    cells = details["cells"]
    taught = predict(result.model, volume[1], PredictConfig(**CPU)).mask
    assert details["guard"]["kept"] and cells["label_free"] >= 0
    assert cells["taught"] == pytest.approx(cells_per_slice(taught), abs=3)
    monkeypatch.setattr(stroke_cure, "cells_merged", lambda *_: True)
    merged = adapt(demo, volume, QUICK, strokes=paint(truth))
    guard = merged.record.details["strokes"]["guard"]
    assert guard["merged"] and not guard["kept"] and merged.record.undone == "strokes"
    label_free = adapt(demo, volume, AdaptConfig(**CPU)).model
    assert same(state(merged.model), state(label_free)) and merged.model.source_weights is None
    monkeypatch.setattr(stroke_training.HeldOutScore, "better_than", lambda *_: False)
    undone = adapt(demo, volume, QUICK, strokes=paint(truth)).record.details["strokes"]
    assert "cells" not in undone  # the label-free network: nothing to compare
