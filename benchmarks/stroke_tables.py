"""The tables of docs/strokes.md, from the JSON that benchmarks/strokes.py writes."""

from __future__ import annotations

import numpy as np

DIRECTIONS = (("vnc", "neuroproof"), ("neuroproof", "vnc"))
KEYS = ("dice", "rand_f", "vi_split", "vi_merge", "boundary_f1")


def cell(values, digits: int = 3) -> str:
    """Mean ± half the spread over seeds."""
    values = np.asarray([v for v in values if v is not None], float)
    if not len(values):
        return "–"
    half = (values.max() - values.min()) / 2
    return f"{values.mean():.{digits}f} ± {half:.{digits}f}"


def gap(rows: list[dict], key: str) -> str:
    """Mean share of the gap source-only → target-trained closed (per seed, then averaged);
    'n/a' where the target-trained model scores below the source-only one."""
    shares = []
    for r in rows:
        low, high = r["references"]["source_only"][key], r["references"]["target_trained"][key]
        if key.startswith("vi_"):
            low, high, value = -low, -high, -r[key]
        else:
            value = r[key]
        if high <= low:
            return "n/a"
        shares.append((value - low) / (high - low))
    return f"{np.mean(shares):.0%}"


def reference_rows(rows: list[dict]) -> dict[str, list[dict]]:
    seeds = {}
    for r in rows:
        seeds[r["seed"]] = r["references"]
    return {name: [ref[name] | {"references": ref} for ref in seeds.values()]
            for name in ("source_only", "adabn", "target_trained")}  # fmt: skip


def print_tables(rows: list[dict]) -> None:
    """The tables of docs/strokes.md from the results' rows."""
    head = ("| method | strokes | labelled (% of target) | seconds | Dice | Rand F | VI split | "
            "VI merge | boundary F1 | gap closed (Dice) | gap closed (Rand F) |")  # fmt: skip
    for src, tgt in DIRECTIONS:
        mine = [r for r in rows if r["direction"] == f"{src}->{tgt}"]
        if not mine:
            continue
        print(f"\n**{src} → {tgt}** ({len({r['seed'] for r in mine})} seeds)\n")
        print(head)
        print("|---" * 11 + "|")
        for name, group in reference_rows(mine).items():
            scores = " | ".join(cell([g[k] for g in group]) for k in KEYS)
            print(f"| {name.replace('_', ' ')} | – | – | – | {scores} | {gap(group, 'dice')} | "
                  f"{gap(group, 'rand_f')} |")  # fmt: skip
        keys = sorted({(r["method"], r["strokes"], len(r["slices"]), r["placement"]) for r in mine},
                      key=lambda k: (k[3], k[2], k[0] != "adabn+strokes", k[0], k[1]))  # fmt: skip
        for method, count, n_slices, placement in keys:
            group = [r for r in mine if (r["method"], r["strokes"], len(r["slices"]),
                                         r["placement"]) == (method, count, n_slices, placement)]  # fmt: skip
            label = method + ("" if placement == "random" else f", {placement}")
            label += "" if n_slices == 1 else f", {n_slices} slices"
            scores = " | ".join(cell([g[k] for g in group]) for k in KEYS)
            fraction = cell([100 * g["labelled_fraction"] for g in group], 4)
            seconds = cell([g.get("cure_seconds", g["seconds"]) for g in group], 0)
            print(f"| {label} | {count} | {fraction} | {seconds} | {scores} | "
                  f"{gap(group, 'dice')} | {gap(group, 'rand_f')} |")  # fmt: skip


def print_exploration(rows: list[dict]) -> None:
    print("| variant | " + " | ".join(f"{s} → {t} Dice / Rand F" for s, t in DIRECTIONS)
          + " | seconds | steps (best) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name in dict.fromkeys(r["variant"] for r in rows):
        cells, seconds, steps = [], [], []
        for src, tgt in DIRECTIONS:
            group = [r for r in rows if r["variant"] == name and r["direction"] == f"{src}->{tgt}"]
            cells.append(
                f"{cell([g['dice'] for g in group])} / {cell([g['rand_f'] for g in group])}"
            )
            seconds += [g["cure_seconds"] for g in group]
            steps += [f"{g['steps']} ({g['best_step']})" for g in group]
        print(f"| {name} | {' | '.join(cells)} | {np.mean(seconds):.0f} | {', '.join(steps)} |")
