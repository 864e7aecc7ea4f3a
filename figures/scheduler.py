"""The job scheduler the demo and the study share (figures/demo_jobs.py, figures/study.py).

It runs subprocess jobs (``python ARGV``, output into a log file) a few at a time, in the
order given, each once the jobs named in its ``after`` have finished. Each job has two
hooks: ``start()`` prepares it and says how to run it (or that it needs no process, its
outputs being reused), ``finish(seconds)`` keeps its outputs after it exits 0. What
happens when one fails is the scheduler's failure policy:

- ``Policy.STOP`` (the demo, whose outputs need every job): kill the jobs still running,
  start nothing more;
- ``Policy.GO_ON`` (the study, hours of mostly independent runs): run every job that does
  not wait for the failed one; those that do are skipped, each with a line that says why.

A job that waits for a name no job here makes is skipped too, unless
:meth:`Scheduler.available` says the thing is already there (the study: a model file).
The lines the scheduler says are methods a runner overrides for its own words.

With ``preload`` (Linux), a ``python -m MODULE ...`` job starts as a fork of one server
process that imported those modules once (multiprocessing's fork server), instead of a
fresh interpreter that imports torch, scikit-learn and matplotlib again: about 4 s of CPU
saved per job. The server imports and computes nothing else, so its forks are as clean as
a new interpreter (a fork of a process that has run OpenMP work can hang); each job still
is its own process, with its own log, exit code, environment and working folder.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class Policy(Enum):
    """What the scheduler does when a job fails (or is skipped)."""

    STOP = "stop"    # kill the running jobs and start no other
    GO_ON = "go on"  # skip what waits for the failed job, run the rest


@dataclass(frozen=True)
class Launch:
    """How to run a job: the interpreter's arguments, its log file, and the line said as it starts.

    With ``header`` the log is appended to, after that line (the study notes each start or
    resume in a run's log); without, it is written afresh.
    """

    argv: list[str]
    log: Path
    line: str
    header: str | None = None


def _nothing(seconds: float) -> None:
    return None


@dataclass
class Task:
    """One job as the scheduler sees it: a name, what it waits for, and its hooks."""

    name: str
    start: Callable[[], Launch | None]  # prepare it; None: done without a process (outputs reused)
    after: tuple[str, ...] = ()
    finish: Callable[[float], None] = _nothing  # after exit 0, with its wall seconds: keep its outputs
    done: bool = False  # done before this run: counts as finished, never started


@dataclass
class Outcome:
    """Names of the tasks that finished (done before included), failed, or were skipped."""

    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stopped: bool = False  # Policy.STOP ended the run early

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


@dataclass
class _Running:
    task: Task
    process: subprocess.Popen | _Forked
    started: float
    log: Path


def _run_module(argv: list[str], log: str, env: dict[str, str], cwd: str) -> None:
    """In a fork of the server: ``python -m MODULE ARGS`` with its output appended to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    handle = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    os.close(handle)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    threads = env.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and "torch" in sys.modules:  # read by torch when the server imported it: set it again
        sys.modules["torch"].set_num_threads(int(threads))
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)  # SystemExit sets the exit code, as in python -m


class _Forked:
    """A job forked by the server, with the part of :class:`subprocess.Popen` the scheduler uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess):
        self.process = process

    def poll(self) -> int | None:
        return self.process.exitcode

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def kill(self) -> None:
        self.process.kill()

    def wait(self) -> int | None:
        self.process.join()
        return self.process.exitcode


class ForkServer:
    """Starts ``python -m MODULE ...`` jobs as forks of a server that imported ``preload`` once."""

    def __init__(self, preload: Sequence[str]):
        self.context = multiprocessing.get_context("forkserver")
        self.preload = list(preload)
        self.running = False

    @staticmethod
    def available() -> bool:
        return sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods()

    def start(self, argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> _Forked:
        if not self.running:  # the server starts with the jobs' environment (threads read at import)
            from multiprocessing import forkserver

            self.context.set_forkserver_preload(self.preload)
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                forkserver.ensure_running()
            finally:
                os.environ.clear()
                os.environ.update(saved)
            self.running = True
        process = self.context.Process(target=_run_module, args=(argv, str(log), env, str(cwd)), name=argv[1])
        process.start()
        return _Forked(process)


def say(message: str) -> None:
    """A line of progress on stdout, at once."""
    print(message, flush=True)


def last_lines(log: Path, count: int) -> list[str]:
    """The last ``count`` lines of a job's log (none when it cannot be read)."""
    try:
        return log.read_text(errors="replace").strip().splitlines()[-count:]
    except OSError:
        return []


_WHY = {"failed": "failed", "skipped": "was skipped"}


class Scheduler:
    """Runs :class:`Task` lists, ``workers`` processes at a time, under a failure ``policy``.

    ``env`` is the processes' environment (default: this one's; :data:`ONE_THREAD` added to
    it gives each process one BLAS/OpenMP thread), ``cwd`` their folder (the repository).
    """

    poll = 0.2  # seconds between looks at the running processes
    noun = ""   # what ``after`` names, in the skip line: "needs {noun}X, which no job here makes"

    def __init__(self, workers: int, policy: Policy, env: dict[str, str] | None = None, cwd: Path = REPO,
                 preload: Sequence[str] = ()):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers, self.policy, self.env, self.cwd = workers, policy, env, cwd
        self.forks = ForkServer(preload) if preload and ForkServer.available() else None

    # ---------------------------------------------------------------- what a runner overrides

    def say(self, message: str) -> None:
        say(message)

    def available(self, name: str) -> bool:
        """Whether ``name``, which no task here makes, is already there (default: no)."""
        return False

    def done_line(self, task: Task, seconds: float) -> str:
        return f"[done {seconds:.0f} s] {task.name}"

    def failure_line(self, task: Task, returncode: int, seconds: float, log: Path) -> str:
        return f"[failed] {task.name} (exit {returncode}): " + " | ".join(last_lines(log, 3))

    # ---------------------------------------------------------------- the loop

    def run(self, tasks: list[Task]) -> Outcome:
        """Run every task that is not done, in list order as their dependencies allow."""
        outcome = Outcome(finished=[task.name for task in tasks if task.done])
        unfinished: dict[str, str] = {}  # name -> "failed" or "skipped"
        pending = [task for task in tasks if not task.done]
        running: list[_Running] = []
        while pending or running:
            progress = self._start_ready(pending, running, outcome, unfinished)
            if outcome.stopped:
                break
            if not running and pending and not progress:  # they wait for each other
                for task in list(pending):
                    pending.remove(task)
                    self._skip(task, f"waits for {', '.join(task.after)} in a cycle", outcome, unfinished)
                if self.policy is Policy.STOP:
                    outcome.stopped = True
                break
            if running:
                time.sleep(self.poll)
            self._collect(running, outcome, unfinished)
            if outcome.stopped:
                break
        return outcome

    def _start_ready(self, pending: list[Task], running: list[_Running], outcome: Outcome,
                     unfinished: dict[str, str]) -> bool:
        """Skip the tasks that cannot run, start those whose dependencies finished while a worker
        is free; True when any task left ``pending``."""
        progress = False
        for task in list(pending):
            waiting = {t.name for t in pending if t is not task} | {item.task.name for item in running}
            blocked = [name for name in task.after if name in unfinished]
            missing = [name for name in task.after if name not in outcome.finished and name not in unfinished
                       and name not in waiting and not self.available(name)]
            if blocked or missing:
                pending.remove(task)
                progress = True
                if blocked:
                    why = "waits for " + ", ".join(f"{name}, which {_WHY[unfinished[name]]}" for name in blocked)
                else:
                    why = f"needs {self.noun}{', '.join(missing)}, which no job here makes"
                self._skip(task, why, outcome, unfinished)
                if self.policy is Policy.STOP:
                    self._stop(running, outcome)
                    return progress
                continue
            if any(name in waiting for name in task.after) or len(running) >= self.workers:
                continue
            pending.remove(task)
            progress = True
            launch = task.start()
            if launch is None:
                outcome.finished.append(task.name)
                continue
            running.append(_Running(task, self._spawn(launch), time.monotonic(), launch.log))
            self.say(launch.line)
        return progress

    def _spawn(self, launch: Launch) -> subprocess.Popen | _Forked:
        """Start ``python ARGV`` into its log: a fork of the server for ``-m MODULE`` when there is one."""
        with open(launch.log, "a" if launch.header is not None else "w") as handle:
            if launch.header is not None:
                handle.write(launch.header + "\n")
            if self.forks is not None and launch.argv[:1] == ["-m"]:
                handle.flush()
                return self.forks.start(launch.argv, launch.log, self.env or dict(os.environ), self.cwd)
            return subprocess.Popen([sys.executable, *launch.argv], stdout=handle, stderr=subprocess.STDOUT,
                                    env=self.env, cwd=self.cwd)

    def _collect(self, running: list[_Running], outcome: Outcome, unfinished: dict[str, str]) -> None:
        """Handle the processes that exited: keep a success's outputs, apply the policy to a failure."""
        for item in list(running):
            if item.process.poll() is None:
                continue
            running.remove(item)
            seconds = time.monotonic() - item.started
            if item.process.returncode == 0:
                item.task.finish(seconds)
                outcome.finished.append(item.task.name)
                self.say(self.done_line(item.task, seconds))
                continue
            unfinished[item.task.name] = "failed"
            outcome.failed.append(item.task.name)
            self.say(self.failure_line(item.task, item.process.returncode, seconds, item.log))
            if self.policy is Policy.STOP:
                self._stop(running, outcome)
                return

    def _skip(self, task: Task, why: str, outcome: Outcome, unfinished: dict[str, str]) -> None:
        unfinished[task.name] = "skipped"
        outcome.skipped.append(task.name)
        self.say(f"[skipped] {task.name}: {why}")

    def _stop(self, running: list[_Running], outcome: Outcome) -> None:
        """Policy.STOP: kill what still runs and end the run."""
        for item in running:
            item.process.kill()
            item.process.wait()
        running.clear()
        outcome.stopped = True


def one_thread_env() -> dict[str, str]:
    """This process's environment with one BLAS/OpenMP thread per process."""
    return dict(os.environ, **ONE_THREAD)
