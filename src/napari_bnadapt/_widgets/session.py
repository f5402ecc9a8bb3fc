"""What the plugin's dock widgets share in one viewer: the model and its adapted copy.

npe2 builds each dock widget on its own, handing it only the viewer, so widgets of the same
viewer find their shared :class:`Session` through :func:`session_for`, keyed weakly by the
viewer (closing the viewer frees it).
"""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal

from ..adapt.api import reset
from ..model.loaded import LoadedModel

_SESSIONS: weakref.WeakKeyDictionary[Any, Session] = weakref.WeakKeyDictionary()


class Session:
    """The loaded model (always with its source statistics), the adapted copy, the device.

    ``model`` is never modified by adaptation: the adapted statistics live in
    ``adapted``, a copy, so *Reset to source* only has to forget it.
    """

    model_changed = Signal(object)
    adapted_changed = Signal(object)
    diagnosis_changed = Signal(object)
    #: (mask before, mask after): an adapted mask was added next to a source one.
    masks_ready = Signal(object, object)

    def __init__(self) -> None:
        self.model: LoadedModel | None = None
        self.adapted: LoadedModel | None = None
        self.device: str = "auto"
        self.diagnosis: Any = None

    @property
    def current(self) -> LoadedModel | None:
        """The model segmentation uses: the adapted copy if there is one."""
        return self.adapted if self.adapted is not None else self.model

    def set_model(self, model: LoadedModel) -> None:
        """Use ``model``; a file that was saved adapted becomes source + adapted copy."""
        if model.adaptation is not None:
            source = model.copy()
            reset(source)
            self.model, self.adapted = source, model
        else:
            self.model, self.adapted = model, None
        self.diagnosis = None
        self.model_changed.emit(self.model)
        self.adapted_changed.emit(self.adapted)

    def set_adapted(self, adapted: LoadedModel | None) -> None:
        self.adapted = adapted
        self.adapted_changed.emit(adapted)

    def reset(self) -> None:
        """Back to the source statistics (the source model was never touched)."""
        self.set_adapted(None)

    def set_diagnosis(self, diagnosis: Any) -> None:
        self.diagnosis = diagnosis
        self.diagnosis_changed.emit(diagnosis)


def session_for(viewer: Any) -> Session:
    """The session of ``viewer``, created on first use."""
    if viewer not in _SESSIONS:
        _SESSIONS[viewer] = Session()
    return _SESSIONS[viewer]


def live_statistics(session: Session) -> str:
    """Which statistics segmentation uses now, in one line."""
    if session.model is None:
        return "Live statistics: no model loaded"
    adapted = session.adapted
    if adapted is None:
        return "Live statistics: source (as trained)"
    record = adapted.adaptation
    if record is None:
        return "Live statistics: adapted"
    undone = f"; {record.undone} undone" if record.undone else ""
    return (
        f"Live statistics: adapted to {record.target} ({record.in_force}, "
        f"{record.patches} patches{undone})"
    )
