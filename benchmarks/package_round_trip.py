"""A real adapted model through a bioimage.io package and back (docs/models.md).

``python benchmarks/package_round_trip.py [--data ../shared/data/real_em]``: the bundled
``membranes-fibsem`` U-Net (trained on NeuroProof FIB-SEM, 10 nm) is adapted with the
defaults to the VNC ssTEM training slices 0–15 (4.6 nm; resampled to the model's scale),
exported as a bioimage.io package with a VNC sample, checked with ``test_model``, opened
again, and scored on the held-out VNC slices 16–19. ``bioimageio.core``'s own prediction of
the held-out slices (at the slices' own pixel size: bioimage.io does not resample) is
compared with ours at the same pixel size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_bnadapt.adapt import adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.export import export_model
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.images import read_named_image
from napari_bnadapt.model import load_model

CPU = PredictConfig(device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/real_em")
    args = parser.parse_args()
    data = Path(args.data)
    image = read_named_image(data / "vnc_img.tif")
    pixels, voxel = np.asarray(image.data), image.voxel_size
    truth = np.asarray(read_named_image(data / "vnc_membranes.tif").data)[16:20]
    source = load_model("membranes-fibsem")
    adapted = adapt(source, pixels[:16], voxel_size=voxel, target_name="vnc 0-15").model
    out = Path(tempfile.mkdtemp(prefix="bnadapt-rt-")) / "membranes_vnc.zip"
    started = time.perf_counter()
    result = export_model(adapted, out, sample=pixels[16])
    seconds = time.perf_counter() - started
    reopened = load_model(out)
    rows = {"source": source, "adapted (native)": adapted, "reopened package": reopened}
    print(f"export {seconds:.1f} s, {out.stat().st_size / 1e6:.1f} MB; {result.test_message}")
    print("| model | Dice, VNC slices 16–19 |\n|---|---|")
    masks = {}
    for name, model in rows.items():
        masks[name] = predict(model, pixels[16:20], CPU, voxel_size=voxel).mask
        print(f"| {name} | {dice(masks[name], truth):.3f} |")
    same = np.array_equal(masks["adapted (native)"], masks["reopened package"])
    print(f"reopened masks identical to the adapted model's: {same}")

    from bioimageio.core import predict as core_predict
    from bioimageio.spec import load_description

    description = load_description(out, perform_io_checks=False)
    worst = 0.0
    for plane in pixels[16:20]:
        crop = plane[:512, :512].astype(np.float32)
        sample = core_predict(model=description, inputs=crop[None, None])
        theirs = next(iter(sample.members.values())).data.values[0, 0]
        one_tile = PredictConfig(device="cpu", tile_shape=512, overlap=0.0)
        ours = predict(reopened, crop, one_tile).probabilities
        worst = max(worst, float(np.abs(theirs - ours).max()))
    print(f"bioimageio.core vs napari-bnadapt, 4 × 512² crops at 4.6 nm: max |Δp| {worst:.2g}")


if __name__ == "__main__":
    main()
