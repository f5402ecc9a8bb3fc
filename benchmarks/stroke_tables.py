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


def _by_seed(rows: list[dict], n_slices: int, **where) -> dict[int, dict]:
    """Per seed, the row painted on ``n_slices`` slices that matches ``where``."""
    return {r["seed"]: r for r in rows
            if len(r["slices"]) == n_slices and all(r[k] == v for k, v in where.items())}  # fmt: skip


def print_goals(rows: list[dict]) -> None:
    """The issue's requirements, setting by setting: the stroke cure against AdaBN and
    against the forest on the same strokes, paired by seed (mean difference and its range;
    runs more than 0.01 Dice, and more than AdaBN's own spread over seeds, below AdaBN)."""
    print(
        "\n| direction | strokes | K | Δ Dice vs AdaBN | Δ Rand F vs AdaBN | runs below "
        "AdaBN (> 0.01 / > seed noise) | Δ Dice vs forest | Δ Rand F vs forest |"
    )
    print("|---" * 8 + "|")
    for src, tgt in DIRECTIONS:
        mine = [r for r in rows if r["direction"] == f"{src}->{tgt}"]
        if not mine:
            continue
        adabn = {r["seed"]: r["references"]["adabn"] for r in mine}
        noise = max(a["dice"] for a in adabn.values()) - min(a["dice"] for a in adabn.values())
        noise /= 2
        settings = sorted({(r["placement"], len(r["slices"]), r["strokes"]) for r in mine
                           if r["method"] == "adabn+strokes"})  # fmt: skip
        for placement, n_slices, count in settings:
            picked = {"placement": placement, "strokes": count}
            cure = _by_seed(mine, n_slices, method="adabn+strokes", **picked)
            trees = _by_seed(mine, n_slices, method="forest", **picked)
            vs_adabn = [_differences(cure, adabn, k) for k in ("dice", "rand_f")]
            below = [cure[s]["dice"] - adabn[s]["dice"] for s in cure]
            vs_forest = [_differences(cure, trees, k) for k in ("dice", "rand_f")]
            label = placement + ("" if n_slices == 1 else f", {n_slices} slices")
            print(f"| {src} → {tgt} | {label} | {count} | {vs_adabn[0]} | {vs_adabn[1]} | "
                  f"{sum(b < -0.01 for b in below)} / {sum(b < -noise for b in below)} of "
                  f"{len(below)} | {vs_forest[0]} | {vs_forest[1]} |")  # fmt: skip


def _differences(mine: dict, other: dict, key: str) -> str:
    """Mean of the seed-paired differences ``mine − other`` [lowest, highest]."""
    found = [mine[s][key] - other[s][key] for s in mine if s in other]
    if not found:
        return "–"
    return f"{np.mean(found):+.3f} [{min(found):+.3f}, {max(found):+.3f}]"
