"""Shared fixtures: tiny synthetic data and small models, all made on the fly on the CPU."""

from __future__ import annotations

import os
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from bioimageio.spec import ValidationContext, save_bioimageio_package
from bioimageio.spec.model import v0_5 as spec
from hypothesis import HealthCheck, settings
from torch import nn

from napari_bnadapt.arrays.normalization import NormalizationSpec
from napari_bnadapt.model import LoadedModel
from napari_bnadapt.model.loaded import wrap_unet
from napari_bnadapt.model.unet import UNet, UNetConfig
from napari_bnadapt.synthetic import SOURCE, make_dataset

# Fuzzing profiles (tests/fuzz): a short one in CI, a long one with BNADAPT_FUZZ=nightly.
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=30, deadline=None, suppress_health_check=_QUIET)
settings.register_profile(
    "nightly", max_examples=2000, deadline=None, suppress_health_check=_QUIET, print_blob=True
)
settings.load_profile(os.environ.get("BNADAPT_FUZZ", "ci"))


def randomize_bn(module: torch.nn.Module, seed: int = 0) -> None:
    """Give BN layers non-trivial statistics and affine terms (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


@pytest.fixture(autouse=True)
def fresh_notifications(request):
    """A Qt test sees only its own napari notifications (napari keeps them process-wide)."""
    if request.node.get_closest_marker("qt") is not None:
        from napari.utils.notifications import notification_manager

        notification_manager.records.clear()


#: The sample volumes' shape in widget tests: the same synthetic domains, small enough for
#: a whole journey through the widgets in seconds.
TINY_SAMPLES = (4, 128, 128)


@pytest.fixture
def tiny_samples(monkeypatch):
    """Make File ▸ Open Sample (and ``bnadapt gui``) open tiny sample volumes: the demo's
    domains, seeds, voxel size and ground truth at :data:`TINY_SAMPLES`."""
    from napari_bnadapt import _sample_data, demo
    from napari_bnadapt.synthetic import TARGET, make_volume

    def sample(domain, seed, name):
        image, truth = make_volume(TINY_SAMPLES, domain, seed=seed)
        return demo.SampleVolume(name, image, truth)

    monkeypatch.setattr(
        _sample_data, "source_volume", lambda: sample(SOURCE, demo.SOURCE_SEED, "source")
    )
    monkeypatch.setattr(
        _sample_data, "target_volume", lambda: sample(TARGET, demo.TARGET_SEED, "target")
    )


@pytest.fixture
def small_model_2d() -> LoadedModel:
    torch.manual_seed(0)
    unet = UNet(UNetConfig(dims=2, depth=2, base_channels=4)).eval()
    randomize_bn(unet)
    return wrap_unet(
        unet, NormalizationSpec(mode="fixed", mean=100.0, std=40.0), {"name": "small2d"}
    )


@pytest.fixture
def small_model_3d() -> LoadedModel:
    torch.manual_seed(1)
    unet = UNet(UNetConfig(dims=3, depth=2, base_channels=4)).eval()
    randomize_bn(unet, seed=1)
    return wrap_unet(
        unet, NormalizationSpec(mode="fixed", mean=100.0, std=40.0), {"name": "small3d"}
    )


@pytest.fixture
def source_images() -> tuple[np.ndarray, np.ndarray]:
    return make_dataset(6, (64, 64), SOURCE, seed=3)


# -- bioimage.io packages built on the fly with bioimageio.spec from tiny networks (offline) --

#: A network whose class lives in a file of the package (weights as a state_dict).
PACKAGE_CODE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.conv1 = nn.Conv2d(1, width, 3, padding=1)
            self.bn = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, 1, 1)

        def forward(self, x):
            return self.conv2(torch.relu(self.bn(self.conv1(x))))
    """
)


class TinyNet(nn.Module):
    """The same network as :data:`PACKAGE_CODE`, for TorchScript and expected outputs."""

    def __init__(self, width: int = 4, norm: str = "batch", out: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width) if norm == "batch" else nn.GroupNorm(2, width)
        self.conv2 = nn.Conv2d(width, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.bn(self.conv1(x))))


class ChannelsLast(nn.Module):
    """A network that takes and gives ``(b, y, x, c)`` tensors."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Unbatched(nn.Module):
    """A network that takes and gives one ``(c, y, x)`` sample (no batch axis)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[None])[0]


class Probabilities(nn.Module):
    """A network that applies its own sigmoid."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def tiny_net(seed: int = 0, **kwargs: Any) -> nn.Module:
    torch.manual_seed(seed)
    net = TinyNet(**kwargs).eval()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return net


def _axes(
    order: str,
    channels: int,
    kind: str,
    tensor: str = "raw",
    size: tuple[int, int] = (16, 8),
    halo: int = 0,
) -> list[Any]:
    axes = []
    for letter in order:
        if letter == "b":
            axes.append(spec.BatchAxis())
        elif letter == "c":
            axes.append(
                spec.ChannelAxis(channel_names=[spec.Identifier(f"c{i}") for i in range(channels)])
            )
        elif letter == "t":
            axes.append(
                spec.TimeInputAxis(size=1) if kind == "input" else spec.TimeOutputAxis(size=1)
            )
        elif kind == "input":
            axes.append(
                spec.SpaceInputAxis(
                    id=spec.AxisId(letter), size=spec.ParameterizedSize(min=size[0], step=size[1])
                )
            )
        else:
            reference = spec.SizeReference(
                tensor_id=spec.TensorId(tensor), axis_id=spec.AxisId(letter)
            )
            if halo:
                axes.append(
                    spec.SpaceOutputAxisWithHalo(id=spec.AxisId(letter), size=reference, halo=halo)
                )
            else:
                axes.append(spec.SpaceOutputAxis(id=spec.AxisId(letter), size=reference))
    return axes


def _normalise(x: np.ndarray, steps: list[Any]) -> np.ndarray:
    """What the package's preprocessing does to ``x`` (the cases the tests use)."""
    for step in steps:
        if step.id == "fixed_zero_mean_unit_variance":
            x = (x - step.kwargs.mean) / (step.kwargs.std + 1e-6)
        elif step.id == "scale_range":
            low, high = np.percentile(x, [step.kwargs.min_percentile, step.kwargs.max_percentile])
            x = (x - low) / (high - low + 1e-6)
        elif step.id == "zero_mean_unit_variance":
            x = (x - x.mean()) / (x.std() + 1e-6)
    return x.astype(np.float32)


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """``make_package(net, name=..., weights='torchscript'|'library'|'file', axes='bcyx',
    preprocessing=[...], postprocessing=[...], inputs=1, zip=True)`` → the package path."""

    def build(
        net: nn.Module,
        name: str = "tiny package",
        weights: str = "torchscript",
        axes: str = "bcyx",
        preprocessing: list[Any] | None = None,
        postprocessing: list[Any] | None = None,
        out_channels: int = 1,
        inputs: int = 1,
        library: tuple[str, str, dict[str, Any]] | None = None,
        zoo_id: str | None = None,
        size: tuple[int, int] = (16, 8),
        halo: int = 0,
    ) -> Path:
        folder = tmp_path / f"build_{name.replace(' ', '_')}"
        folder.mkdir()
        pre = (
            preprocessing
            if preprocessing is not None
            else [
                spec.FixedZeroMeanUnitVarianceDescr(
                    kwargs=spec.FixedZeroMeanUnitVarianceKwargs(mean=100.0, std=40.0)
                )
            ]
        )
        post = postprocessing if postprocessing is not None else [spec.SigmoidDescr()]
        side = max(32, size[0])
        shape = [1 if a in "bt" else (1 if a == "c" else side) for a in axes]
        image = np.random.default_rng(0).normal(100, 40, shape).astype(np.float32)
        try:
            with torch.no_grad():
                result = net(torch.from_numpy(_normalise(image, pre))).numpy()
        except RuntimeError:  # a signature the network cannot take: a package to refuse
            result = np.zeros_like(image)
        if [s.id for s in post] == ["sigmoid"]:
            result = 1 / (1 + np.exp(-result))
        np.save(folder / "in.npy", image)
        np.save(folder / "out.npy", result.astype(np.float32))
        entries = {}
        if weights == "onnx":  # never read: refused for its format
            (folder / "weights.onnx").write_bytes(b"onnx")
            entries["onnx"] = spec.OnnxWeightsDescr(
                source=folder / "weights.onnx", opset_version=15
            )
        elif weights == "torchscript":
            torch.jit.save(torch.jit.script(net), str(folder / "weights.pt"))
            entries["torchscript"] = spec.TorchscriptWeightsDescr(
                source=folder / "weights.pt", pytorch_version=spec.Version("2.1")
            )
        else:
            torch.save(net.state_dict(), folder / "weights.pt")
            if weights == "library":
                module, callable_name, kwargs = library
                architecture = spec.ArchitectureFromLibraryDescr(
                    import_from=module, callable=spec.Identifier(callable_name), kwargs=kwargs
                )
            else:
                (folder / "tiny_net.py").write_text(PACKAGE_CODE)
                architecture = spec.ArchitectureFromFileDescr(
                    source=folder / "tiny_net.py", callable=spec.Identifier("TinyNet"), kwargs={}
                )
            entries["pytorch_state_dict"] = spec.PytorchStateDictWeightsDescr(
                source=folder / "weights.pt",
                architecture=architecture,
                pytorch_version=spec.Version("2.1"),
            )
        descr_inputs = [
            spec.InputTensorDescr(
                id=spec.TensorId("raw" if i == 0 else f"raw{i}"),
                axes=_axes(axes, 1, "input", size=size),
                test_tensor=spec.FileDescr(source=folder / "in.npy"),
                preprocessing=pre,
            )
            for i in range(inputs)
        ]
        descr_output = spec.OutputTensorDescr(
            id=spec.TensorId("prob"),
            axes=_axes(axes, out_channels, "output", halo=halo),
            test_tensor=spec.FileDescr(source=folder / "out.npy"),
            postprocessing=post,
        )
        (folder / "README.md").write_text(f"# {name}\n")
        with ValidationContext(perform_io_checks=False):
            description = spec.ModelDescr(
                name=name,
                description="a tiny test network",
                authors=[spec.Author(name="Test Author")],
                cite=[spec.CiteEntry(text="test", url=spec.HttpUrl("https://example.org"))],
                license=spec.LicenseId("MIT"),
                documentation=spec.FileDescr(source=folder / "README.md"),
                inputs=descr_inputs,
                outputs=[descr_output],
                weights=spec.WeightsDescr(**entries),
                id=spec.ModelId(zoo_id) if zoo_id else None,
                version=spec.Version("1.2") if zoo_id else None,
            )
        return save_bioimageio_package(
            description, output_path=tmp_path / f"{name.replace(' ', '_')}.zip"
        )

    return build


@pytest.fixture
def nets() -> Any:
    """The tiny networks and the spec module, for tests that build packages."""
    from types import SimpleNamespace

    return SimpleNamespace(
        tiny=tiny_net, TinyNet=TinyNet, ChannelsLast=ChannelsLast, Unbatched=Unbatched,
        Probabilities=Probabilities, spec=spec, code=PACKAGE_CODE,
    )  # fmt: skip


def copy_zip(
    source: Path,
    target: Path,
    edit: Callable[[str, bytes], bytes | None] = lambda name, data: data,
    extra: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_STORED,
) -> Path:
    """Copy a zip, each member through ``edit(name, data)`` (None drops it), plus ``extra``
    members: how the tests damage a package."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", compression) as new:
        for name in old.namelist():
            data = edit(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return target


@pytest.fixture
def damaged() -> Callable[..., Path]:
    """:func:`copy_zip`, for tests."""
    return copy_zip


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Speed measurements (receptive fields, calibrations) go to a folder of this test
    session: tests neither read nor change the user's cache."""
    folder = tmp_path_factory.mktemp("bnadapt-cache")
    previous = os.environ.get("BNADAPT_CACHE_DIR")
    os.environ["BNADAPT_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("BNADAPT_CACHE_DIR", None)
    else:
        os.environ["BNADAPT_CACHE_DIR"] = previous
