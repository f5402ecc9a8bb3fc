"""User-facing errors.

Every error a user can cause by their input is a :class:`BnAdaptError`: its message is one
line that names the problem and what to do. The CLI prints it without a traceback and exits
with code 2; the widgets show it as a napari notification.
"""

from __future__ import annotations

import math


class BnAdaptError(Exception):
    """An expected problem with the user's input; the message says what to do."""


class InputDataError(BnAdaptError, ValueError):
    """The image data cannot be used (empty, NaN, wrong shape or channels, unreadable)."""


class OutputPathError(BnAdaptError):
    """An output path would write over an input (or another output). Deliberately not a
    ``ValueError``: napari's writer dispatch takes a ``ValueError`` for "this writer does
    not apply" and would hide the message."""


class ModelFileError(BnAdaptError, ValueError):
    """A model file is missing, corrupt, unsafe, or not a model."""


class UntrustedCodeError(ModelFileError):
    """A model needs code shipped with it to be imported (run); the user has not agreed."""


class NotAdaptableError(BnAdaptError, ValueError):
    """The model has no BatchNorm statistics that could be re-estimated."""


class CancelledError(BnAdaptError):
    """The user cancelled a long run; nothing was changed."""


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of a library's error message, shortened: what a one-line error
    quotes of the cause."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else "no detail"


def require_finite(config: object) -> None:
    """Refuse a config whose numbers (floats, and floats in tuples) include NaN or
    infinity: each field's own range check would let NaN through (every comparison with
    NaN is false)."""
    for name, value in vars(config).items():
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                raise InputDataError(
                    f"{name.replace('_', ' ')} must be a finite number, got {item}"
                )


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputDataError` with ``message`` (what is wrong, what to do) unless
    ``condition`` holds: the one-line check every config validates its options with."""
    if not condition:
        raise InputDataError(message)
