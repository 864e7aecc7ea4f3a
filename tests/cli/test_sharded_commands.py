"""``torchrun -m semprobe eval|cca|alpha-curve`` on two processes (Gloo, CPU) writes what one process writes.

Each command runs once in this process and once under torchrun with two processes, on a
number of chunks that two processes cannot share evenly (40 images in chunks of 12), and
the outputs must agree in every number and per-image outcome: only the timing, the
creation time, the command line and the recorded process count may differ. A process that
fails stops the job with one line, and nothing is written. (simmatrix takes its features
from the code cca does, tested here; its statistics run on the main process alone.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

import pyautoattack.checks

from semprobe.attacks import autoattack

pytestmark = [pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs the Gloo backend"),
              pytest.mark.slow]  # end to end: torchrun starts two processes that import torch

HELPER = Path(__file__).with_name("sharded_run.py")
sys.path.insert(0, str(HELPER.parent))
from sharded_run import warn_every_run  # noqa: E402  (the knob the torchrun processes use)
SQUARE_QUERIES = 100
# what may differ between one process and two: timing, provenance and the process count
VARIABLE_KEYS = {"seconds", "created", "command", "processes"}
SMALL = ["--n-images", "40", "--batch-size", "12", "--eps", "0.1", "--device", "cpu", "--quiet"]
ATTACKED = ["--attack", "pgd", "--steps", "3"]
COMMANDS = {
    "eval": (["eval", "--attacks", "natural,fgsm,pgd5,cw5,apgd-ce,square", "--sweep-eps", "0,0.05",
              "--sweep-steps", "1,3", *SMALL], ["eval.json", "eval.md", "accuracy_vs_eps.json", "accuracy_vs_steps.json"]),
    "cca": (["cca", "--embedding", "random:16:0", "--n-pairs", "40", "--n-boot", "30", "--n-perm", "30",
             "--project-adversarial", *ATTACKED, *SMALL], ["cca.json"]),
    "alpha-curve": (["alpha-curve", "--alphas", "0,0.5,1", "--steps", "3", *SMALL], ["alpha_curve.json"]),
}


def torchrun(args, **environment) -> subprocess.CompletedProcess:
    """``semprobe ARGS`` under torchrun, two processes on one thread each (through the helper script)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(HELPER),
               *[str(a) for a in args]]
    return subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1", **environment}, capture_output=True,
                          text=True, timeout=300)


def comparable(value):
    """``value`` without the keys that may differ between runs."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in VARIABLE_KEYS}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


@pytest.fixture
def one_thread():
    """Compute on one thread here, as each torchrun process does, so that the floats agree bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_two_processes_write_what_one_writes(name, digits_ckpt, run_cli, tmp_path, monkeypatch, one_thread):
    args, documents = COMMANDS[name]
    args = [*args, "--ckpt", digits_ckpt]
    monkeypatch.setattr(autoattack, "STANDARD_SQUARE_QUERIES", SQUARE_QUERIES)
    monkeypatch.setattr(pyautoattack.checks, "check_dynamic", pyautoattack.checks.check_dynamic)
    warn_every_run()
    code, _, err = run_cli([*args, "--out", tmp_path / "one"])
    assert code == 0, err
    if name == "eval":  # AutoAttack's warnings reach stderr, one line each
        assert any(line.startswith("warning: digits, apgd-ce, images 0-11: test warning for")
                   for line in err.splitlines()), err
    finished = torchrun([*args, "--out", tmp_path / "two"], SQUARE_QUERIES=str(SQUARE_QUERIES), AA_WARNS="1")
    assert finished.returncode == 0, finished.stderr[-3000:]

    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    for document in documents:
        one, two = ((tmp_path / run / document).read_text() for run in ("one", "two"))
        if document.endswith(".md"):
            assert two == one
            continue
        one, two = json.loads(one), json.loads(two)
        assert (one["metadata"]["settings"].get("processes"), two["metadata"]["settings"].get("processes")) == (1, 2)
        assert comparable(two) == comparable(one), document
    if name == "eval":
        results = json.loads((tmp_path / "two" / "eval.json").read_text())["checkpoints"]["digits"]["results"]
        flags = {r["attack"]["name"]: r["per_image"] for r in results}
        assert len(flags["square"]) == 40 and flags["pgd5"] != flags["natural"]  # the attacks did something
        assert flags["apgd-ce"].count("1") <= flags["natural"].count("1")
        # AutoAttack's warnings of each chunk, from both processes, in chunk order (40 images in chunks of 12)
        warnings = {r["attack"]["name"]: r["warnings"] for r in results}
        assert warnings["pgd5"] == []
        for attack in ("apgd-ce", "square"):
            assert [w.split(":")[0] for w in warnings[attack]] == ["images 0-11", "images 12-23", "images 24-35",
                                                                  "images 36-39"], warnings[attack]
        assert "test warning for" in (tmp_path / "two" / "eval.md").read_text()


@pytest.mark.parametrize("fail_at, message", [
    ("setup", "semprobe: error: process 1 of 2: process 1 finds no digits here"),
    ("attack", "semprobe: error: process 1 of 2: RuntimeError: boom in the second chunk"),
])
def test_a_failing_process_stops_the_job_with_one_line_and_writes_nothing(fail_at, message, digits_ckpt, tmp_path):
    out = tmp_path / "out"
    finished = torchrun(["eval", "--ckpt", digits_ckpt, "--attacks", "natural,pgd5", *SMALL, "--out", out],
                        FAIL_AT=fail_at)
    assert finished.returncode != 0
    errors = [line for line in finished.stderr.splitlines() if line.startswith("semprobe: error:")]
    assert errors == [message], finished.stderr[-3000:]
    assert not out.exists()
    assert "wrote" not in finished.stdout
