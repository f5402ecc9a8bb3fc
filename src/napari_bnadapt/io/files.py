"""Writing outputs (files, JSON, CSV) so that nothing half-written is ever left at the path."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BnAdaptError, OutputPathError
from .paths import check_output_regular


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    The temporary file sits in the same folder so the final ``os.replace`` is atomic. On any
    error the temporary file is removed and ``path`` keeps its previous content (or stays
    absent).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{str(path)!r} is a folder: give a file name to write")
    check_output_regular(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BnAdaptError(f"output folder {str(parent)!r} does not exist: create it first")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise unwritable(path, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files: give the output the permissions of any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in WRITE_ERRORS:
            raise unwritable(path, exc) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: What a full disk, a read-only or foreign folder answer a write with.
WRITE_ERRORS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG")
    if hasattr(errno, name)
)


def unwritable(path: Path, exc: OSError) -> OutputPathError:
    """One line for a write the system refused (nothing was left at ``path``)."""
    reason = exc.strerror or type(exc).__name__
    return OutputPathError(
        f"could not write {str(path)!r}: {reason.lower()}; choose a folder you can write to "
        "(with space left); nothing was written there"
    )


def write_json(value: Any, path: str | Path) -> Path:
    """Write ``value`` as indented JSON atomically; numpy scalars and arrays become numbers
    and lists."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(_plain(value), indent=2))
    return path


def write_csv(
    rows: Sequence[dict[str, Any]], path: str | Path, empty_header: Sequence[str] = ()
) -> Path:
    """Write dict rows as CSV atomically, columns in the first row's order (``empty_header``
    when there are no rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else list(empty_header))
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(buffer.getvalue())
    return path


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
