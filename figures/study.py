"""The study: a zoo of well-trained Fashion-MNIST models, trained resumably in the background.

``make study`` (``python figures/study.py train``) trains the small CNN at eps 0.1 with
``python -m trainers`` for every run in :data:`RUNS`, in that order, ``--jobs`` runs at a
time (one thread each), and keeps what it finishes under ``figures/study/``:

==============================  ==========================================================
``models/NAME.pt``              the run's ``best.pt``: weights only (float32), SCARL heads
                                and word vectors where the method has them, the metadata
                                semprobe's loader reads (dataset, classes, config, metrics)
``models/NAME.json``            the training command that made it, and its best epoch
``logs/NAME/``                  the run's ``metrics.jsonl``, ``config.json`` and its log
``runs/NAME/``                  a run still in progress (``last.pt`` with the optimizer
                                state): committed when a session ends, so the next one
                                continues it with ``--resume``; removed once exported
==============================  ==========================================================

A run whose ``models/NAME.json`` records the command the study would run now is skipped;
one whose ``runs/NAME`` holds a finished epoch of the same command is resumed; anything
else is trained from the start. So the study can be stopped at any moment (even with
SIGKILL) and started again, on this machine or on a fresh clone that has the committed
files, and loses at most the epoch in progress. Progress goes to stdout and to
``figures/study/study.log``.

**Schedules** (chosen to converge on 2 CPU cores; SGD momentum 0.9, weight decay 5e-4,
batch 128, lr x0.1 at 75% and 90% of the epochs, eps 0.1, training attacks of 10 steps
of eps/4 with each method's own loss and random start, validation on 1,000 held-out
training images with PGD-10):

- ``main``: the ten methods of the papers' tables on the full training split (59,000
  images): ``natural`` for 15 epochs (best.pt by validation clean accuracy), every robust
  method for 8 epochs (best.pt by validation PGD-10 accuracy);
- ``ablation``: SCARL's ablations (Tables 4, 5, 7) and their own full-SCARL reference,
  on a seeded 20,000-image subset, 8 epochs;
- ``grid``: spat_madry over alpha in {0, 0.1, 0.2, 0.4} x eps in {0.05, 0.1, 0.15}
  (SPAT Fig. 5) on a seeded 10,000-image subset, 8 epochs;
- ``batch``: pgd_at and scarl with batch sizes 64, 128, 256 and 512 (SCARL Fig. 4 d; lr
  and epochs unchanged, so a larger batch takes fewer steps, as in the paper) on the
  grid's 10,000 images, 8 epochs;
- ``awp``: pgd_at with AWP (gamma 0.01, the reference's) against pgd_at_20k, on the
  ablations' 20,000 images, 8 epochs.

**Size**: a model is 0.41 MB (SCARL's 0.54 MB with its projection heads), so the 42 runs
take about 19 MB of the 20 MB the zoo may hold (``tests/figures/test_study.py`` checks it).
That budget, and the CPU, is why the AWP group is one pair: TRADES-AWP and SCARL-AWP
would add 1 MB and about two core-hours.

    python figures/study.py list                     # every job, and whether it is done
    python figures/study.py train --jobs 2           # train what is missing (resumable)
    python figures/study.py train --only pgd_at,trades
    python figures/study.py analyse --only cca,eval_scarl  # these analyses, in this order
    python figures/study.py all                      # train, and analyse each model as soon as it exists
    python figures/study_report.py                   # figures/study/REPORT.md from what has been computed
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # figures/: demo.py, scheduler.py, study_analyses.py

from scheduler import Launch, Policy, Scheduler, Task, last_lines, one_thread_env  # noqa: E402
from study_analyses import SEMANTIC_COMPONENTS, Analysis, analyses, analysis_done, analysis_record, prepare_inputs  # noqa: E402
STUDY = REPO / "figures" / "study"
DATASET = "fashion-mnist"
ARCH = "small_cnn"
EPS = "0.1"
VAL_SIZE = 1000
ROBUST_EPOCHS = 8
NATURAL_EPOCHS = 15
ABLATION_IMAGES = 20_000
GRID_IMAGES = 10_000
BATCH_SIZES = ("64", "128", "256", "512")
GROUPS = ("main", "ablation", "grid", "batch", "awp")


@dataclass(frozen=True)
class StudyRun:
    """One training run of the study: its name, group, method and the options beyond the common ones."""

    name: str
    group: str
    method: str
    options: tuple[str, ...] = ()
    eps: str = EPS
    train_images: int | None = None  # None: the whole training split
    epochs: int = ROBUST_EPOCHS
    dataset: str = DATASET
    val_size: int = VAL_SIZE

    def argv(self, out: Path) -> list[str]:
        """``python -m trainers`` arguments (after ``-m trainers``), with ``--out out``."""
        argv = [self.method, "--dataset", self.dataset, "--arch", ARCH, "--eps", self.eps, "--epochs",
                str(self.epochs), "--val-size", str(self.val_size), *self.options]
        if self.train_images is not None:
            argv += ["--max-train-images", str(self.train_images)]
        return argv + ["--out", str(out)]

    def command(self) -> str:
        """The command as a user types it from the repository root (what models/NAME.json records)."""
        out = Path("figures", "study", "runs", self.name)
        return " ".join(["python", "-m", "trainers"] + [shlex.quote(a) for a in self.argv(out)])


def _main_runs() -> list[StudyRun]:
    runs = [StudyRun("natural", "main", "natural", epochs=NATURAL_EPOCHS)]
    for method, options in [
        ("pgd_at", ()), ("trades", ()), ("scarl", ()), ("spat_madry", ("--alpha", "0.2")), ("fgsm", ()),
        ("mart", ()), ("tla", ()), ("spat_trades", ("--alpha", "0.1")), ("spat_mart", ("--alpha", "0.3")),
    ]:  # fmt: skip  (the demo's six first)
        runs.append(StudyRun(method, "main", method, options))
    return runs


def _ablation_runs() -> list[StudyRun]:
    """SCARL Table 4 (terms), Table 5 (embeddings), Table 7 (base loss), each against scarl_20k."""
    variants = {
        "scarl_20k": (),                                    # the full recipe: the ablations' reference
        "scarl_no_info": ("--no-info",),                    # Table 4
        "scarl_no_struc": ("--no-struc",),                  # Table 4
        "scarl_infonce": ("--info", "infonce"),             # Table 4
        "scarl_random": ("--embedding", "random"),          # Table 5
        "scarl_onehot": ("--embedding", "onehot"),          # Table 5
        "scarl_nn": ("--embedding", "nn"),                  # Table 5: a learned embedding
        "scarl_base_pgd_at": ("--base", "pgd_at"),          # Table 7
        "scarl_base_natural": ("--base", "natural"),        # Table 7
        "trades_20k": None,                                 # Table 4's first row: the TRADES baseline
    }
    runs = []
    for name, options in variants.items():
        method = "trades" if options is None else "scarl"
        runs.append(StudyRun(name, "ablation", method, tuple(options or ()), train_images=ABLATION_IMAGES))
    # Table 7's Madry AT base (scarl_base_pgd_at adds the semantic terms to it) and the AWP run's baseline
    return runs + [StudyRun("pgd_at_20k", "ablation", "pgd_at", train_images=ABLATION_IMAGES)]


def _grid_runs() -> list[StudyRun]:
    """SPAT Fig. 5: spat_madry over alpha x eps."""
    return [
        StudyRun(f"spat_madry_eps{eps}_alpha{alpha}", "grid", "spat_madry", ("--alpha", alpha), eps=eps,
                 train_images=GRID_IMAGES)
        for eps in ("0.1", "0.05", "0.15") for alpha in ("0", "0.1", "0.2", "0.4")
    ]


def _batch_runs() -> list[StudyRun]:
    """SCARL Fig. 4 d: Madry AT and SCARL at four batch sizes (the same lr, epochs and images) on the
    grid's 10,000 images."""
    return [StudyRun(f"{method}_10k_b{batch}", "batch", method, ("--batch-size", batch), train_images=GRID_IMAGES)
            for method in ("pgd_at", "scarl") for batch in BATCH_SIZES]


def _awp_runs() -> list[StudyRun]:
    """AWP (the "remaining baselines" issue) on Madry AT at the ablations' size, gamma 0.01 (the reference's),
    beside the same run without it (pgd_at_20k, in the ablation group: also Table 7's Madry AT base)."""
    return [StudyRun("pgd_at_awp_20k", "awp", "pgd_at", ("--awp-gamma", "0.01"), train_images=ABLATION_IMAGES)]


RUNS: list[StudyRun] = _main_runs() + _ablation_runs() + _grid_runs() + _batch_runs() + _awp_runs()
RUN_BY_NAME = {run.name: run for run in RUNS}


def say(message: str, log: Path | None = None) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
    print(line, flush=True)
    if log is not None:
        with open(log, "a") as handle:
            handle.write(line + "\n")


def model_file(name: str) -> Path:
    return STUDY / "models" / f"{name}.pt"


def model_path(run: StudyRun) -> Path:
    return model_file(run.name)


def is_done(run: StudyRun) -> bool:
    """True when models/NAME.pt exists and models/NAME.json records the command the study runs now."""
    record = STUDY / "models" / f"{run.name}.json"
    if not model_path(run).is_file() or not record.is_file():
        return False
    try:
        return json.loads(record.read_text()).get("command") == run.command()
    except (OSError, json.JSONDecodeError):
        return False


def _finished_epochs(run_dir: Path) -> int:
    """Epochs of ``run_dir`` recorded in its metrics (0 when none or unreadable)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return 0
    epochs = 0
    for line in lines:
        try:
            epochs = max(epochs, int(json.loads(line)["epoch"]))
        except (ValueError, KeyError, TypeError):
            break
    return epochs


def trainer_argv(run: StudyRun) -> tuple[list[str], str]:
    """The trainer arguments for ``run`` now: resume its folder when it holds an epoch of the same
    command, else start over (``--overwrite``). Returns ``(argv, how)``."""
    run_dir = STUDY / "runs" / run.name
    marker = run_dir / "study-run.json"
    same = marker.is_file() and json.loads(marker.read_text()).get("command") == run.command()
    if same and (run_dir / "last.pt").is_file() and _finished_epochs(run_dir) > 0:
        argv = run.argv(run_dir)
        argv = argv[: argv.index("--out")] + ["--resume", str(run_dir)]
        return argv, f"resume after epoch {_finished_epochs(run_dir)}"
    return run.argv(run_dir) + ["--overwrite"], "start"


def export(run: StudyRun) -> None:
    """Keep a finished run: best.pt as models/NAME.pt (+ .json), its logs, and drop the run folder."""
    from semprobe.models.checkpoint import load_checkpoint

    run_dir = STUDY / "runs" / run.name
    best = load_checkpoint(run_dir / "best.pt")
    models, logs = STUDY / "models", STUDY / "logs" / run.name
    models.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.jsonl", "config.json", "train.log"):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, logs / name)
    record = {
        "command": run.command(), "group": run.group, "method": run.method, "best_epoch": best.epoch,
        "selection": best.metrics.get("selection", "val_pgd_acc"),
        "val_clean_acc": best.metrics.get("val_clean_acc"), "val_pgd_acc": best.metrics.get("val_pgd_acc"),
        "epochs": _finished_epochs(run_dir),
    }
    shutil.copyfile(run_dir / "best.pt", model_path(run).with_suffix(".pt.partial"))
    os.replace(model_path(run).with_suffix(".pt.partial"), model_path(run))
    (models / f"{run.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(run_dir)


@dataclass
class Job:
    """One process of the study: a training run or an analysis, and what to do before and after it.

    ``start()`` prepares its folder and returns ``(argv after python, log file, how)``;
    ``finish()`` keeps its outputs; ``needs`` are the models it reads.
    """

    name: str
    command: str
    done: Callable[[], bool]
    start: Callable[[], tuple[list[str], Path, str]]
    finish: Callable[[], None]
    needs: tuple[str, ...] = ()


def training_job(run: StudyRun) -> Job:
    def start() -> tuple[list[str], Path, str]:
        run_dir = STUDY / "runs" / run.name
        argv, how = trainer_argv(run)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "study-run.json").write_text(json.dumps({"command": run.command()}) + "\n")
        return ["-m", "trainers", *argv], run_dir / "train.log", how

    return Job(run.name, run.command(), partial(is_done, run), start, partial(export, run))


class _StudyScheduler(Scheduler):
    """The study's use of the shared scheduler: a failed job is reported and the others go on
    (what needs its model is skipped); a model no job here makes may be in models/ already;
    every line is timestamped and kept in ``log``."""

    noun = "the models "

    def __init__(self, workers: int, log: Path):
        super().__init__(workers, Policy.GO_ON, env=one_thread_env())
        self.log = log

    def say(self, message: str) -> None:
        say(message, self.log)

    def available(self, name: str) -> bool:
        return model_file(name).is_file()

    def done_line(self, task: Task, seconds: float) -> str:
        return f"[done {seconds / 60:.0f} min] {task.name}"

    def failure_line(self, task: Task, returncode: int, seconds: float, log: Path) -> str:
        return f"[failed {seconds / 60:.0f} min, exit {returncode}] {task.name}: " + " | ".join(last_lines(log, 3))


def _task(job: Job, done: bool) -> Task:
    """``job`` as a task of the shared scheduler; its start notes how it starts (or resumes) in its log."""

    def start() -> Launch:
        argv, log_path, how = job.start()
        return Launch(argv, log_path, f"[{how}] {job.name}: {job.command}",
                      header=f"# {how}: python {' '.join(shlex.quote(a) for a in argv)}")

    return Task(job.name, start, job.needs, lambda seconds: job.finish(), done=done)


def run_jobs(jobs: list[Job], workers: int, log: Path) -> int:
    """Run every job that is not done, ``workers`` at a time (one thread each), in order, a job only
    once the models it needs exist (made by a job here, or already in models/); keep each one's
    outputs as it finishes (figures/scheduler.py).

    A job that fails is reported and the others go on (those that need its model are skipped);
    the exit code is 1 if any failed or was skipped.
    """
    done = [job.done() for job in jobs]
    say(f"study: {sum(done)} of {len(jobs)} jobs done; {len(jobs) - sum(done)} to run, {workers} at a time", log)
    outcome = _StudyScheduler(workers, log).run([_task(job, was_done) for job, was_done in zip(jobs, done)])
    failed = outcome.failed + outcome.skipped
    say("study: every job done" if not failed else f"study: failed: {', '.join(failed)}", log)
    return 1 if failed else 0


def train(runs: list[StudyRun], jobs: int, log: Path) -> int:
    """Train every run that is not done, ``jobs`` at a time; export each as it finishes."""
    return run_jobs([training_job(run) for run in runs], jobs, log)


def analysis_job(analysis: Analysis) -> Job:
    """A semprobe command over the zoo's models into results/NAME, done while its record holds."""
    models, results = STUDY / "models", STUDY / "results"

    def start() -> tuple[list[str], Path, str]:
        from demo import write_word_components

        results.mkdir(parents=True, exist_ok=True)
        prepare_inputs(analysis, results, lambda path: write_word_components(path, DATASET, SEMANTIC_COMPONENTS))
        (results / "logs").mkdir(exist_ok=True)
        return analysis.argv(models, results), results / "logs" / f"{analysis.name}.log", "analyse"

    def finish() -> None:
        record = analysis_record(analysis, models)
        (results / analysis.name / "study-job.json").write_text(json.dumps(record, indent=1) + "\n")

    return Job(analysis.name, analysis.display(), partial(analysis_done, analysis, models, results), start, finish,
               needs=analysis.models)


def study_jobs(runs: list[StudyRun], action: str) -> list[Job]:
    """``train``: the runs; ``analyse``: the analyses of their models; ``all``: both, so each analysis
    starts as soon as the models it reads exist."""
    jobs = [training_job(run) for run in runs] if action in ("train", "all") else []
    names = {run.name for run in runs}
    if action in ("analyse", "all"):
        jobs += [analysis_job(a) for a in analyses(runs) if set(a.models) <= names or action == "analyse"]
    return jobs


def list_jobs(jobs: list[Job]) -> None:
    """Each job's name, kind, state and command, one line each."""
    for job in jobs:
        run = RUN_BY_NAME.get(job.name)
        if run is None:
            kind, state = "analysis", "done" if job.done() else "to run"
        elif job.done():
            kind, state = run.group, "done"
        else:
            epochs = _finished_epochs(STUDY / "runs" / run.name)
            kind, state = run.group, f"{epochs}/{run.epochs} epochs" if epochs else "to train"
        print(f"{job.name:34s} {kind:9s} {state:12s} {job.command}")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``study: error: ...``, and exit code 2."""

    def error(self, message: str):
        print(f"study: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _select(parser: argparse.ArgumentParser, groups: str | None) -> list[StudyRun]:
    runs = RUNS
    if groups:
        wanted = groups.split(",")
        unknown = sorted(set(wanted) - set(GROUPS))
        if unknown:
            parser.error(f"unknown group {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
        runs = [run for run in runs if run.group in wanted]
    return runs


def _only(parser: argparse.ArgumentParser, jobs: list[Job], only: str | None) -> list[Job]:
    """The jobs ``--only`` names (runs or analyses), in the order it names them; a run's name also
    selects the analyses that read nothing but the named runs' models."""
    if not only:
        return jobs
    names = only.split(",")
    by_name = {job.name: job for job in jobs}
    known = {job.name for job in study_jobs(RUNS, "all")}  # every run and every analysis
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown job {', '.join(unknown)}; `python figures/study.py list` names them")
    runs = {name for name in names if name in RUN_BY_NAME}
    chosen = [by_name[name] for name in dict.fromkeys(names) if name in by_name]
    chosen += [job for job in jobs if job not in chosen and job.needs and set(job.needs) <= runs]
    return chosen


def main(argv: list[str] | None = None) -> int:
    global STUDY
    parser = _Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("list", "train", "analyse", "all"),
                        help="list the jobs; train the models; run the analyses of trained models; or both")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time, one thread each")
    parser.add_argument("--only", help="comma-separated job names (runs or analyses, as `list` prints them), "
                        "run in that order")
    parser.add_argument("--group", help=f"comma-separated groups: {', '.join(GROUPS)}")
    parser.add_argument("--study-dir", type=Path, default=STUDY,
                        help="where models/, logs/ and runs/ are (default figures/study of this checkout); "
                        "lets a snapshot of the code train into the working tree")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    STUDY = args.study_dir.resolve()
    runs = _select(parser, args.group)
    jobs = (study_jobs(runs, "train") + study_jobs(runs, "analyse") if args.action == "list"
            else study_jobs(runs, args.action))
    jobs = _only(parser, jobs, args.only)
    if args.action == "list":
        list_jobs(jobs)
        return 0
    STUDY.mkdir(parents=True, exist_ok=True)
    return run_jobs(jobs, args.jobs, STUDY / "study.log")


if __name__ == "__main__":
    sys.exit(main())
