"""Reproduce the bundled ``membranes-fibsem`` model: ``python scripts/make_membrane_model.py``.

Trains the built-in 2D U-Net (depth 3, 16 base channels, BatchNorm) on every slice of the
NeuroProof FIB-SEM volume (Janelia FlyEM, Drosophila medulla, 10 nm isotropic; CC BY) with
its neuron-boundary labels, and writes ``src/napari_bnadapt/data/membranes_fibsem.pt`` with
its fingerprint (10 nm voxels), attribution and recipe in the metadata. The NC-licensed VNC
volume is never used here: it must not be shipped.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from napari_bnadapt.io.images import read_named_image
from napari_bnadapt.model import save_model
from napari_bnadapt.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "napari_bnadapt" / "data" / "membranes_fibsem.pt"
ATTRIBUTION = (
    "Trained on the NeuroProof example data (Janelia FlyEM, training sample 2: Drosophila "
    "medulla, FIB-SEM, 250³ voxels at 10 nm), licensed CC BY 4.0; labels: boundaries "
    "between ground-truth neurons, one pixel on each side, per slice."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real_em")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    image = read_named_image(args.data / "neuroproof_img.tif")
    labels = np.asarray(read_named_image(args.data / "neuroproof_membranes.tif").data)
    config = TrainConfig(
        dims=2, steps=args.steps, seed=args.seed, device="cpu", validate_every=args.steps // 6
    )
    started = time.perf_counter()
    result = train(
        [np.asarray(image.data)], [labels], config, names=["neuroproof_img"],
        voxel_size=image.voxel_size,
        progress=lambda p: print(p.message) if "val" in p.message else None,
    )  # fmt: skip
    result.model.metadata.update(
        name="membranes-fibsem",
        description="2D U-Net (BatchNorm) for cell membranes / neuron boundaries in FIB-SEM "
        "of neural tissue at 10 nm; foreground = boundary. Adapt it to your own volume "
        "with bnadapt adapt, then check the masks.",
        attribution=ATTRIBUTION,
        license="CC BY 4.0 (training data); the model weights are released under the "
        "package's BSD-3-Clause licence with that attribution",
    )
    result.model.metadata["provenance"]["recipe"] = (
        f"scripts/make_membrane_model.py --seed {args.seed} --steps {args.steps}"
    )
    save_model(result.model, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
