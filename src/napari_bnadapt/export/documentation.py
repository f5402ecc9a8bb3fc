"""The documentation page of an exported package: what was adapted, and how to undo it."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..model.loaded import LoadedModel

UNDO = """## How to undo the adaptation

The network's weights are those of the source model; only the BatchNorm statistics
(running mean and variance){params} were re-estimated on the target data{steps}. The source
statistics travel in `bnadapt_tensors.pt` (a plain tensor file, read with
`torch.load(..., weights_only=True)`):

- in napari-bnadapt, open this package (`bnadapt info package.zip`, or the Model widget)
  and press **Reset to source statistics**, or run
  `bnadapt adapt --model package.zip --reset --out source.pt`;
- elsewhere, use the parent package{parent}.
"""


def write_documentation(model: LoadedModel, path: Path) -> Path:
    """Write the package's README (Markdown) to ``path``."""
    record = model.adaptation
    parent = (model.metadata.get("bioimageio") or {}).get("name")
    lines = [
        f"# {model.name}",
        "",
        f"A {model.dims}D segmentation network ({', '.join(model.classes)}), exported by "
        f"napari-bnadapt {__version__}.",
        "",
        f"Input normalisation: {model.normalization.describe()}.",
        "",
    ]
    steps = "; ".join(step.describe() for step in model.input_steps)
    if record is None:
        lines += ["The network holds its source (training) BatchNorm statistics.", ""]
    else:
        lines += [
            "## What was adapted",
            "",
            record.summary(),
            "",
            f"- cure: {record.cure}; estimator: {record.mode}; blend α: {record.alpha:g}",
            f"- target: {record.target} ({record.patches} patches of "
            f"{'×'.join(map(str, record.patch_size))} px)",
            f"- when: {record.created or 'unknown'}; software: {record.software or 'unknown'}",
            f"- input steps, compiled into the network in front of it: {steps or 'none'}",
            "",
            UNDO.format(
                params=" and, for TENT, the BatchNorm affine parameters"
                if model.source_weights
                else "",
                parent=f" ({parent})" if parent else " it was adapted from, if you have it",
                steps=", and the input steps above put in front of the network"
                if model.input_steps
                else "",
            ),
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
