"""The "Should I adapt?" reading against the truth: synthetic shift grid and real EM cases.

``python benchmarks/reading.py --data ../shared/data/real_em --models /tmp/bnadapt_real_em
--out docs`` runs, for every case, what ``bnadapt report`` runs (segment, adapt with the
defaults, segment again, diagnose against the model's fingerprint — no source images), and
compares the label-free reading with the actual Dice gain. Prints the tables of
docs/real_em.md ("The reading"); writes ``reading_results.json``. Figures are reported,
never asserted. The real models are those benchmarks/real_em.py trained (``--models``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from napari_bnadapt.adapt import AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.diagnostics import diagnose
from napari_bnadapt.diagnostics.distances import spearman
from napari_bnadapt.diagnostics.latents import LatentConfig
from napari_bnadapt.diagnostics.quality import compare_masks
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.io.images import read_named_image
from napari_bnadapt.model import load_model
from napari_bnadapt.synthetic import SHIFTS, SOURCE, Domain, make_volume

CPU = {"device": "cpu"}
SHAPE = (6, 128, 128)
REAL = {"vnc": slice(16, 20), "neuroproof": slice(200, 250)}


def lerp(target: Domain, t: float) -> Domain:
    values = {
        f.name: (1 - t) * getattr(SOURCE, f.name) + t * getattr(target, f.name)
        for f in fields(Domain)
    }
    return Domain(**values)


def synthetic_cases() -> list[tuple[str, Domain]]:
    """The 44 targets of docs/diagnostics.md: 6 shifts × 3 severities, none, a μ1/μ2 grid."""
    out = []
    for name, domain in SHIFTS.items():
        if name == "none":
            out.append(("none", domain))
            continue
        for t in (0.33, 0.67, 1.0):
            out.append((f"{name} ×{t:.2f}", lerp(domain, t)))
    for mu1 in (0.1, 0.3, 0.5, 0.7, 0.9):
        for mu2 in (0.1, 0.3, 0.5, 0.7, 0.9):
            out.append((f"μ1 {mu1} μ2 {mu2}", SOURCE.shifted(mu_foreground=mu1, mu_background=mu2)))
    return out


def measure(model, name: str, volume, truth, voxel_size=None, source=None) -> dict:
    """What the report measures, and the truth it cannot see; with ``source`` images, the
    reading made with them as the latent reference too."""
    config = PredictConfig(**CPU)
    before = predict(model, volume, config, voxel_size=voxel_size)
    result = adapt(model, volume, AdaptConfig(**CPU), voxel_size=voxel_size)
    after = predict(result.model, volume, config, voxel_size=voxel_size)
    quality = compare_masks(before, after)
    diagnosis = diagnose(
        model, volume, result.model, config=LatentConfig(**CPU), quality=quality,
        voxel_size=voxel_size,
    )  # fmt: skip
    verdict = diagnosis.verdict
    with_source = diagnose(
        model, volume, result.model, source=source, config=LatentConfig(**CPU),
        quality=quality, voxel_size=voxel_size,
    ).verdict  # fmt: skip
    return {
        "reading_with_source": with_source.reading,
        "predicted_benefit_with_source": with_source.predicted_benefit,
        "case": name,
        "dice_before": dice(before.mask, truth),
        "dice_after": dice(after.mask, truth),
        "reading": verdict.reading,
        "cure": verdict.cure,
        "predicted_benefit": verdict.predicted_benefit,
        "figures": verdict.figures,
        "input_steps": list(result.record.input_steps),
        "intensity_shift": diagnosis.intensity_shift,
        "quality": quality.to_dict(),
    }


def real_cases(data: Path, models: Path, seeds: list[int]) -> list[dict]:
    rows = []
    volumes = {}
    for name, part in REAL.items():
        image = read_named_image(data / f"{name}_img.tif")
        labels = np.asarray(read_named_image(data / f"{name}_membranes.tif").data)[part]
        pixels = np.asarray(image.data)
        # Source images for the "with source images" reading: a few training slices.
        sources = pixels[:4] if name == "vnc" else pixels[:200:4]
        volumes[name] = (pixels[part], labels, image.voxel_size, sources)
    for seed in seeds:
        for src, tgt in (("vnc", "neuroproof"), ("neuroproof", "vnc")):
            model = load_model(models / f"{src}_seed{seed}_steps800.pt")
            volume, truth, voxel, _ = volumes[tgt]
            source = volumes[src][3]
            for rescale in (True, False):
                label = f"{src} → {tgt} seed {seed}" + ("" if rescale else " (no rescale)")
                size = voxel if rescale else None
                rows.append(measure(model, label, volume, truth, size, source))
                print(json.dumps(_brief(rows[-1])), flush=True)
    return rows


def _brief(row: dict) -> dict:
    keys = ("case", "dice_before", "dice_after", "reading", "cure", "predicted_benefit")
    return {k: row[k] for k in keys}


def report(rows: list[dict]) -> dict:
    gain = np.array([r["dice_after"] - r["dice_before"] for r in rows])
    real = np.array(["→" in r["case"] for r in rows])
    out = {}
    for suffix in ("", "_with_source"):
        benefit = np.array([r["predicted_benefit" + suffix] for r in rows])
        out["spearman_all" + suffix] = spearman(benefit, gain)
        out["spearman_synthetic" + suffix] = spearman(benefit[~real], gain[~real])
        out["spearman_real" + suffix] = spearman(benefit[real], gain[real])
        out["real_gain_over_0.2_read_risky" + suffix] = int(
            sum(
                1 for r, g, x in zip(rows, gain, real)
                if x and g > 0.2 and r["reading" + suffix] == "risky"
            )
        )  # fmt: skip
    print(
        "| case | Dice before | after | gain | reading | cure | predicted benefit "
        "| with source images |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r, g in zip(rows, gain):
        print(
            f"| {r['case']} | {r['dice_before']:.3f} | {r['dice_after']:.3f} | {g:+.3f} | "
            f"{r['reading']} | {r['cure']} | {r['predicted_benefit']:+.3f} | "
            f"{r['reading_with_source']} {r['predicted_benefit_with_source']:+.3f} |"
        )
    print(json.dumps(out, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real_em"))
    parser.add_argument("--models", type=Path, default=Path("/tmp/bnadapt_real_em"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rows", type=Path, default=None, help="re-read rows from this JSON")
    args = parser.parse_args()
    if args.rows:
        rows = json.loads(args.rows.read_text())["rows"]
    else:
        model = load_model("demo")
        source = make_volume(SHAPE, SOURCE, seed=59)[0]
        rows = []
        for i, (name, domain) in enumerate(synthetic_cases()):
            volume, truth = make_volume(SHAPE, domain, seed=60 + i)
            rows.append(measure(model, name, volume, truth, source=source))
            print(json.dumps(_brief(rows[-1])), flush=True)
        rows += real_cases(args.data, args.models, args.seeds)
    summary = report(rows)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"rows": rows, "summary": summary}, indent=1, default=float)
        (args.out / "reading_results.json").write_text(text)


if __name__ == "__main__":
    main()
