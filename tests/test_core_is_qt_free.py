"""The core imports no Qt, napari or magicgui: it works headless, without a display."""

import pkgutil
import subprocess
import sys

import napari_bnadapt


def core_modules() -> list[str]:
    """Every module of the package except the napari widgets."""
    found = pkgutil.walk_packages(napari_bnadapt.__path__, prefix="napari_bnadapt.")
    return sorted(m.name for m in found if "._widgets" not in m.name)


def test_core_modules_import_without_gui_packages():
    modules = core_modules()
    assert (
        "napari_bnadapt.adapt.engine" in modules
        and "napari_bnadapt.adabn.estimation" in modules
        and "napari_bnadapt._reader" in modules
    )
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + "bad = [m for m in ('napari', 'qtpy', 'magicgui', 'PyQt6', 'PyQt5', 'PySide6')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {"QT_QPA_PLATFORM": "", "DISPLAY": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "PATH": ""}
    )
    assert result.returncode == 0, result.stderr
