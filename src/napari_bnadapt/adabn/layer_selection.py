"""Choosing which BatchNorm layers to adapt, by group, position or name."""

from __future__ import annotations

from ..errors import InputDataError

GROUPS = ("all", "encoder", "decoder", "bottleneck")


def select_layers(names: list[str], spec: str | list[str] | tuple[str, ...] = "all") -> list[str]:
    """The BN layer names chosen by ``spec``, in network order.

    ``spec`` is ``all``; ``encoder``, ``decoder`` or ``bottleneck`` (the built-in U-Net's
    parts, matched as name prefixes); ``first:K`` (the first K layers, i.e. the ones
    closest to the input); or comma-separated layer names or name prefixes.
    """
    items = [spec] if isinstance(spec, str) else list(spec)
    items = [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not items or items == ["all"]:
        return list(names)
    chosen: set[str] = set()
    for item in items:
        if item.startswith("first:") or item.startswith("first "):
            chosen.update(names[: _count(item)])
            continue
        matches = [n for n in names if n == item or n.startswith(item.rstrip(".") + ".")]
        if not matches:
            raise InputDataError(
                f"no BatchNorm layer matches {item!r}: use all, encoder, decoder, bottleneck, "
                f"first:K or layer names such as {', '.join(names[:3])}"
            )
        chosen.update(matches)
    return [n for n in names if n in chosen]


def _count(item: str) -> int:
    text = item.split(":", 1)[-1] if ":" in item else item.split(" ", 1)[-1]
    try:
        count = int(text)
    except ValueError:
        raise InputDataError(
            f"{item!r}: write first:K with K a whole number, e.g. first:2"
        ) from None
    if count < 1:
        raise InputDataError(f"{item!r}: K must be at least 1")
    return count
