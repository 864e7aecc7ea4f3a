"""benchmarks/gpu_check.sh in its CPU quick mode: the control flow of the prepared GPU check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_the_gpu_check_runs_its_cpu_quick_mode_and_writes_every_measurement(tmp_path):
    out = tmp_path / "results" / "gpu.md"
    finished = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--quick",
                               "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                                   "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"})
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["quick"] and report["device"] == "cpu" and report["device_name"] == "CPU"
    assert report["pgd"]["floor_s"] > 0 and report["pgd"]["pgd_s"] > 0 and report["pgd"]["peak_mib"] is None
    assert list(report["training"]) == ["trades fp32, DataLoader", "trades bf16, on device", "scarl fp32, DataLoader",
                                        "scarl bf16, on device", "TRADES reference loop (fp32, DataLoader)"]
    assert all(row["step_s"] > 0 for row in report["training"].values())
    text = out.read_text()
    assert "QUICK (control flow only)" in text and "(target <= 0.5)" in text and "(target <= 1.05)" in text
    assert "gpu_check: tests marked cuda" in finished.stdout  # the cuda tests ran first (and skipped here)


def test_the_gpu_check_without_a_gpu_says_how_to_run_it_on_the_cpu(tmp_path):
    finished = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cuda",
                               "--out", str(tmp_path / "r.md")], capture_output=True, text=True, timeout=120)
    if finished.returncode == 0:
        pytest.skip("this machine has a GPU")
    assert finished.returncode == 2 and finished.stderr.strip().count("\n") == 0
    assert "--device cpu --quick" in finished.stderr and not (tmp_path / "r.md").exists()
