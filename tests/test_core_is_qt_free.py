"""The core imports no Qt, napari or magicgui: it works headless, without a display."""

import subprocess
import sys

CORE = (
    "adaptation", "cli", "diagnostics", "distances", "figures", "inference", "latents",
    "model_io", "quality", "report", "shift", "verdict", "volume_io", "_reader", "_writer",
    "_sample_data",
)  # fmt: skip


def test_core_modules_import_without_gui_packages():
    code = (
        "import sys\n"
        + "".join(f"import napari_bnadapt.{name}\n" for name in CORE)
        + "bad = [m for m in ('napari', 'qtpy', 'magicgui', 'PyQt6', 'PyQt5', 'PySide6')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {"QT_QPA_PLATFORM": "", "DISPLAY": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "PATH": ""}
    )
    assert result.returncode == 0, result.stderr
