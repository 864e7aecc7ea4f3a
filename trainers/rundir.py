"""The files of a run folder, all written atomically (only by the main process).

==================  ===========================================================
``config.json``     every option of the run, resolved (rewritten on resume)
``metrics.jsonl``   one JSON object per completed epoch
``last.pt``         semprobe checkpoint of the last completed epoch, with the
                    optimizer and scheduler states (what ``--resume`` reads)
``last_state.pt``   what exact resumption needs beyond the checkpoint schema:
                    the epoch and the SCARL word centres (tensors and plain
                    types only, read with ``weights_only=True``)
``best.pt``         semprobe checkpoint of the epoch with the best validation
                    PGD accuracy, or clean accuracy for a run that trains on
                    no attacked images (no optimizer state)
==================  ===========================================================

A fresh run refuses a folder that holds a run unless ``--overwrite``, which removes the
earlier run's files once every check has passed. An epoch is recorded in this order:
its metrics line, ``last_state.pt``, ``last.pt``, ``best.pt``. A crash between two writes
is harmless: resuming keeps the metrics lines up to the epoch of ``last.pt`` and
refuses a ``last_state.pt`` of another epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semprobe.checkpoint import Checkpoint, load_checkpoint, read_checkpoint_file
from semprobe.errors import CheckpointError, ConfigError
from semprobe.io import atomic_path, write_json_atomic, write_text_atomic

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LAST = "last.pt"
STATE = "last_state.pt"
BEST = "best.pt"
RUN_FILES = (CONFIG, METRICS, LAST, STATE, BEST)


@dataclass
class ResumePoint:
    """A run's last completed epoch: its checkpoint and the extra resume state."""

    checkpoint: Checkpoint
    state: dict[str, Any]


def check_fresh(run_dir: Path, overwrite: bool) -> None:
    """Refuse to start a run over another one unless ``overwrite``."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file; name a folder")
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run ({', '.join(existing)}); continue it with --resume {run_dir} "
            "or start over with --overwrite"
        )


def start(run_dir: Path, config: dict[str, Any], resumed_epoch: int) -> None:
    """Prepare the folder: ``config.json``; for a fresh run, the files of an earlier run removed;
    for a resumed one, the metrics lines after ``resumed_epoch`` dropped."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if resumed_epoch == 0:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    write_json_atomic(run_dir / CONFIG, config)
    path = run_dir / METRICS
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] <= resumed_epoch]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def read_resume_point(run_dir: Path) -> ResumePoint:
    """Load ``last.pt`` and ``last_state.pt`` of ``run_dir`` and check that they belong together."""
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"nothing to resume: {run_dir / LAST} does not exist")
    checkpoint = load_checkpoint(run_dir / LAST)
    state = read_checkpoint_file(run_dir / STATE) if (run_dir / STATE).is_file() else None
    if not isinstance(state, dict) or state.get("epoch") != checkpoint.epoch:
        raise CheckpointError(
            f"{run_dir / STATE} is missing or from another epoch than {run_dir / LAST} "
            f"(epoch {checkpoint.epoch}); the run cannot be resumed exactly"
        )
    return ResumePoint(checkpoint=checkpoint, state=state)


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one epoch's record as a JSON line, flushed to disk."""
    with open(run_dir / METRICS, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``last_state.pt`` (tensors and plain types only)."""
    with atomic_path(run_dir / STATE) as tmp:
        torch.save(state, tmp)

