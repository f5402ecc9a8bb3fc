"""What the package says about itself to pip, the napari hub and citing users: its licence
and the papers of the methods it implements."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from napari_bnadapt.adabn.config import CURES

ROOT = Path(__file__).parents[1]
#: A title fragment of the paper behind each cure (or option) the package implements.
PAPERS = {
    "adabn": "Batch Normalization For Practical Domain Adaptation",
    "tent": "Tent: Fully Test-Time Adaptation",
    "fda": "FDA: Fourier Domain Adaptation",
    "self-training": "Mean teachers are better role models",
    "--prior-strength": "covariate shift adaptation",
}


def test_the_licence_file_is_the_one_pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "napari-bnadapt developers" in text


def test_the_citation_file_cites_every_implemented_method():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "BSD-3-Clause"
    titles = " | ".join(reference["title"] for reference in citation["references"])
    for method, paper in PAPERS.items():
        assert method.startswith("--") or any(cure.startswith(method) for cure in CURES)
        assert paper in titles, f"{method}: {paper!r} is not cited"
    assert "FIB-SEM cell segmentation" in titles  # the README's Dice figures (Stenger et al.)
