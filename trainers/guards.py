"""What stops a training run cleanly: divergence (NaN or inf), Ctrl-C held back while an epoch's
files are written, and the one-pass finiteness check the loop runs on weights and losses.
Light to import (torch only inside :func:`all_finite`): the command line catches its
exceptions before torch is loaded."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite; the run stopped before saving them."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run; the message says which epoch the run folder keeps."""


@contextlib.contextmanager
def interrupts_held_back() -> Iterator[None]:
    """Hold back SIGINT (Ctrl-C) inside the block and deliver it as KeyboardInterrupt after it,
    so that an epoch's files are written completely. Outside the main thread, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when no tensor holds NaN or inf: one concatenation, one check (per dtype and device)."""
    import torch

    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.dtype, tensor.device), []).append(tensor.detach().reshape(-1))
    return all(bool(torch.isfinite(torch.cat(group)).all()) for group in groups.values())
