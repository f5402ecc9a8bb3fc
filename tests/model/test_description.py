import pytest
import torch
from torch import nn

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.model import LoadedModel
from napari_bnadapt.model.description import describe
from napari_bnadapt.model.record import AdaptationRecord


def _wrap(module: nn.Module) -> LoadedModel:
    return LoadedModel(module, 2, 1, 1, NormalizationSpec(mode="none"), source_stats={})


def test_describe_lists_dims_channels_parameters_and_layers(small_model_2d):
    description = describe(small_model_2d)
    text = description.to_text()
    assert description.dims == 2 and description.in_channels == 1
    assert description.adaptable_layers == 10
    assert "encoder.0.bn1" in text and "BatchNorm2d" in text and "can be re-estimated" in text
    assert f"{description.parameters:,}" in text


def test_groupnorm_only_model_says_nothing_to_adapt():
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4), nn.Conv2d(4, 1, 1)
    )
    description = describe(_wrap(module))
    assert description.adaptable_layers == 0
    assert "nothing to adapt" in description.verdict
    assert "GroupNorm" in description.verdict and "InstanceNorm2d" in description.verdict


def test_fused_model_without_normalisation_is_explained():
    module = nn.Sequential(nn.Conv2d(1, 4, 3, bias=True), nn.ReLU(), nn.Conv2d(4, 1, 1))
    assert "fused" in describe(_wrap(module)).verdict


def test_torchscript_batchnorm_is_recognised(small_model_2d):
    scripted = torch.jit.trace(small_model_2d.module.eval(), torch.randn(1, 1, 32, 32))
    description = describe(_wrap(scripted))
    assert description.adaptable_layers == 10
    assert all(layer.type_name == "BatchNorm2d" for layer in description.norm_layers)


@pytest.mark.parametrize(
    ("cure", "layers", "kept", "said"),
    [
        ("adabn+strokes", ("bn",), True, "adapted (adabn+strokes, standard) on stack, weights "
         "fine-tuned on 7 strokes from s.tif"),
        ("adabn+strokes", ("bn",), False, "adapted (adabn, standard) on stack, strokes undone "
         "by its guard"),
        ("strokes", (), True, "source statistics, weights fine-tuned on 7 strokes from s.tif "
         "(strokes on stack)"),
        ("strokes", (), False, "source (as trained): strokes on stack undone by its guard"),
    ],
)  # fmt: skip
def test_the_statistics_line_says_what_strokes_left(small_model_2d, cure, layers, kept, said):
    """``bnadapt info``: the label-free state after an undone run, the source statistics
    after ``--cure strokes`` (no BatchNorm layer adapted), and where the strokes came from."""
    strokes = {"strokes": 7, "from": "s.tif", "guard": {"kept": kept}}
    small_model_2d.adaptation = AdaptationRecord(
        target="stack", cure=cure, layers=layers, details={"strokes": strokes}
    )
    assert describe(small_model_2d).state == said
