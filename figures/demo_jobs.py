"""The demo's jobs: its commands as subprocesses, a few at a time, each after what it waits
for (the scheduler shared with the study, figures/scheduler.py, stopping at the first
failure); trained runs skipped when cached, analyses copied from their kept outputs when
their command, input files and semprobe's code are unchanged (figures/demo.py builds the
jobs)."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scheduler import Launch, Policy, Scheduler, Task, last_lines, one_thread_env, say


@dataclass
class Job:
    """One command of the demo: its argument list, what it waits for, and where it logs."""

    name: str
    argv: list[str]             # after the program: ["-m", "trainers", ...] or ["-m", "semprobe", ...]
    after: tuple[str, ...] = ()
    display: str = ""           # the command as a user types it
    done_marker: Path | None = None  # a cached training run: skip when it holds this job's command
    output: Path | None = None       # an analysis: its output folder, kept in the cache for reuse
    prepare: Callable[[], None] | None = None  # run in the demo's process just before the job starts
    seconds: float = 0.0
    cached: bool = False
    key: str | None = None           # an analysis: the hash of its inputs, taken before it runs


def _typed(argv: list[str]) -> str:
    program = "python -m trainers" if argv[:2] == ["-m", "trainers"] else "semprobe"
    return " ".join([program] + [shlex.quote(a) for a in argv[2:]])


def _is_cached(job: Job) -> bool:
    marker = job.done_marker
    if marker is None or not marker.is_file() or not (marker.parent / "best.pt").is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("command") == job.display
    except (OSError, json.JSONDecodeError):
        return False


def _sha256_of(paths) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def input_key(job: Job) -> str:
    """What an analysis' outputs depend on: its command, the bytes of every file and run folder it
    names, and semprobe's own source code. Same key, same outputs (every command is seeded)."""
    import semprobe

    named = []
    for token in job.argv:
        path = Path(token.removeprefix("file:"))
        if path == job.output:
            continue
        if path.is_file():
            named.append(path)
        elif path.is_dir():
            named += sorted(f for f in path.iterdir() if f.is_file())
    code = sorted(Path(semprobe.__file__).parent.rglob("*.py"))
    return json.dumps({"command": job.display, "inputs": _sha256_of(named), "semprobe": _sha256_of(code)})


def _reuse(job: Job, store: Path) -> bool:
    """Copy an analysis' outputs from ``store`` when they were made from the same inputs."""
    if job.output is None:
        return False
    key_file = store / f"{job.name}.key"
    job.key = input_key(job)  # taken before the job runs: _keep stores this one
    if not key_file.is_file() or not (store / job.name).is_dir():
        return False
    if key_file.read_text() != job.key:
        return False
    shutil.copytree(store / job.name, job.output, dirs_exist_ok=True)
    return True


def _keep(job: Job, store: Path) -> None:
    """Keep a copy of an analysis' outputs, and the key of its inputs, for the next run."""
    store.mkdir(parents=True, exist_ok=True)
    if (store / job.name).exists():
        shutil.rmtree(store / job.name)
    shutil.copytree(job.output, store / job.name)
    (store / f"{job.name}.key").write_text(job.key or input_key(job))


# what the demo's commands import, once, in the server their processes are forked from (figures/scheduler.py)
PRELOAD = ("torch", "numpy", "scipy.stats", "sklearn.base", "pandas", "matplotlib.pyplot", "seaborn", "pyautoattack",
           "semprobe.cli", "semprobe.cli.evaluate", "semprobe.cli.cca", "semprobe.cli.simmatrix",
           "semprobe.cli.alpha_curve", "semprobe.cli.figures", "semprobe.stats.cca", "semprobe.stats.similarity",
           "semprobe.plots.semantic", "semprobe.plots.curves", "semprobe.attacks.autoattack", "semprobe.words.glove",
           "trainers.cli", "trainers.loop")


class _DemoScheduler(Scheduler):
    """The demo's words for the shared scheduler: a failure shows the job's last five log lines."""

    def done_line(self, task: Task, seconds: float) -> str:
        return f"[done {seconds:5.0f} s] {task.name}"

    def failure_line(self, task: Task, returncode: int, seconds: float, log: Path) -> str:
        return f"[failed] {task.name} (exit {returncode}):\n  " + "\n  ".join(last_lines(log, 5))


def _task(job: Job, logs: Path, store: Path | None) -> Task:
    """``job`` as a task of the shared scheduler: its hooks prepare, reuse, log and keep it."""

    def start() -> Launch | None:
        if job.prepare is not None:
            job.prepare()
        if store is not None and _reuse(job, store):
            job.cached = True
            say(f"[reused] {job.name}: same command, inputs and semprobe code as its copy in {store}")
            return None
        return Launch(job.argv, logs / f"{job.name.replace(' ', '_')}.log", f"[start] {job.display}")

    def finish(seconds: float) -> None:
        job.seconds = seconds
        if job.done_marker is not None:
            job.done_marker.write_text(json.dumps({"command": job.display, "seconds": job.seconds}, indent=1))
        if store is not None and job.output is not None:
            _keep(job, store)

    return Task(job.name, start, job.after, finish, done=job.cached)


def run_jobs(jobs: list[Job], workers: int, logs: Path, store: Path | None = None) -> None:
    """Run ``jobs`` as subprocesses, ``workers`` at a time, each after the jobs it waits for
    (figures/scheduler.py).

    With more than one worker every process gets one thread (OMP/MKL), which on a small
    CPU gives more images per second than one process with all threads. With ``store``, an
    analysis whose command, input files and semprobe code are those of its kept copy is
    copied from there instead of run. On Linux the processes are forks of one server that
    imported :data:`PRELOAD` once. A failure stops the demo (the jobs still running are
    killed) with the job's last log lines (SystemExit 1).
    """
    logs.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        if _is_cached(job):
            job.cached = True
            say(f"[cached] {job.name}: {job.done_marker.parent} (delete it to retrain)")
    scheduler = _DemoScheduler(workers, Policy.STOP, env=one_thread_env() if workers > 1 else None, preload=PRELOAD)
    if not scheduler.run([_task(job, logs, store) for job in jobs]).ok:
        raise SystemExit(1)
