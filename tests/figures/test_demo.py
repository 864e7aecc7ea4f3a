"""figures/demo.py: the job runner, the dataset fallback, the training cache, and a whole smoke run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_SCRIPT = REPO / "figures" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    sys.path.insert(0, str(DEMO_SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("semprobe_demo_script", DEMO_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]
    sys.path.remove(str(DEMO_SCRIPT.parent))


def _python_job(demo, name, code, after=()):
    return demo.Job(name, ["-c", code], tuple(after), display=name)


def test_jobs_run_after_what_they_wait_for(demo, tmp_path):
    log = tmp_path / "order.txt"
    append = "import time, sys; time.sleep({}); open(sys.argv[1], 'a').write('{}\\n')"
    jobs = [_python_job(demo, "late", append.format(0, "late"), after=["slow"]),
            _python_job(demo, "slow", append.format(0.5, "slow")),
            _python_job(demo, "fast", append.format(0, "fast"))]
    for job in jobs:
        job.argv.append(str(log))
    demo.run_jobs(jobs, workers=2, logs=tmp_path / "logs")
    order = log.read_text().split()
    assert order.index("slow") < order.index("late") and sorted(order) == ["fast", "late", "slow"]
    assert all(job.seconds > 0 for job in jobs)


def test_a_failing_job_stops_the_demo_with_its_last_lines(demo, tmp_path, capsys):
    jobs = [_python_job(demo, "broken", "import sys; print('what went wrong'); sys.exit(3)"),
            _python_job(demo, "never", "open('never-ran', 'w')", after=["broken"])]
    with pytest.raises(SystemExit) as stopped:
        demo.run_jobs(jobs, workers=1, logs=tmp_path / "logs")
    assert stopped.value.code == 1
    out = capsys.readouterr().out
    assert "[failed] broken (exit 3)" in out and "what went wrong" in out
    assert not (REPO / "never-ran").exists()


@pytest.mark.parametrize("args", [["--aa-n", "0"], ["--jobs", "two"], ["--profile", "huge"]])
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path, args):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, str(DEMO_SCRIPT), "--out", str(out), "--cache", str(tmp_path / "c")] + args,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("demo: error: "), result.stderr
    assert not out.exists() and not (tmp_path / "c").exists() and list(tmp_path.iterdir()) == []


def test_a_failed_demo_keeps_the_old_outputs_and_no_staging_folder(demo, tmp_path, monkeypatch):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "summary.md").write_text("the previous run")

    def failing_run(*args, **kwargs):
        raise SystemExit(1)

    monkeypatch.setattr(demo, "_run", failing_run)
    with pytest.raises(SystemExit):
        demo.main(["--out", str(out), "--cache", str(tmp_path / "c")])
    assert (out / "summary.md").read_text() == "the previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_training_run_is_cached_by_its_command(demo, tmp_path):
    job = demo.Job("train x", ["-c", "pass"], display="python -m trainers x --epochs 2",
                   done_marker=tmp_path / "x" / "demo-run.json")
    assert not demo._is_cached(job)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "best.pt").write_bytes(b"")
    job.done_marker.write_text(json.dumps({"command": job.display}))
    assert demo._is_cached(job)
    job.display = "python -m trainers x --epochs 3"
    assert not demo._is_cached(job)


def test_dataset_falls_back_to_digits_in_one_line(demo, monkeypatch):
    import semprobe.data
    from semprobe.errors import DataError

    calls = []

    def unavailable(name, split, data_dir=None, download=False, **kwargs):
        calls.append(download)
        raise DataError("fashion-mnist is not in any data folder\nsecond line")

    monkeypatch.setattr(semprobe.data, "load_dataset", unavailable)
    dataset, line = demo.choose_dataset(None)
    assert dataset == "digits" and calls == [False, True]
    assert "\n" not in line and "digits instead" in line and "second line" not in line
    calls.clear()
    assert demo.choose_dataset(None, allow_download=False)[0] == "digits" and calls == [False]


def test_word_components_keep_the_geometry_they_can(demo, tmp_path):
    import numpy as np

    from semprobe.data import dataset_info
    from semprobe.words import class_vectors

    path = tmp_path / "pcs.npy"
    demo.write_word_components(path, "digits", 3)
    components = np.load(path)
    info = dataset_info("digits")
    vectors = class_vectors("glove", info.classes, info.phrases).vectors
    centred = vectors - vectors.mean(axis=0)
    assert components.shape == (10, 3)
    # the top components are an orthogonal projection: their Gram matrix is the best rank-3 fit of the centred one
    singular = np.linalg.svd(centred, compute_uv=False)
    assert np.allclose(np.linalg.svd(components, compute_uv=False), singular[:3])
    assert np.linalg.norm(centred @ centred.T - components @ components.T) == pytest.approx(
        np.sqrt((singular[3:] ** 4).sum()), rel=1e-6)


def _smoke(demo, tmp_path, capsys, monkeypatch, *options) -> str:
    """Run the smoke demo from ``tmp_path`` in this process (its jobs are processes, as always; the
    command line's own process is under test in test_bad_arguments_are_one_line_and_write_nothing);
    returns what it said."""
    monkeypatch.chdir(tmp_path)
    argv = ["--profile", "smoke", "--dataset", "digits", "--out", str(tmp_path / "demo"), "--cache",
            str(tmp_path / "cache"), "--jobs", "2", *options]
    try:
        code = demo.main(argv)
    except SystemExit as stopped:
        pytest.fail(f"the demo stopped (exit {stopped.code}):\n{capsys.readouterr().out}")
    said = capsys.readouterr().out
    assert code == 0, said
    return said


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_smoke_demo_end_to_end_then_from_the_cache(demo, tmp_path, capsys, monkeypatch):
    out, cache = tmp_path / "demo", tmp_path / "cache"
    _smoke(demo, tmp_path, capsys, monkeypatch)
    summary = (out / "summary.md").read_text()
    for title in ("C1a: robust features are more class-separable (CCA)", "C1b: robust features carry more word semantics",
                  "(RSA)", "scarl vs trades robust accuracy (SCARL Table 1)", "PGD-LS success falls with alpha"):
        assert title in summary
    assert "data: digits, as asked" in summary
    for name in ("cca/cca.png", "cca_semantic/cca.png", "simmatrix/simmatrix.png", "alpha_curve/alpha_curve.png",
                 "eval/eval.json", "eval_aa/eval.json", "figures/scarl_fig4c_steps.png", "findings.json"):
        assert (out / name).stat().st_size > 0, name
    evaluated = json.loads((out / "eval" / "eval.json").read_text())["checkpoints"]
    assert sorted(evaluated) == sorted(f"{m}/best" for m in ("natural", "fgsm", "pgd_at", "trades", "scarl",
                                                             "spat_madry"))
    commands = (out / "commands.txt").read_text()
    assert "python -m trainers spat_madry" in commands and "--alpha 0.2" in commands
    assert ".partial" not in commands and "semprobe alpha-curve" in commands
    assert not (tmp_path / ".demo.partial").exists()

    second = _smoke(demo, tmp_path, capsys, monkeypatch)
    assert second.count("[cached] train") == 6 and second.count("[reused]") == 7
    assert "[start]" not in second
    assert "came from the cache" in (out / "summary.md").read_text()
    assert (out / "eval" / "eval.json").read_text() == (cache / "analyses" / "eval" / "eval.json").read_text()

    no_zoo = _smoke(demo, tmp_path, capsys, monkeypatch, "--zoo", str(tmp_path / "nothing"))
    assert "models: trained here (no complete digits zoo" in no_zoo


def write_zoo(zoo: Path) -> None:
    """Six digits checkpoints with run logs, in the layout figures/study/ keeps (random weights: the
    demo's flow on a zoo is under test here, not what the models learned)."""
    import torch

    from semprobe.data import dataset_info
    from semprobe.models import create_model
    from semprobe.models.checkpoint import save_checkpoint

    classes = list(dataset_info("digits").classes)
    for seed, method in enumerate(("natural", "fgsm", "pgd_at", "trades", "scarl", "spat_madry")):
        torch.manual_seed(seed)
        model = create_model("small_cnn", num_classes=10, in_channels=1)
        config = {"method": method, "dataset": "digits", "arch": "small_cnn", "eps": 0.1, "epochs": 2, "steps": 2,
                  "step_size": 0.05, "batch_size": 128, "max_train_images": 300,
                  "alpha": 0.2 if method == "spat_madry" else None, "base": "trades" if method == "scarl" else None}
        save_checkpoint(zoo / "models" / f"{method}.pt", model, dataset="digits", classes=classes, epoch=2,
                        config=config, metrics={})
        logs = zoo / "logs" / method
        logs.mkdir(parents=True)
        (logs / "config.json").write_text(json.dumps(config))
        (logs / "metrics.jsonl").write_text("".join(json.dumps(
            {"epoch": epoch, "val_clean_acc": 0.5 + 0.1 * epoch, "val_pgd_acc": 0.2 + 0.05 * epoch,
             "train_time_s": 1.0, "eval_time_s": 0.5}) + "\n" for epoch in (1, 2)))


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_smoke_demo_on_a_zoo_analyses_the_zoo_and_checks_the_trainers(demo, tmp_path, capsys, monkeypatch):
    zoo = tmp_path / "zoo"
    (zoo / "models").mkdir(parents=True)
    write_zoo(zoo)
    said = _smoke(demo, tmp_path, capsys, monkeypatch, "--zoo", str(zoo))
    assert "models: the well-trained zoo" in said
    assert "[start] python -m trainers pgd_at" in said and said.count("[start] python -m trainers") == 1
    summary = (tmp_path / "demo" / "summary.md").read_text()
    assert "the study's well-trained zoo" in summary and "| pgd_at |" in summary
    assert "End-to-end check of the trainers, run by this demo: pgd_at for 1 epoch(s)" in summary
    evaluated = json.loads((tmp_path / "demo" / "eval" / "eval.json").read_text())["checkpoints"]
    assert {c["path"] for c in evaluated.values()} == {str(zoo / "models" / f"{m}.pt") for m in
                                                      ("natural", "fgsm", "pgd_at", "trades", "scarl", "spat_madry")}
    assert "C1b" in summary and "scarl vs trades" in summary


def test_analyses_are_reused_only_for_the_same_inputs(demo, tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"one")
    out = tmp_path / "out"
    job = demo.Job("eval", ["-m", "semprobe", "eval", "--ckpt", str(ckpt)], display="semprobe eval", output=out)
    store = tmp_path / "store"
    out.mkdir()
    (out / "eval.json").write_text("{}")
    demo._keep(job, store)
    (out / "eval.json").unlink()
    assert demo._reuse(job, store) and (out / "eval.json").read_text() == "{}"
    ckpt.write_bytes(b"two")
    assert not demo._reuse(job, store)
    ckpt.write_bytes(b"one")
    job.display = "semprobe eval --n 10"
    assert not demo._reuse(job, store)


def test_the_full_profile_takes_larger_samples_on_the_zoo_only(demo):
    full, smoke = demo.PROFILES["full"], demo.PROFILES["smoke"]
    assert demo.analysis_profile("full", "trained") == full
    on_zoo = demo.analysis_profile("full", "zoo")
    assert on_zoo.eval_n == 1000 and on_zoo.aa_n == 50 and on_zoo.cca_pairs == 1000
    assert on_zoo.eval_n > full.eval_n and on_zoo.train_images == full.train_images  # only the samples change
    assert demo.analysis_profile("smoke", "zoo") == smoke  # the tests' zoo run stays small
    assert demo.analysis_profile("full", "zoo", aa_n=7).aa_n == 7
    assert demo.analysis_profile("full", "trained", 7).aa_n == 7
