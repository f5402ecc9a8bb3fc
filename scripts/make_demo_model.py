"""Reproduce the bundled demo model from a seed: ``python scripts/make_demo_model.py``.

Trains the built-in 2D U-Net (depth 3, 16 base channels, ~0.47 M parameters) on synthetic
source-domain images and writes ``src/napari_bnadapt/data/demo_unet.pt`` with its source
fingerprint (5 nm pixels, as the sample volumes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from napari_bnadapt.model import save_model
from napari_bnadapt.synthetic import SOURCE, make_dataset
from napari_bnadapt.training import TrainConfig, train

OUT = Path(__file__).resolve().parents[1] / "src" / "napari_bnadapt" / "data" / "demo_unet.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    images, masks = make_dataset(400, (128, 128), SOURCE, seed=args.seed)
    config = TrainConfig(dims=2, steps=args.steps, seed=args.seed, device="cpu", validate_every=100)
    started = time.perf_counter()
    # The sample volumes are drawn at 5 nm in-plane: the model's voxel size (and fingerprint).
    result = train(
        list(images),
        list(masks),
        config,
        voxel_size=(5.0, 5.0),
        progress=lambda p: print(p.message) if "val" in p.message else None,
    )
    result.model.metadata.update(
        name="demo-unet",
        description="2D U-Net trained on synthetic source-domain EM-like images "
        "(napari_bnadapt.synthetic.SOURCE); foreground = the darker structures.",
    )
    result.model.metadata["provenance"]["recipe"] = (
        f"scripts/make_demo_model.py --seed {args.seed} --steps {args.steps}"
    )
    save_model(result.model, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
