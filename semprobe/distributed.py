"""The processes of a ``torchrun`` job that shares out an evaluation, and how they talk.

``torchrun --nproc_per_node N -m semprobe eval ...`` starts N processes and tells each its
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`join` reads them and joins the process
group (Gloo for CPU tensors, NCCL for CUDA ones) and :func:`current` returns the job's
:class:`Processes` from then on. A plain ``semprobe`` run is a job of one process, for
which every collective here does nothing.

Failures never leave a process waiting at a collective. Every exchange of results is
preceded by :meth:`Processes.agree`, an all-reduce of one failure code per process; a
process that fails calls :func:`report_failure` where the failure is caught, which meets
the others at their next agreement with its code and its one-line message. They then
raise :class:`ShardFailed` with that message, and every process stops. A process that
dies outright (killed, out of memory) is torchrun's to handle: it stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from semprobe.errors import ConfigError, SemprobeError

# a process waits this long at a collective for the others: one chunk of AutoAttack on a CPU can
# take many minutes, and a process that dies is noticed at once (torchrun stops the job)
COLLECTIVE_TIMEOUT = timedelta(hours=24)
# longest failure message sent to the other processes (bytes of UTF-8; longer ones are cut)
MESSAGE_BYTES = 2000
# largest number of dimensions of the rows exchanged by :meth:`Processes.gather_rows`
MAX_ROW_DIMS = 8


class ShardFailed(SemprobeError):
    """Another process of the job failed; ``rank``, ``exit_code`` and ``message`` are the first failure's."""

    def __init__(self, rank: int, world_size: int, exit_code: int, message: str) -> None:
        super().__init__(f"process {rank} of {world_size}: {message}")
        self.rank, self.exit_code, self.message = rank, exit_code, message


@dataclass(frozen=True)
class Processes:
    """Where this process stands in the job: its rank, the world size and its local rank (GPU index)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) prints results and writes files."""
        return self.rank == 0

    def place(self, device: torch.device) -> torch.device:
        """This process's device: with several processes on CUDA, the GPU of its local rank."""
        if not (self.distributed and device.type == "cuda"):
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"process {self.rank} has local rank {self.local_rank} but only "
                              f"{torch.cuda.device_count()} GPU(s) are visible; start at most that many processes "
                              "per node")
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def agree(self) -> None:
        """Meet the other processes; raise :class:`ShardFailed` if one of them failed."""
        if not self.distributed:
            return
        failures = _exchange(self, 0, "")
        if failures:
            rank, (code, message) = min(failures.items())
            raise ShardFailed(rank, self.world_size, code, message)

    def gather_rows(self, local: torch.Tensor, counts: list[int], device: torch.device) -> list[torch.Tensor]:
        """Every process's rows: ``local`` here (``counts[rank]`` rows), the others' from them.

        Returns one CPU tensor per process, ``counts[r]`` rows each. The rows of all processes
        share one shape after the first dimension and one dtype (a process without rows
        learns the shape from the others). ``device`` is where the exchange happens (the
        CUDA device under NCCL, else the CPU).
        """
        if not self.distributed:
            return [local.cpu()]
        global _broken
        if local.dim() > MAX_ROW_DIMS:
            raise ValueError(f"rows of at most {MAX_ROW_DIMS} dimensions can be gathered, got {local.dim()}")
        where = device if device.type == "cuda" else torch.device("cpu")
        _broken = True  # a failure inside the collectives leaves nothing to agree with
        shape = torch.zeros(MAX_ROW_DIMS + 1, dtype=torch.int64, device=where)
        if counts[self.rank]:
            shape[0] = local.dim()
            shape[1:1 + local.dim()] = torch.tensor(local.shape, dtype=torch.int64)
        dist.all_reduce(shape, op=dist.ReduceOp.MAX)
        row_shape = tuple(int(d) for d in shape[2:1 + int(shape[0])].tolist())
        padded = torch.zeros(max(counts), *row_shape, dtype=local.dtype, device=where)
        if counts[self.rank]:
            padded[:counts[self.rank]] = local.to(where)
        received = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(received, padded)
        _broken = False
        return [part[:count].cpu() for part, count in zip(received, counts)]

    def gather_objects(self, local: list) -> list[list]:
        """Every process's list of picklable objects (``local`` here), one list per process in rank order."""
        if not self.distributed:
            return [list(local)]
        global _broken
        _broken = True  # a failure inside the collectives leaves nothing to agree with
        received: list = [None] * self.world_size
        dist.all_gather_object(received, list(local))
        _broken = False
        return received


_current = Processes()
_broken = False


def from_environment() -> Processes:
    """The rank, world size and local rank that ``torchrun`` sets (a single process otherwise)."""
    try:
        return Processes(rank=int(os.environ.get("RANK", "0")), world_size=int(os.environ.get("WORLD_SIZE", "1")),
                         local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers; start the job with torchrun") from None


def join() -> Processes:
    """Join the process group that ``torchrun`` set up (nothing for a single process); returns :func:`current`.

    The group runs Gloo for CPU tensors and, when CUDA is available, NCCL for CUDA tensors.
    """
    global _current, _broken
    processes = from_environment()
    if processes.distributed and not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    _current, _broken = processes, False
    return processes


def current() -> Processes:
    """The job's processes as :func:`join` found them (one process when nothing was joined)."""
    return _current


def close() -> None:
    """End the exchanges: leave the process group, keeping this process's rank in :func:`current`.

    A failure after this is the process's own: :func:`report_failure` no longer waits for the others.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def leave() -> None:
    """Leave the process group, if one was joined; :func:`current` is a single process again."""
    global _current
    close()
    _current = Processes()


def report_failure(exit_code: int, message: str) -> dict[int, tuple[int, str]] | None:
    """Tell the other processes that this one failed, at their next agreement.

    Returns every failure of the job, ``{rank: (exit code, message)}``, this one included;
    None when there is nobody to tell (a single process, no group joined, or a failure
    inside a collective, after which the group cannot be trusted).
    """
    processes = _current
    if not processes.distributed or not dist.is_initialized() or _broken:
        return None
    try:
        return _exchange(processes, exit_code, message)
    except Exception:  # the group itself failed: nothing more to say to the others
        return None


def _exchange(processes: Processes, exit_code: int, message: str) -> dict[int, tuple[int, str]]:
    """The agreement: every process's failure code (0: fine), then the messages of those that failed."""
    global _broken
    _broken = True
    codes = torch.zeros(processes.world_size, dtype=torch.int64)
    codes[processes.rank] = exit_code
    dist.all_reduce(codes)
    failures = {}
    if codes.any():
        text = torch.zeros(MESSAGE_BYTES, dtype=torch.uint8)
        encoded = message.encode("utf-8")[:MESSAGE_BYTES]
        text[:len(encoded)] = torch.tensor(list(encoded), dtype=torch.uint8)
        received = [torch.empty_like(text) for _ in range(processes.world_size)]
        dist.all_gather(received, text)
        for rank, code in enumerate(codes.tolist()):
            if code:
                raw = bytes(received[rank].tolist()).rstrip(b"\0")
                failures[rank] = (code, raw.decode("utf-8", errors="replace"))
    _broken = False
    return failures
