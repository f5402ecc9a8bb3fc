"""The strokes a model was taught with, kept inside its file so they can be painted on.

A stroke cure records how many strokes it learnt from; the strokes themselves travel with
the model too, sparse (each labelled pixel's coordinates and label, on the target's own
grid), so that whoever opens the taught model (another day, another person) can bring them
back over the target, see what the network was told, and paint more where it is still
wrong. They are the user's annotations, not a result: a file's strokes are checked as
strictly as its weights before anything uses them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ModelFileError

#: The most labelled pixels a file may declare (a stroke cure's strokes are far fewer;
#: this only refuses a damaged or hostile file before it allocates).
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class PaintedStrokes:
    """Painted labels (0 = none, 1, 2, … as the stroke cures read them) on a target grid.

    Parameters
    ----------
    shape
        The target's spatial shape the strokes were painted on.
    coords
        ``(N, len(shape))`` coordinates of the labelled pixels.
    labels
        ``(N,)`` their labels (≥ 1).
    target
        The name of the target they were painted on.
    """

    shape: tuple[int, ...]
    coords: np.ndarray
    labels: np.ndarray
    target: str = "target"

    @classmethod
    def of(cls, array: np.ndarray, target: str) -> PaintedStrokes:
        """The labelled pixels of a dense label array."""
        array = np.asarray(array)
        coords = np.argwhere(array > 0)
        dtype = np.int32 if max(array.shape, default=0) < 2**31 else np.int64
        return cls(
            tuple(int(n) for n in array.shape), coords.astype(dtype), array[array > 0], target
        )

    @property
    def pixels(self) -> int:
        return len(self.labels)

    def to_array(self) -> np.ndarray:
        """The dense label array (``uint8``, or ``uint16`` beyond 255 classes)."""
        high = int(self.labels.max()) if self.pixels else 0
        out = np.zeros(self.shape, np.uint8 if high < 256 else np.uint16)
        out[tuple(self.coords.T)] = self.labels
        return out

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether these strokes were painted on a grid of ``shape``."""
        return tuple(int(n) for n in shape) == self.shape

    def describe(self) -> str:
        """ "1,234 labelled pixels painted on stack.tif (64×256×256)"."""
        size = "×".join(str(n) for n in self.shape)
        return f"{self.pixels:,} labelled pixels painted on {self.target} ({size})"

    def to_document(self) -> dict[str, Any]:
        """Tensors and plain values, for ``torch.save`` read back with ``weights_only``."""
        return {
            "shape": list(self.shape),
            "coords": torch.from_numpy(np.ascontiguousarray(self.coords)),
            "labels": torch.from_numpy(self.labels.astype(np.int16)),
            "target": self.target,
        }

    @classmethod
    def from_document(cls, document: Any, classes: int, name: str) -> PaintedStrokes:
        """Read :meth:`to_document` back, refusing anything a painted label array could not
        have been: wrong types, coordinates outside the grid, labels beyond ``classes``."""
        try:
            shape = tuple(document["shape"])
            coords, labels = document["coords"], document["labels"]
            target = document.get("target") or "target"
        except (KeyError, TypeError, AttributeError):
            raise _damaged(name, "its parts are missing") from None
        if not (
            len(shape) in (2, 3)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
            and isinstance(target, str)
        ):
            raise _damaged(name, f"its grid {shape!r} is not a 2D or 3D shape")
        if not isinstance(coords, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise _damaged(name, "its coordinates or labels are not arrays")
        coords, labels = coords.numpy(), labels.numpy()
        count = len(labels)
        if (
            coords.dtype.kind not in "iu"
            or labels.dtype.kind not in "iu"
            or coords.shape != (count, len(shape))
            or labels.shape != (count,)
            or count > min(MAX_PIXELS, math.prod(shape))
        ):
            raise _damaged(name, "its coordinates and labels do not match")
        if count and (coords.min() < 0 or (coords >= np.array(shape)).any()):
            raise _damaged(name, "a coordinate lies outside its grid")
        if count and (labels.min() < 1 or labels.max() > max(2, classes)):
            raise _damaged(name, f"a label lies outside 1…{max(2, classes)}")
        stored = labels.astype(np.uint8 if max(2, classes) < 256 else np.uint16)
        return cls(shape, coords, stored, target)


def _damaged(name: str, why: str) -> ModelFileError:
    return ModelFileError(
        f"{name}: the strokes stored with the model are damaged ({why}): re-save the model "
        "from the tool that taught it, or reset it"
    )
