"""Measurements kept between runs, in the user's cache folder (one small JSON file).

``BNADAPT_CACHE_DIR`` names another folder (the tests use a temporary one). A cache that
cannot be read or written is only a cache: the measurement is made again.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE = "calibration.json"


def cache_dir() -> Path:
    """``$BNADAPT_CACHE_DIR``, else the platform's user cache folder for napari-bnadapt."""
    given = os.environ.get("BNADAPT_CACHE_DIR")
    if given:
        return Path(given)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-bnadapt", appauthor=False))


def recall(key: str) -> dict[str, Any] | None:
    """The entry stored under ``key``, or None."""
    entry = _read().get(key)
    return entry if isinstance(entry, dict) else None


def remember(key: str, entry: dict[str, Any]) -> None:
    """Store ``entry`` under ``key`` (atomically; silently not when the folder is not
    writable)."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = _read()
        entries[key] = entry
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as out:
            json.dump(entries, out, indent=1, sort_keys=True)
        os.replace(out.name, folder / FILE)
    except OSError:
        return


def _read() -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
