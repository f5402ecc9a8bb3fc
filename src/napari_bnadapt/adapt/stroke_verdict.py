"""What learning from strokes did, in a user's words: kept or undone, and why, from the
record's ``strokes`` entry. One wording for the command line's summary line and the napari
message (both say what the guard saw, and when its check was weak)."""

from __future__ import annotations

from typing import Any

#: Held-back strokes at least this right before learning were "right already".
RIGHT_ALREADY = 0.95


def stroke_verdict(details: dict[str, Any], fallback: str = "label-free") -> str:
    """The held-back strokes before → after, kept or undone and why (no final full stop);
    ``fallback``: what an undone run leaves ("label-free [adabn]", "source")."""
    before, after = details["held_out_before"], details["held_out_after"]
    if details["guard"].get("merged"):
        cells = details["cells"]
        right = (
            ""
            if before["accuracy"] is None
            else f"held-back strokes {100 * before['accuracy']:.0f} % → "
            f"{100 * after['accuracy']:.0f} % right, but "
        )
        return (
            f"{right}the painted slices kept {cells['taught']:.0f} cells of "
            f"{cells['label_free']:.0f} (the strokes opened the membranes, cells merged): "
            f"undone, the network and mask are the {fallback} ones"
        )
    if before["accuracy"] is None:
        return "none could be held back to check it (paint more): kept unchecked"
    if not details["guard"]["kept"]:
        why = (
            "they were right already: paint where the mask is wrong"
            if before["accuracy"] >= RIGHT_ALREADY
            else "learning did not make them more right"
        )
        return (
            f"held-back strokes {100 * before['accuracy']:.0f} % right before, no better "
            f"after ({why}): undone, the network and mask are the {fallback} ones"
        )
    right = f"{100 * before['accuracy']:.0f} % → {100 * after['accuracy']:.0f} % right"
    if round(100 * before["accuracy"]) == round(100 * after["accuracy"]):
        right += f" (loss {before['loss']:.2f} → {after['loss']:.2f})"
    cautions = [c for c in (weak_classes(details), weak_check(details)) if c]
    return f"held-back strokes {right}: kept" + (f"; {'; '.join(cautions)}" if cautions else "")


def weak_check(details: dict[str, Any]) -> str:
    """A class painted in one stroke lends a piece of it to the check, which then judges
    what the network was shown (measured: the benchmark's worst run was kept this way,
    docs/strokes.md): say so, and what makes the check real; "" otherwise."""
    single = [n for n, k in details.get("strokes_per_class", {}).items() if k == 1]
    if not single:
        return ""
    return (
        f"one {' and one '.join(single)} stroke only: the check held back a piece of it, "
        "a weak check; a second stroke of each makes it real"
    )


def weak_classes(details: dict[str, Any]) -> str:
    """The painted classes whose held-back strokes are mostly wrong after learning, with
    their share right, and what to do; "" when none is."""
    recalls = details["held_out_after"].get("recalls") or {}
    names = list(details.get("pixels_per_class", {}))
    weak = [
        f"{names[int(k) - 1] if int(k) <= len(names) else f'label {k}'} {100 * v:.0f} %"
        for k, v in recalls.items()
        if v < 0.5
    ]
    if not weak:
        return ""
    return (
        f"yet only {', '.join(weak)} right: compare it with the label-free mask before "
        "trusting it (reset undoes it)"
    )
