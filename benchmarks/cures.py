"""Every cure, and ``auto``'s choice, on the synthetic shift grid (44 targets).

``python benchmarks/cures.py --out docs`` adapts the demo model (with its fingerprint) to
each target of benchmarks/reading.py's grid with every cure, scores Dice against the known
truth, and reports what ``auto`` picked without labels, the best cure in hindsight and the
regret (best − auto), and auto − AdaBN. Writes ``cures_results.json``. Reported, never
asserted. About 10 min on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from reading import SHAPE, synthetic_cases  # benchmarks/reading.py, beside this script

from napari_bnadapt.adapt import CURES, AdaptConfig, adapt
from napari_bnadapt.arrays.metrics import dice
from napari_bnadapt.inference import PredictConfig, predict
from napari_bnadapt.model import load_model
from napari_bnadapt.synthetic import make_volume

CPU = {"device": "cpu"}


def case_row(model, name: str, volume, truth, cures) -> dict:
    config = PredictConfig(**CPU)
    row = {"case": name, "source": dice(predict(model, volume, config).mask, truth), "cures": {}}
    for cure in cures:
        result = adapt(model, volume, AdaptConfig(cure=cure, **CPU))
        row["cures"][cure] = dice(predict(result.model, volume, config).mask, truth)
        if cure == "auto":
            row["auto_chosen"] = result.record.details["auto"]["chosen"]
            row["auto_scores"] = result.record.details["auto"]["scores"]
    return row


def print_table(rows: list[dict], cures) -> dict:
    shown = [c for c in cures if c != "auto"]
    print("| case | source | " + " | ".join(shown) + " | auto (picked) | best | regret |")
    print("|---" * (len(shown) + 5) + "|")
    regrets, versus_adabn = [], []
    for r in rows:
        best = max(shown, key=lambda c: r["cures"][c])
        regret = r["cures"][best] - r["cures"]["auto"]
        regrets.append(regret)
        versus_adabn.append(r["cures"]["auto"] - r["cures"]["adabn"])
        cells = " | ".join(f"{r['cures'][c]:.3f}" for c in shown)
        print(
            f"| {r['case']} | {r['source']:.3f} | {cells} | {r['cures']['auto']:.3f} "
            f"({r['auto_chosen']}) | {best} | {regret:.3f} |"
        )
    summary = {
        "mean_regret": float(np.mean(regrets)),
        "max_regret": float(np.max(regrets)),
        "worst_auto_minus_adabn": float(np.min(versus_adabn)),
        "mean_auto_minus_adabn": float(np.mean(versus_adabn)),
        "mean_dice": {c: float(np.mean([r["cures"][c] for r in rows])) for c in cures},
    }
    print(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cures", nargs="+", default=list(CURES))
    args = parser.parse_args()
    model = load_model("demo")
    rows = []
    for i, (name, domain) in enumerate(synthetic_cases()):
        volume, truth = make_volume(SHAPE, domain, seed=60 + i)
        rows.append(case_row(model, name, volume, truth, args.cures))
        print(json.dumps({"case": name, "auto": rows[-1].get("auto_chosen")}), flush=True)
    summary = print_table(rows, args.cures)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"rows": rows, "summary": summary}, indent=1)
        (args.out / "cures_results.json").write_text(text)


if __name__ == "__main__":
    main()
