"""figures/study.py: the zoo's run table, its export, reuse of committed models and resumption."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
STUDY_SCRIPT = REPO / "figures" / "study.py"
QUICK = ("--max-train-images", "128", "--batch-size", "64", "--eval-steps", "2", "--quiet")


def load_study(name: str):
    """figures/study.py as a module named ``name`` (registered while it loads: dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(name, STUDY_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    del sys.modules[spec.name]
    return module


@pytest.fixture()
def study(tmp_path, monkeypatch):
    module = load_study("semprobe_study_script")
    monkeypatch.setattr(module, "STUDY", tmp_path / "study")
    return module


def _quick(study, name, method, epochs=1, options=()):
    steps = () if method == "natural" else ("--steps", "2")
    return study.StudyRun(name, "main", method, (*QUICK, *steps, *options), dataset="digits", val_size=100,
                          epochs=epochs)


def test_the_run_table_covers_the_issue():
    runs = load_study("study_table").RUNS
    assert len({run.name for run in runs}) == len(runs)
    main = {run.method for run in runs if run.group == "main"}
    assert main == {"natural", "fgsm", "pgd_at", "trades", "mart", "tla", "scarl", "spat_madry", "spat_trades",
                    "spat_mart"}
    assert all(run.train_images is None and run.eps == "0.1" for run in runs if run.group == "main")
    grid = [run for run in runs if run.group == "grid"]
    alphas = {run.options[run.options.index("--alpha") + 1] for run in grid}
    assert len(alphas) >= 4 and len({run.eps for run in grid}) >= 3 and len(grid) == len(alphas) * 3
    ablation = " ".join(" ".join(run.options) for run in runs if run.group == "ablation")
    for flag in ("--no-info", "--no-struc", "--info infonce", "--embedding random", "--embedding onehot",
                 "--embedding nn", "--base pgd_at", "--base natural"):
        assert flag in ablation
    batch = [run for run in runs if run.group == "batch"]
    sizes = {(run.method, run.options[run.options.index("--batch-size") + 1]) for run in batch}
    assert sizes == {(m, b) for m in ("pgd_at", "scarl") for b in ("64", "128", "256", "512")}
    assert {run.train_images for run in batch} == {10_000}
    awp = [run for run in runs if run.group == "awp"]
    assert [(run.name, run.train_images) for run in awp] == [("pgd_at_awp_20k", 20_000)]
    assert "--awp-gamma" in awp[0].options
    baseline = next(run for run in runs if run.name == "pgd_at_20k")  # AWP's and Table 7's Madry AT base
    assert baseline.method == "pgd_at" and baseline.options == () and baseline.train_images == 20_000
    # every command is one the trainers accept
    from trainers.config import parse_args

    for run in runs:
        parse_args(run.argv(Path("/tmp/x")))


def test_train_exports_weights_only_models_goes_on_after_a_failure_and_then_reuses_them(study, tmp_path):
    runs = [_quick(study, "nat", "natural"), _quick(study, "at", "pgd_at")]
    bad = _quick(study, "bad", "pgd_at", options=("--lr", "-1"))
    assert study.train([bad, *runs], jobs=2, log=tmp_path / "study.log") == 1  # bad fails, the others go on
    text = (tmp_path / "study.log").read_text()
    assert "[failed" in text and "] bad: " in text and "failed: bad" in text
    assert not study.is_done(bad)
    from semprobe.models.checkpoint import load_checkpoint, read_checkpoint_file

    for run in runs:
        assert study.is_done(run)
        checkpoint = load_checkpoint(study.model_path(run))
        assert checkpoint.dataset == "digits" and checkpoint.optimizer_state is None
        raw = read_checkpoint_file(study.model_path(run))
        assert {t.dtype for t in raw["model"].values() if t.is_floating_point()} == {torch.float32}
        record = json.loads(study.model_path(run).with_suffix(".json").read_text())
        assert record["command"] == run.command() and record["best_epoch"] == 1
        assert (study.STUDY / "logs" / run.name / "metrics.jsonl").is_file()
        assert (study.STUDY / "logs" / run.name / "train.log").is_file()
        assert not (study.STUDY / "runs" / run.name).exists()
    assert json.loads((study.STUDY / "models" / "nat.json").read_text())["selection"] == "val_clean_acc"
    assert json.loads((study.STUDY / "models" / "at.json").read_text())["selection"] == "val_pgd_acc"
    stamp = study.model_path(runs[0]).stat().st_mtime_ns
    assert study.train(runs, jobs=1, log=tmp_path / "study.log") == 0
    assert study.model_path(runs[0]).stat().st_mtime_ns == stamp  # reused, not retrained
    assert "2 of 2 jobs done" in (tmp_path / "study.log").read_text()
    changed = _quick(study, "nat", "natural", options=("--seed", "1"))  # another command: retrained
    assert not study.is_done(changed)


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_an_interrupted_run_is_resumed_not_restarted(study, tmp_path):
    run = _quick(study, "at", "pgd_at", epochs=2)
    run_dir = study.STUDY / "runs" / run.name
    one_epoch = _quick(study, "at", "pgd_at", epochs=1)
    from trainers.__main__ import main as train  # in this process: the study's own run below is a process

    assert train(one_epoch.argv(run_dir)) == 0
    (run_dir / "study-run.json").write_text(json.dumps({"command": run.command()}))
    first_epoch = (run_dir / "metrics.jsonl").read_text()
    argv, how = study.trainer_argv(run)
    assert how == "resume after epoch 1" and argv[-2:] == ["--resume", str(run_dir)]
    assert study.train([run], jobs=1, log=tmp_path / "study.log") == 0
    log = (study.STUDY / "logs" / "at" / "metrics.jsonl").read_text()
    assert log.startswith(first_epoch) and len(log.splitlines()) == 2
    assert "# resume after epoch 1" in (study.STUDY / "logs" / "at" / "train.log").read_text()


def test_a_run_folder_of_another_command_starts_over(study):
    run = _quick(study, "at", "pgd_at", epochs=2)
    run_dir = study.STUDY / "runs" / run.name
    run_dir.mkdir(parents=True)
    (run_dir / "study-run.json").write_text(json.dumps({"command": "python -m trainers something else"}))
    argv, how = study.trainer_argv(run)
    assert how == "start" and argv[-1] == "--overwrite"


def test_bad_arguments_are_one_line_and_exit_2():
    result = subprocess.run([sys.executable, str(STUDY_SCRIPT), "train", "--only", "nope"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "study: error: unknown job nope; `python figures/study.py list` names them"]


def test_only_names_runs_and_analyses_and_keeps_their_order():
    result = subprocess.run([sys.executable, str(STUDY_SCRIPT), "list", "--only", "simmatrix,mart,cca"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["simmatrix", "mart", "cca", "eval_mart"]  # a run brings the analyses of its model alone


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_an_analysis_waits_for_its_model_then_is_kept_until_the_model_changes(study, tmp_path):
    run = _quick(study, "nat", "natural")
    analysis = study.Analysis("eval_nat", "eval", ("nat",), ("--attacks", "natural,pgd2", "--eps", "0.1", "--n", "40"))
    jobs = [study.analysis_job(analysis), study.training_job(run)]  # listed first, started after the model
    assert study.run_jobs(jobs, 2, tmp_path / "study.log") == 0
    result = study.STUDY / "results" / "eval_nat"
    document = json.loads((result / "eval.json").read_text())
    assert document["metadata"]["settings"]["n"] == 40 and (result / "study-job.json").is_file()
    record = json.loads((result / "study-job.json").read_text())
    assert record["command"].startswith("semprobe eval --ckpt figures/study/models/nat.pt")
    assert jobs[0].done()
    study.model_path(run).write_bytes(study.model_path(run).read_bytes() + b"\0")  # another model: not done
    assert not jobs[0].done()


def test_an_analysis_whose_model_no_job_makes_is_skipped(study, tmp_path):
    analysis = study.Analysis("eval_x", "eval", ("missing",), ("--attacks", "natural"))
    assert study.run_jobs([study.analysis_job(analysis)], 1, tmp_path / "study.log") == 1
    assert "[skipped] eval_x: needs the models missing" in (tmp_path / "study.log").read_text()


def test_every_study_analysis_is_a_valid_command():
    """The analyses' options parse (click) for the whole table, before hours of CPU are spent on them."""
    module = load_study("study_table2")
    from semprobe.cli import cli

    figures = {}
    for analysis in module.analyses(module.RUNS):
        argv = analysis.argv(Path("/s/models"), Path("/s/results"))[3:]
        context = cli.commands[analysis.command].make_context(analysis.command, list(argv))
        if analysis.command == "figures":
            figures[analysis.name] = context.params
        else:
            assert context.params["ckpt"], analysis.name
    # the figures: models by role, runs as their training logs, every paper figure asked for once
    assert figures["figures"]["robust"] == Path("/s/models/pgd_at.pt")
    assert figures["figures"]["scarl"] == Path("/s/models/scarl.pt")
    assert Path("/s/logs/scarl") in figures["figures"]["run_dirs"]
    assert len(figures["figures_batch"]["run_dirs"]) == 8 and len(figures["figures_grid"]["run_dirs"]) == 12
    from semprobe.paper.figures import FIGURE_NAMES

    asked = [name for params in figures.values() for name in params["only_text"].split(",")]
    assert sorted(asked) == sorted(FIGURE_NAMES)


def test_the_committed_zoo_stays_within_20_mb_and_its_models_are_weights_only_float32():
    models = REPO / "figures" / "study" / "models"
    files = sorted(models.glob("*.pt"))
    assert sum(path.stat().st_size for path in files) <= 20_000_000
    for path in files:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        heads = (checkpoint.get("heads") or {}).get("state_dict", {})
        tensors = [t for part in (checkpoint["model"], heads) for t in part.values() if t.is_floating_point()]
        assert tensors and all(t.dtype == torch.float32 for t in tensors), path.name
        assert checkpoint.get("optimizer") is None and checkpoint.get("resume") is None, path.name
