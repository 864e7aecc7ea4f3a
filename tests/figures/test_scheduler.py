"""figures/scheduler.py: the job scheduler the demo and the study share, on tiny ``python -c`` jobs."""

import importlib
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "figures" / "scheduler.py"

# a job: mark itself running, note how many are running (itself included), wait, unmark, note its end
JOB = """
import pathlib, sys, time
folder, name, seconds = pathlib.Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
marker = folder / (name + '.running')
marker.touch()
with open(folder / 'events', 'a') as events:
    events.write(f'start {name} {len(list(folder.glob("*.running")))}\\n')
time.sleep(seconds)
marker.unlink()
with open(folder / 'events', 'a') as events:
    events.write(f'end {name}\\n')
print('last words of', name)
sys.exit(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
"""


@pytest.fixture(scope="module")
def scheduler():
    """figures/scheduler.py imported by its name, as demo_jobs.py and study.py import it (a fork of
    the fork server imports the function it runs by that name)."""
    sys.path.insert(0, str(SCRIPT.parent))
    yield importlib.import_module("scheduler")
    sys.path.remove(str(SCRIPT.parent))


def recorder(scheduler, workers, policy, available=(), **options):
    """A scheduler that keeps what it says in ``.lines`` and finds the names ``available`` already there."""

    class Recording(scheduler.Scheduler):
        def __init__(self):
            super().__init__(workers, policy, **options)
            self.lines = []

        def say(self, message):
            self.lines.append(message)

        def available(self, name):
            return name in available

    return Recording()


def task(scheduler, folder: Path, name, after=(), seconds=0.0, exit_code=0, finished=None):
    def start():
        return scheduler.Launch(["-c", JOB, str(folder), name, str(seconds), str(exit_code)], folder / f"{name}.log",
                                f"[start] {name}")

    def finish(elapsed):
        if finished is not None:
            finished.append((name, elapsed))

    return scheduler.Task(name, start, tuple(after), finish)


def events(folder: Path) -> list[tuple[str, ...]]:
    path = folder / "events"
    return [tuple(line.split()) for line in path.read_text().splitlines()] if path.exists() else []


def test_order_follows_after_and_at_most_workers_run_at_once(scheduler, tmp_path):
    finished = []
    tasks = [task(scheduler, tmp_path, "late", after=["slow", "fast"], finished=finished),
             task(scheduler, tmp_path, "slow", seconds=0.6, finished=finished),
             task(scheduler, tmp_path, "fast", finished=finished),
             task(scheduler, tmp_path, "other", seconds=0.3, finished=finished)]
    runner = recorder(scheduler, 2, scheduler.Policy.STOP)
    outcome = runner.run(tasks)
    assert outcome.ok and not outcome.stopped and sorted(outcome.finished) == ["fast", "late", "other", "slow"]
    seen = events(tmp_path)
    starts = {event[1]: at for at, event in enumerate(seen) if event[0] == "start"}
    ends = {event[1]: at for at, event in enumerate(seen) if event[0] == "end"}
    assert ends["slow"] < starts["late"] and ends["fast"] < starts["late"]
    assert max(int(event[2]) for event in seen if event[0] == "start") <= 2
    # in list order as dependencies allow: slow and fast first, other once a worker is free
    assert sorted(starts, key=starts.get)[:2] in (["slow", "fast"], ["fast", "slow"])
    assert sorted(name for name, _ in finished) == ["fast", "late", "other", "slow"]
    assert all(seconds > 0 for _, seconds in finished)
    assert runner.lines.count("[start] late") == 1 and any(line.endswith("] slow") for line in runner.lines)
    assert (tmp_path / "late.log").read_text() == "last words of late\n"


def test_one_worker_runs_one_job_at_a_time(scheduler, tmp_path):
    tasks = [task(scheduler, tmp_path, name, seconds=0.1) for name in ("a", "b", "c")]
    assert recorder(scheduler, 1, scheduler.Policy.GO_ON).run(tasks).ok
    assert events(tmp_path) == [("start", "a", "1"), ("end", "a"), ("start", "b", "1"), ("end", "b"),
                                ("start", "c", "1"), ("end", "c")]


def test_stop_kills_what_runs_and_starts_nothing_more(scheduler, tmp_path):
    finished = []
    tasks = [task(scheduler, tmp_path, "long", seconds=60, finished=finished),
             task(scheduler, tmp_path, "broken", exit_code=3, finished=finished),
             task(scheduler, tmp_path, "after_broken", after=["broken"]),
             task(scheduler, tmp_path, "independent")]
    runner = recorder(scheduler, 2, scheduler.Policy.STOP)
    started = time.monotonic()
    outcome = runner.run(tasks)
    assert time.monotonic() - started < 30  # long was killed, not waited for
    assert outcome.stopped and outcome.failed == ["broken"] and not outcome.ok and finished == []
    names = {event[1] for event in events(tmp_path)}
    assert names == {"long", "broken"} and ("end", "long") not in events(tmp_path)
    failure = next(line for line in runner.lines if line.startswith("[failed]"))
    assert "broken (exit 3)" in failure and "last words of broken" in failure


def test_go_on_runs_the_independent_jobs_and_skips_what_waits_for_a_failure(scheduler, tmp_path):
    tasks = [task(scheduler, tmp_path, "broken", exit_code=1),
             task(scheduler, tmp_path, "child", after=["broken"]),
             task(scheduler, tmp_path, "grandchild", after=["child"]),
             task(scheduler, tmp_path, "independent", seconds=0.2)]
    runner = recorder(scheduler, 1, scheduler.Policy.GO_ON)
    outcome = runner.run(tasks)
    assert not outcome.stopped and outcome.failed == ["broken"]
    assert outcome.skipped == ["child", "grandchild"] and outcome.finished == ["independent"]
    assert "[skipped] child: waits for broken, which failed" in runner.lines
    assert "[skipped] grandchild: waits for child, which was skipped" in runner.lines
    assert {event[1] for event in events(tmp_path)} == {"broken", "independent"}


def test_a_dependency_no_job_makes_is_skipped_unless_it_is_there(scheduler, tmp_path):
    tasks = [task(scheduler, tmp_path, "reads_model", after=["model"]),
             task(scheduler, tmp_path, "reads_nothing_made", after=["missing"])]
    runner = recorder(scheduler, 2, scheduler.Policy.GO_ON, available={"model"})
    runner.noun = "the models "
    outcome = runner.run(tasks)
    assert outcome.finished == ["reads_model"] and outcome.skipped == ["reads_nothing_made"]
    assert "[skipped] reads_nothing_made: needs the models missing, which no job here makes" in runner.lines
    stopping = recorder(scheduler, 2, scheduler.Policy.STOP)
    assert stopping.run([task(scheduler, tmp_path, "x", after=["missing"])]).stopped


def test_done_and_reused_jobs_start_no_process_and_count_as_finished(scheduler, tmp_path):
    done = task(scheduler, tmp_path, "done")
    done.done = True
    reused = scheduler.Task("reused", lambda: None)
    tasks = [done, reused, task(scheduler, tmp_path, "after_both", after=["done", "reused"])]
    outcome = recorder(scheduler, 1, scheduler.Policy.STOP).run(tasks)
    assert outcome.finished == ["done", "reused", "after_both"]
    assert [event[1] for event in events(tmp_path)] == ["after_both", "after_both"]


def test_a_header_appends_to_the_log_and_a_cycle_does_not_hang(scheduler, tmp_path):
    (tmp_path / "resumed.log").write_text("epoch 1\n")
    launch = scheduler.Launch(["-c", "print('epoch 2')"], tmp_path / "resumed.log", "[resume] r", header="# resume")
    assert recorder(scheduler, 1, scheduler.Policy.GO_ON).run([scheduler.Task("r", lambda: launch)]).ok
    assert (tmp_path / "resumed.log").read_text() == "epoch 1\n# resume\nepoch 2\n"
    cycle = [task(scheduler, tmp_path, "a", after=["b"]), task(scheduler, tmp_path, "b", after=["a"])]
    outcome = recorder(scheduler, 1, scheduler.Policy.GO_ON).run(cycle)
    assert outcome.skipped == ["a", "b"] and not events(tmp_path)


# a module run as ``python -m tiny_job CODE``: says where and how it runs, then exits with CODE
TINY_JOB = """
import os, sys, time
print(os.getcwd(), os.getppid(), os.environ.get("TINY"), os.path.basename(sys.argv[0]), *sys.argv[1:])
time.sleep(float(os.environ.get("TINY_SLEEP", "0")))
sys.exit(int(sys.argv[1]))
"""


def test_module_jobs_run_as_forks_of_the_preloading_server(scheduler, tmp_path, monkeypatch):
    if not scheduler.ForkServer.available():
        pytest.skip("multiprocessing's fork server is used on Linux only")
    (tmp_path / "tiny_job.py").write_text(TINY_JOB)
    monkeypatch.syspath_prepend(str(tmp_path))  # the forks import what this process can
    env = dict(os.environ, TINY="yes")
    runner = recorder(scheduler, 2, scheduler.Policy.GO_ON, env=env, cwd=tmp_path, preload=["json"])
    assert runner.forks is not None

    def job(name, code, after=()):
        return scheduler.Task(name, lambda: scheduler.Launch(["-m", "tiny_job", str(code)], tmp_path / f"{name}.log",
                                                             f"[start] {name}"), tuple(after))

    outcome = runner.run([job("ok", 0), job("fails", 4), job("after_ok", 0, after=["ok"])])
    assert outcome.finished == ["ok", "after_ok"] and outcome.failed == ["fails"]
    cwd, parent, tiny, program, code = (tmp_path / "ok.log").read_text().split()
    assert (cwd, tiny, program, code) == (str(tmp_path), "yes", "tiny_job.py", "0")
    assert int(parent) != os.getpid()  # forked by the server, not by this process
    assert any(line.startswith("[failed] fails (exit 4)") for line in runner.lines)
    # Policy.STOP kills a fork as it kills a process
    stopping = recorder(scheduler, 2, scheduler.Policy.STOP, env=dict(env, TINY_SLEEP="60"), cwd=tmp_path,
                        preload=["json"])
    started = time.monotonic()
    assert stopping.run([job("long", 0), scheduler.Task("broken", lambda: scheduler.Launch(
        ["-c", "raise SystemExit(3)"], tmp_path / "broken.log", "[start] broken"))]).stopped
    assert time.monotonic() - started < 30
