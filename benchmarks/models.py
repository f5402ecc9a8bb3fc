"""Networks from other tools, in each file format: load time, parity, adaptation success.

``python benchmarks/models.py [--steps 300] [--smp]`` trains three networks briefly on the
synthetic source domain (the built-in U-Net is the bundled demo model, trained by
scripts/make_demo_model.py; a MONAI ``UNet`` and, with ``--smp``, a
segmentation_models_pytorch ``Unet`` with a ResNet-18 encoder are trained here, z-scored
with the training set's mean and std like the built-in one). Each is saved as other tools
save it, bare TorchScript and a plain state_dict (+ ``--architecture``), neither of which
records the normalisation (per-image percentiles are then assumed), and as a bioimage.io
package (``bnadapt export``), which does; then loaded as a user would. Printed per network and format
(docs/models.md):

- load time;
- max |Δp|: our probabilities against ``sigmoid(net(x))`` of the framework's own network in
  eval mode on the same normalised 256² input (one tile);
- Dice before → after AdaBN (64 patches) on the synthetic shift grid (mean over shifts).

smp needs torchvision, which exists here only beside another torch build: run this with
``--smp`` in a separate venv (torch 2.14.1 + torchvision 0.29.1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.arrays.normalization import NormalizationSpec, fit_fixed_spec, fit_normalizer
from napari_bnadapt.export import ExportConfig, export_model
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.model.architecture import Architecture
from napari_bnadapt.synthetic import SHIFTS, SOURCE, make_dataset, make_volume

MONAI_ARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [16, 32, 64, 128],
              "strides": [2, 2, 2], "num_res_units": 2, "norm": "batch"}  # fmt: skip
SMP_ARGS = {"encoder_name": "resnet18", "encoder_weights": None, "in_channels": 1, "classes": 1}
GRID = ("brightness", "contrast", "gamma", "blur", "noise")


def train_foreign(net: nn.Module, steps: int, seed: int = 0) -> tuple[nn.Module, NormalizationSpec]:
    """A few hundred Adam steps on synthetic source patches, z-scored with the training
    set's mean and std (as the built-in U-Net is); returns the net and that normalisation."""
    torch.manual_seed(seed)
    images, masks = make_dataset(256, (64, 64), SOURCE, seed=seed)
    spec = fit_fixed_spec(list(images))
    x = np.stack([fit_normalizer(spec, i)(i) for i in images])[:, None]
    x, y = torch.from_numpy(x), torch.from_numpy(masks[:, None].astype(np.float32))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    for _ in range(steps):
        batch = torch.randint(0, len(x), (16,))
        loss = nn.functional.binary_cross_entropy_with_logits(net(x[batch]), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval(), spec


def shift_grid(model) -> tuple[float, float]:
    """Mean Dice before and after AdaBN over :data:`GRID` (one 4×192² volume each)."""
    before, after = [], []
    config = PredictConfig(device="cpu")
    for index, name in enumerate(GRID):
        image, truth = make_volume((4, 192, 192), SHIFTS[name], seed=10 + index)
        before.append(dice(predict(model, image, config).mask, truth))
        adapted = adapt(model, image, AdaptConfig(patches=64, seed=0)).model
        after.append(dice(predict(adapted, image, config).mask, truth))
    return float(np.mean(before)), float(np.mean(after))


def parity(model, net: nn.Module, image: np.ndarray) -> float:
    ours = predict(model, image, PredictConfig(device="cpu", tile_shape=256)).probabilities
    x = model.preprocessor(image[None, None])(image.astype(np.float32))
    with torch.no_grad():
        theirs = torch.sigmoid(net(torch.from_numpy(x)[None, None])).numpy()[0, 0]
    return float(np.abs(ours - theirs).max())


def formats(
    name: str,
    net: nn.Module,
    architecture: Architecture | None,
    spec: NormalizationSpec,
    folder: Path,
) -> dict[str, Callable]:
    """Write ``net`` in each format as other tools do (bare TorchScript and state dict
    carry no normalisation: percentiles are then assumed; the package carries ``spec``)."""
    torch.jit.save(torch.jit.script(net), str(folder / f"{name}_ts.pt"))
    torch.save(net.state_dict(), folder / f"{name}_sd.pt")
    base = load_model(folder / f"{name}_sd.pt", architecture)
    base.normalization = spec
    export_model(base, folder / f"{name}.zip", config=ExportConfig(test=False))
    return {
        "TorchScript": lambda: load_model(folder / f"{name}_ts.pt"),
        "state dict" + (" + --architecture" if architecture else ""): lambda: load_model(
            folder / f"{name}_sd.pt", architecture
        ),
        "bioimage.io package": lambda: load_model(folder / f"{name}.zip"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--smp", action="store_true", help="also a segmentation_models_pytorch Unet"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bnadapt-models-"))
    image = make_volume((1, 256, 256), SOURCE, seed=1)[0][0]
    demo = load_model("demo")
    networks: dict[str, tuple[nn.Module, NormalizationSpec, Architecture | None]] = {
        "built-in U-Net (demo)": (demo.module, demo.normalization, None)
    }
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    networks["MONAI UNet"] = (
        *train_foreign(UNet(**MONAI_ARGS), args.steps),
        Architecture("monai.networks.nets.UNet", MONAI_ARGS),
    )
    if args.smp:
        import segmentation_models_pytorch as smp

        torch.manual_seed(0)
        networks["smp Unet (ResNet-18)"] = (
            *train_foreign(smp.Unet(**SMP_ARGS), args.steps),
            Architecture("segmentation_models_pytorch.Unet", SMP_ARGS),
        )
    print(f"torch {torch.__version__}; shift grid: {', '.join(GRID)}")
    print(
        "| network | format | load time | max \\|Δp\\| vs framework | Dice before → after AdaBN |"
    )
    print("|---|---|---|---|---|")
    for index, (name, (net, spec, architecture)) in enumerate(networks.items()):
        for fmt, load in formats(f"net{index}", net, architecture, spec, folder).items():
            started = time.perf_counter()
            model = load()
            seconds = time.perf_counter() - started
            delta = parity(model, net, image)
            before, after = shift_grid(model)
            print(
                f"| {name} | {fmt} | {seconds:.2f} s | {delta:.2g} | {before:.3f} → {after:.3f} |"
            )


if __name__ == "__main__":
    main()
