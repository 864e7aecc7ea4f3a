"""Training faults (issue 12): non-finite weights, kills mid-write, torn metrics, Ctrl-C, bad numbers.

The kill tests run the trainer in a process of its own that monkeypatches ``torch.save``,
``os.replace`` or the metrics append so that a SIGKILL lands at a chosen instant (inside
a checkpoint write, between two writes, inside the metrics append), then recover the
run the way a user would and compare every file with an uninterrupted run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch

from semprobe.models.checkpoint import load_checkpoint, read_checkpoint_file, save_checkpoint
from semprobe.cli import main as semprobe_main
from semprobe.errors import CheckpointError
from semprobe.models import create_model
from trainers import loop, methods, rundir
from trainers.__main__ import main

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--dataset", "digits", "--arch", "small_cnn", "--max-train-images", "128", "--batch-size", "64",
         "--eval-steps", "2", "--quiet"]
# SCARL (heads, random word vectors, word centres) on the natural base: cheap, and its
# validation clean accuracy improves at both epochs, so best.pt is written twice
KILL_RUN = ["scarl", *QUICK, "--base", "natural", "--embedding", "random", "--lr", "0.2", "--epochs", "2"]


def one_line_error(captured: str) -> str:
    """The single stderr line of a refused or stopped command."""
    message = captured.strip()
    assert message and "\n" not in message, captured
    return message


def _as_python_c(script: str, argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    """In a fork of multiprocessing's fork server: what ``python -c script argv`` does, output into files."""
    for fd, path in ((1, stdout), (2, stderr)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(REPO)
    sys.argv = ["-c", *argv]
    exec(compile(script, "<string>", "exec"), {"__name__": "__main__"})


def run_script(script: str, argv: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run ``script`` (Python source, given ``argv`` as sys.argv[1:]) in a process of its own, which
    may kill or interrupt itself: a fork of a server that imported torch and the trainers once
    (multiprocessing's fork server, which computes nothing, so its forks are as clean as a fresh
    interpreter), sparing each run the 3 s of CPU of those imports."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "semprobe.cli", "trainers.cli", "trainers.loop", __name__])
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        process = context.Process(target=_as_python_c, args=(script, argv, {**os.environ, **env}, str(out), str(err)))
        process.start()
        process.join(300)
        if process.exitcode is None:
            process.kill()
            process.join()
            pytest.fail(f"{script[:40]!r} {argv} ran for over 300 s")
        return subprocess.CompletedProcess(["-c", *argv], process.exitcode, out.read_text(), err.read_text())


# ---------------------------------------------------------------- non-finite weights (item 2)


def test_weights_that_turn_non_finite_stop_the_run_before_they_are_evaluated_or_saved(tmp_path, capsys, monkeypatch):
    """A finite loss whose update makes the weights infinite: the run stops at that step."""
    good_step = methods.METHOD_STEPS["pgd_at"]

    def overflowing(ctx, x, y, progress):
        result = good_step(ctx, x, y, progress)
        if progress >= 1.5:  # the last of the two steps of epoch 2
            weight = ctx.model.linear.weight  # sqrt at 0: the loss gains 0, the gradient is infinite
            result.loss = result.loss + torch.sqrt(weight - weight.detach()).sum()
        return result

    monkeypatch.setitem(methods.METHOD_STEPS, "pgd_at", overflowing)
    run = tmp_path / "run"
    assert main(["pgd_at", *QUICK, "--steps", "2", "--epochs", "3", "--out", str(run)]) == 1
    message = one_line_error(capsys.readouterr().err)
    assert message.startswith("trainers: error: the weights became non-finite at epoch 2, step 2")
    assert "last.pt keeps epoch 1" in message
    assert load_checkpoint(run / "last.pt").epoch == 1
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_a_huge_learning_rate_stops_with_one_line_and_never_saves_non_finite_tensors(tmp_path, capsys):
    """--lr 1e3 overflows BatchNorm's running variance while the loss stays finite."""
    run = tmp_path / "run"
    assert main(["natural", *QUICK, "--epochs", "3", "--lr", "1e3", "--out", str(run)]) == 1
    assert "became non-finite" in one_line_error(capsys.readouterr().err)
    for name in ("last.pt", "best.pt"):
        if (run / name).exists():
            load_checkpoint(run / name)  # refuses non-finite weights


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return create_model("small_cnn", num_classes=10, in_channels=1)


def test_non_finite_weights_are_never_saved(tmp_path, small_model):
    with torch.no_grad():
        small_model.bn2.running_var[3] = float("inf")
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(tmp_path / "ck.pt", small_model)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("key", ["conv1.weight", "bn1.running_var"])
def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, small_model, capsys, key):
    path = save_checkpoint(tmp_path / "ck.pt", small_model)
    raw = torch.load(path, weights_only=True)
    raw["model"][key].view(-1)[0] = float("nan")
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=f"non-finite.*{key}"):
        load_checkpoint(path)
    foreign = tmp_path / "foreign.pt"
    torch.save(raw["model"], foreign)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(foreign, arch="small_cnn", normalization="none")
    with pytest.raises(SystemExit) as exit_info:
        semprobe_main(["info", "--ckpt", str(path)])
    assert exit_info.value.code == 2
    assert "non-finite" in one_line_error(capsys.readouterr().err)


# ---------------------------------------------------------------- SIGKILL at every write (item 3)

KILLER = """
import json, os, signal, sys
import torch
from trainers import rundir
from trainers.__main__ import main

kind, name, nth = os.environ["KILL_AT"].split(":")
nth, calls = int(nth), []


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def counted(target):
    # True on the nth event that concerns the run file `name`
    if os.path.basename(str(target)).startswith((name, "." + name + ".")):
        calls.append(target)
        return len(calls) == nth
    return False


real_save, real_replace, real_append = torch.save, os.replace, rundir.append_metrics


def save(obj, target, *args, **kwargs):
    real_save(obj, target, *args, **kwargs)
    if kind == "write" and counted(target):
        os.truncate(target, os.path.getsize(target) // 2)  # half-written temporary file
        die()


def replace(source, target, *args, **kwargs):
    real_replace(source, target, *args, **kwargs)
    if kind == "after" and counted(target):
        die()


def append(run_dir, record):
    if kind == "append" and counted(rundir.METRICS):
        line = json.dumps(record) + "\\n"
        with open(os.path.join(run_dir, rundir.METRICS), "a") as handle:
            handle.write(line[: len(line) // 2])  # torn line
        die()
    real_append(run_dir, record)


torch.save, os.replace, rundir.append_metrics = save, replace, append
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The two-epoch run the interrupted ones must reproduce."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main([*KILL_RUN, "--out", str(run)]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = load_checkpoint(run / "best.pt")
    assert best.epoch == 2 and records[0]["val_clean_acc"] < records[1]["val_clean_acc"]  # best.pt written twice
    return run


def without_times(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if not k.endswith("time_s")} for record in records]


def assert_same_tensors(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_same_tensors(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for one, two in zip(a, b):
            assert_same_tensors(one, two)
    else:
        assert a == b


def assert_same_run(run: Path, reference: Path) -> None:
    """Same files, same weights (model, heads, word vectors, optimizer, word centres), same metrics."""
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in reference.iterdir())
    for name in ("last.pt", "best.pt"):
        mine, theirs = (read_checkpoint_file(folder / name) for folder in (run, reference))
        for key in ("epoch", "model", "heads", "word_embedding", "optimizer", "scheduler", "resume"):
            assert_same_tensors(mine.get(key), theirs.get(key))
        assert {k: v for k, v in mine["metrics"].items() if not k.endswith("time_s")} == {
            k: v for k, v in theirs["metrics"].items() if not k.endswith("time_s")}
    assert without_times(run) == without_times(reference)


@pytest.mark.parametrize(
    ("kill_at", "recovery"),
    [
        ("append:metrics.jsonl:1", "restart"),  # torn first metrics line, no checkpoint yet
        ("write:last.pt:1", "restart"),  # inside the first last.pt write
        ("after:last.pt:1", "resume"),  # between last.pt and best.pt of epoch 1
        ("write:best.pt:1", "resume"),  # inside the first best.pt write
        ("append:metrics.jsonl:2", "resume"),
        ("write:last.pt:2", "resume"),
        ("after:last.pt:2", "resume"),  # the run's last epoch: only best.pt is missing
        ("write:best.pt:2", "resume"),
    ],
)
def test_a_sigkill_at_any_write_recovers_the_weights_of_an_uninterrupted_run(tmp_path, uninterrupted, kill_at,
                                                                            recovery):
    run = tmp_path / "run"
    killed = run_script(KILLER, [*KILL_RUN, "--out", str(run)], KILL_AT=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    if recovery == "restart":  # no epoch was finished: the same command starts again, no --overwrite
        assert main([*KILL_RUN, "--out", str(run)]) == 0
    else:
        assert main([*KILL_RUN, "--resume", str(run)]) == 0
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert_same_run(run, uninterrupted)


def test_a_run_of_the_earlier_layout_with_last_state_pt_still_resumes(tmp_path, uninterrupted):
    """Runs written before the resume state moved into last.pt keep it in last_state.pt."""
    run = tmp_path / "run"
    assert main([*KILL_RUN[:-1], "1", "--ramp-epochs", "2", "--out", str(run)]) == 0  # epoch 1 of the 2
    raw = read_checkpoint_file(run / "last.pt")
    torch.save({"epoch": 1, **raw.pop("resume")}, run / "last_state.pt")
    torch.save(raw, run / "last.pt")
    assert main([*KILL_RUN, "--resume", str(run)]) == 0
    assert_same_run(run, uninterrupted)


# ---------------------------------------------------------------- torn metrics line (item 4)


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    run = tmp_path / "run"
    argv = ["natural", *QUICK, "--epochs", "1", "--out", str(run)]
    assert main(argv) == 0
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 2, "lr": 0.1, "train_lo')
    assert main(["natural", *QUICK, "--epochs", "2", "--resume", str(run)]) == 0
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_damaged_metrics_line_before_the_last_is_one_line_exit_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["natural", *QUICK, "--epochs", "1", "--out", str(run)]) == 0
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text("{not json\n" + good)
    assert main(["natural", *QUICK, "--epochs", "2", "--resume", str(run)]) == 2
    message = one_line_error(capsys.readouterr().err)
    assert "metrics.jsonl" in message and "line 1" in message


# ---------------------------------------------------------------- Ctrl-C (item 5)

INTERRUPTER = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even under a shell that ignores it
from trainers import methods
from trainers.__main__ import main

at = float(os.environ["INTERRUPT_AT"])
good = methods.METHOD_STEPS[sys.argv[1]]


def step(ctx, x, y, progress):
    if progress >= at:
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C delivers
    return good(ctx, x, y, progress)


methods.METHOD_STEPS[sys.argv[1]] = step
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_before_the_first_epoch_is_one_line_and_the_run_can_start_again(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["natural", *QUICK, "--epochs", "1", "--out", str(run)]
    interrupted = run_script(INTERRUPTER, argv, INTERRUPT_AT="0")
    assert interrupted.returncode == 130
    message = one_line_error(interrupted.stderr)
    assert message.startswith("trainers: interrupted") and "no epoch" in message
    assert main(["natural", *QUICK, "--epochs", "1", "--resume", str(run)]) == 2
    assert "no finished epoch" in one_line_error(capsys.readouterr().err)
    assert main(argv) == 0  # without --overwrite
    assert load_checkpoint(run / "last.pt").epoch == 1


def test_ctrl_c_after_an_epoch_names_the_epoch_kept_and_the_resume(tmp_path):
    run = tmp_path / "run"
    interrupted = run_script(INTERRUPTER, ["natural", *QUICK, "--epochs", "2", "--out", str(run)], INTERRUPT_AT="1")
    assert interrupted.returncode == 130
    message = one_line_error(interrupted.stderr)
    assert "last.pt keeps epoch 1" in message and f"--resume {run}" in message
    assert main(["natural", *QUICK, "--epochs", "2", "--resume", str(run)]) == 0


def test_a_folder_that_is_not_a_run_is_still_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"something": "else"}\n')
    assert main(["natural", *QUICK, "--epochs", "1", "--out", str(run)]) == 2
    assert "config.json" in one_line_error(capsys.readouterr().err)
    assert (run / "config.json").read_text() == '{"something": "else"}\n'


# ---------------------------------------------------------------- non-finite options (item 6)


@pytest.mark.parametrize(
    "argv",
    [
        ["pgd_at", "--lr", "inf"],
        ["pgd_at", "--lr", "1e999"],
        ["pgd_at", "--weight-decay", "inf"],
        ["pgd_at", "--lr-gamma", "inf"],
        ["trades", "--beta", "inf"],
        ["scarl", "--tau", "inf"],
        ["scarl", "--c", "inf"],
        ["scarl", "--lambda1", "inf"],
        ["scarl", "--ramp-epochs", "inf"],
        ["tla", "--tla-weight", "inf"],
    ],
)
def test_non_finite_numbers_are_refused_before_anything_is_written(tmp_path, capsys, argv):
    out = tmp_path / "run"
    assert main([argv[0], *QUICK, *argv[1:], "--out", str(out)]) == 2
    message = one_line_error(capsys.readouterr().err)
    assert f"{argv[1]} must be a finite number" in message
    assert not out.exists()


# ---------------------------------------------------------------- unwritable --out (item 7)


def refuse_data_loading(monkeypatch):
    def no_work(config):
        raise AssertionError("data were loaded before --out was checked")

    monkeypatch.setattr(loop, "load_splits", no_work)


def test_an_out_on_a_read_only_file_system_is_refused_before_any_work(capsys, monkeypatch):
    if not Path("/sys").is_dir():
        pytest.skip("needs Linux's /sys, where no one can create a folder")
    refuse_data_loading(monkeypatch)
    assert main(["natural", *QUICK, "--out", "/sys/semprobe-run"]) == 2
    message = one_line_error(capsys.readouterr().err)
    assert "cannot write" in message and "/sys" in message


def test_a_read_only_out_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("permissions do not bind this user (root)")
        refuse_data_loading(monkeypatch)
        assert main(["natural", *QUICK, "--out", str(folder / "run")]) == 2
        assert "cannot write" in one_line_error(capsys.readouterr().err)
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------- raw pickle (item 13)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def test_a_raw_pickle_checkpoint_is_refused_without_torch_warnings(tmp_path):
    path = tmp_path / "raw.pt"
    path.write_bytes(pickle.dumps({"model": _RunsCode()}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="could run code"):
            read_checkpoint_file(path)
    assert [str(w.message) for w in caught] == []


def test_stale_temporary_files_of_a_run_are_named_by_rundir():
    assert rundir.is_temporary(".last.pt.k2j3h4.tmp") and rundir.is_temporary(".metrics.jsonl.x.tmp")
    assert not rundir.is_temporary("last.pt") and not rundir.is_temporary(".other.x.tmp")
