"""Foreign networks: load time and parity with the framework's own eval-mode output.

``python benchmarks/models.py`` (needs MONAI: ``pip install monai``) saves a MONAI 2D UNet
(random weights, seed 0) as TorchScript and as a plain state_dict, loads each as a user would,
predicts one 256² synthetic tile and prints the load time and the largest difference between
our probabilities and ``sigmoid(net(x))`` on the same normalised input (docs/models.md).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.networks.nets import UNet

from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.model.architecture import Architecture
from napari_bnadapt.synthetic import SOURCE, make_volume

ARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [16, 32, 64, 128],
        "strides": [2, 2, 2], "num_res_units": 2, "norm": "batch"}  # fmt: skip


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bnadapt-models-"))
    torch.manual_seed(0)
    net = UNet(**ARGS).eval()
    torch.save(net.state_dict(), folder / "state_dict.pt")
    torch.jit.save(torch.jit.script(net), str(folder / "torchscript.pt"))
    image = make_volume((1, 256, 256), SOURCE, seed=1)[0][0]
    loaders = {
        "TorchScript": lambda: load_model(folder / "torchscript.pt"),
        "state dict + architecture": lambda: load_model(
            folder / "state_dict.pt", Architecture("monai.networks.nets.UNet", ARGS)
        ),
    }
    print("| format | load time | max |Δp| against MONAI's own output |")
    for name, load in loaders.items():
        started = time.perf_counter()
        model = load()
        seconds = time.perf_counter() - started
        ours = predict(model, image, PredictConfig(device="cpu", tile_shape=256)).probabilities
        x = model.preprocessor(image[None, None])(image.astype(np.float32))
        with torch.no_grad():
            theirs = torch.sigmoid(net(torch.from_numpy(x)[None, None])).numpy()[0, 0]
        print(f"| {name} | {seconds:.2f} s | {float(np.abs(ours - theirs).max()):.2g} |")


if __name__ == "__main__":
    main()
