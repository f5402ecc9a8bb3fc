"""Did a change move the real-EM results? A digest to compare two commits bit for bit.

``python benchmarks/real_em_invariance.py VNC_MODEL.pt [DATA]`` adapts with the defaults,
both directions of the real pair (``membranes-fibsem`` → VNC slices 0–15; a VNC-trained
model → NeuroProof slices 0–199), seeds 0–2, and prints for each run a hash of the adapted
state dict and the Dice on the held-out slices (VNC 16–19, NeuroProof 200–249). Run it on
two commits (``PYTHONPATH=<other checkout>/src``) with the same VNC model and diff the
outputs: identical digests mean identical statistics and masks.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.images import read_named_image
from napari_bnadapt.model import load_model

data = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/real_em")


def vol(name):
    im = read_named_image(data / f"{name}_img.tif")
    return (
        np.asarray(im.data),
        im.voxel_size,
        np.asarray(read_named_image(data / f"{name}_membranes.tif").data),
    )


vnc, vnc_vox, vnc_lab = vol("vnc")
np_, np_vox, np_lab = vol("neuroproof")
src = load_model("membranes-fibsem")  # trained on NeuroProof
vnc_model = sys.argv[1]  # a VNC-trained model (same file for both trees)
out = {}
for direction, model, target, vox, test, lab in [
    ("NP->VNC", src, vnc[:16], vnc_vox, vnc[16:20], vnc_lab[16:20]),
    ("VNC->NP", load_model(vnc_model), np_[:200], np_vox, np_[200:250], np_lab[200:250]),
]:
    for seed in (0, 1, 2):
        a = adapt(model, target, AdaptConfig(seed=seed), voxel_size=vox).model
        h = hashlib.sha256(
            b"".join(v.numpy().tobytes() for v in a.module.state_dict().values())
        ).hexdigest()[:16]
        d = dice(predict(a, test, PredictConfig(device="cpu"), voxel_size=vox).mask, lab)
        out[f"{direction} seed {seed}"] = (h, round(float(d), 4))
print(json.dumps(out, indent=0))
