"""A command as one process of a ``torchrun`` job: joining, the job's one error line, quiet helpers.

``torchrun --nproc_per_node N -m semprobe eval|cca|simmatrix|alpha-curve ...`` runs the
command in N processes. Each joins the process group before the command parses its
options (:func:`start`), takes its device (:func:`device_of`: ``cuda:LOCAL_RANK`` on
CUDA), checks its inputs, and meets the others (``agree``) before any work; the library
then shares the images out in fixed chunks and gives every process all the results.
:func:`main_continues` ends the exchanges: the other processes stop there, the main one
(rank 0) computes the statistics and writes the outputs, exactly as a single process.

An error in any process reaches the others at their next agreement and the job stops
with one line on the main process's stderr (:func:`fail`); nothing is written. Without
torchrun (``WORLD_SIZE`` unset or 1) all of this is a single process and costs nothing:
torch is not even imported.
"""

from __future__ import annotations

import os

import click

SHARDED_COMMANDS = ("eval", "cca", "simmatrix", "alpha-curve")


def under_torchrun() -> bool:
    """Whether ``torchrun`` started this process as one of several (``WORLD_SIZE`` > 1)."""
    return os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1")


def start():
    """Join the job's process group when under torchrun; returns its ``Processes`` (None alone)."""
    if not under_torchrun():
        return None
    from semprobe import distributed

    return distributed.join()


def processes():
    """The job's ``Processes`` (one process without torchrun)."""
    from semprobe.distributed import current

    return current()


def is_main() -> bool:
    """Whether this process prints and writes: always without torchrun, rank 0 under it."""
    return not under_torchrun() or processes().is_main


def check_command(name: str | None) -> None:
    """Refuse, under torchrun, a command that does not share its work out over processes."""
    from semprobe.errors import ConfigError

    if under_torchrun() and name is not None and name not in SHARDED_COMMANDS:
        raise ConfigError(f"semprobe {name} runs as a single process; under torchrun only "
                          f"{', '.join(SHARDED_COMMANDS)} share their work out (start it without torchrun)")


def device_of(spec: str):
    """``--device`` resolved for this process: under torchrun on CUDA, the GPU of its local rank."""
    from semprobe.options import resolve_device

    return processes().place(resolve_device(spec))


def main_continues() -> bool:
    """Meet the other processes a last time (all finished their share) and end the exchanges;
    True in the process that goes on to write the outputs."""
    if not under_torchrun():
        return True
    from semprobe import distributed

    processes().agree()
    distributed.close()
    return processes().is_main


def fail(exit_code: int, message: str, *, echo: bool = True) -> int:
    """Stop this process after its failure and print the job's one error line; returns ``exit_code``.

    Alone, the line is ``message`` (unless ``echo`` is false: the caller shows a traceback).
    Under torchrun the other processes learn of it at their next agreement, and the main
    process prints the first failure of the job, naming its process when it is another.
    """
    failures = None
    if under_torchrun():
        from semprobe import distributed

        failures = distributed.report_failure(exit_code, message)
    if failures is None:
        if echo:
            click.echo(f"semprobe: error: {message}", err=True)
        return exit_code
    _echo_first_failure(failures, echo)
    return exit_code


def user_error(exc, exit_code: int) -> int:
    """:func:`fail` with a user error's message; when another process failed (``ShardFailed``),
    the main process prints that one's line, and its exit code is returned."""
    from semprobe.errors import one_line

    if under_torchrun():
        from semprobe.distributed import ShardFailed

        if isinstance(exc, ShardFailed):
            _echo_first_failure({exc.rank: (exc.exit_code, exc.message)}, True)
            return exc.exit_code
    return fail(exit_code, one_line(exc))


def end() -> None:
    """Leave the process group (under torchrun), whatever happened."""
    if under_torchrun():
        from semprobe import distributed

        distributed.leave()


def _echo_first_failure(failures: dict, echo_own: bool) -> None:
    """The main process prints the lowest-ranked failure: its own message, or another's named by process."""
    job = processes()
    rank = min(failures)
    if not job.is_main or (rank == job.rank and not echo_own):
        return
    message = failures[rank][1]
    where = "" if rank == job.rank else f"process {rank} of {job.world_size}: "
    click.echo(f"semprobe: error: {where}{message}", err=True)
