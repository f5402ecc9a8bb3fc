"""Detecting an inverted contrast from the model file alone.

After AdaBN, the first BatchNorm layer's per-channel histograms on the target are compared
with the fingerprint's (the source's) and with their mirror images; an inverted contrast
matches the mirror (see :mod:`napari_bnadapt.diagnostics.polarity`). Needs a fingerprint
and a network that takes hooks (not TorchScript).
"""

from __future__ import annotations

from ..adabn.sampling import Patch, TargetSet
from ..diagnostics.capture import can_capture, capture_patches_steps
from ..diagnostics.fingerprinting import stored_reference
from ..diagnostics.latents import LatentConfig
from ..diagnostics.polarity import PolarityCheck, polarity_check
from ..jobs import Steps
from ..model.loaded import LoadedModel


def check_polarity_steps(
    model: LoadedModel,
    targets: TargetSet,
    patches: list[Patch],
    config: LatentConfig,
) -> Steps[PolarityCheck | None]:
    """The polarity check of ``model`` (holding the AdaBN statistics) on the target; None
    when it cannot be made (no fingerprint, or no hooks)."""
    reference = stored_reference(model, config)
    if reference is None or not can_capture(model):
        return None
    capture = yield from capture_patches_steps(model, targets, patches, config, "polarity")
    return polarity_check(capture, reference)
