"""The GPU check runs unattended: its CPU dry path works here and writes its figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_its_dry_path_and_writes_json(tmp_path):
    out = tmp_path / "gpu.json"
    steps = "environment,predict_2d,stream_resampled,adapt,strokes,out_of_memory"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--json", str(out), "--dry",
         "--steps", steps],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["mode"].startswith("dry")
    assert [s["status"] for s in figures["steps"].values()] == ["ok"] * 6
    assert figures["steps"]["stream_resampled"]["masks_equal_in_memory"]
    assert figures["steps"]["out_of_memory"]["halved"]
    assert figures["steps"]["strokes"]["steps"] > 0 and figures["steps"]["strokes"]["cpu_steps"] > 0
    assert "GPU check (dry" in done.stdout


def test_gpu_check_says_what_it_cannot_do_without_torch(tmp_path):
    """Without torch it writes the JSON with the reason and exits cleanly."""
    out = tmp_path / "gpu.json"
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('no torch here')\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(blocker)},
    )  # fmt: skip
    assert done.returncode == 0
    assert "torch is not installed" in json.loads(out.read_text())["problem"]
    assert "cannot run" in done.stdout
