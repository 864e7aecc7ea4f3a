"""The files of a run folder, all written atomically (only by the main process).

==================  ===========================================================
``config.json``     every option of the run, resolved (rewritten on resume)
``metrics.jsonl``   one JSON object per completed epoch
``last.pt``         semprobe checkpoint of the last completed epoch, with the
                    optimizer and scheduler states and, under ``resume``, what
                    exact resumption needs beyond them (SCARL's word centres):
                    the one file ``--resume`` reads
``best.pt``         semprobe checkpoint of the epoch with the best validation
                    PGD accuracy, or clean accuracy for a run that trains on
                    no attacked images (no optimizer state)
==================  ===========================================================

Runs written by earlier versions keep the resume state in ``last_state.pt``; it is
read when ``last.pt`` has none and removed by the next save.

An epoch is recorded in this order: its metrics line (appended), ``last.pt``, ``best.pt``
(each written to a temporary ``.NAME.*.tmp`` and renamed into place). A crash at any
instant leaves a resumable folder: resuming drops a torn last metrics line and the lines
after the epoch of ``last.pt``, removes leftover temporary files, and rewrites
``best.pt`` from ``last.pt`` when the crash fell between the two. A folder with no
finished epoch (no ``last.pt``: interrupted in its first epoch) is not a run yet: the
same command starts it again without ``--overwrite``. A fresh run refuses a folder that
holds a run unless ``--overwrite``, which removes the earlier run's files once every
check has passed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semprobe.models.checkpoint import Checkpoint, load_checkpoint, non_finite_tensors, read_checkpoint_file, save_checkpoint
from semprobe.errors import CheckpointError, ConfigError
from semprobe.io import check_folder_writable, write_json_atomic, write_text_atomic
from semprobe.robustness.run_folder import BEST, CONFIG, LAST, METRICS  # the run-folder format, shared

LEGACY_STATE = "last_state.pt"
RUN_FILES = (CONFIG, METRICS, LAST, BEST, LEGACY_STATE)
#: the files that exist once an epoch has finished: a folder holding one holds a run
FINISHED_RUN_FILES = (LAST, BEST, LEGACY_STATE)


@dataclass
class ResumePoint:
    """A run's last completed epoch: its checkpoint, the extra resume state and its metrics lines."""

    checkpoint: Checkpoint
    state: dict[str, Any]
    metrics_lines: list[str]


def is_temporary(name: str) -> bool:
    """True for the name of a temporary file the atomic writes of a run file leave when killed
    (``.last.pt.k2j3h4.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp") and name[1:].startswith(tuple(f"{f}." for f in RUN_FILES))


def remove_temporaries(run_dir: Path) -> None:
    """Remove the temporary files that killed writes left in ``run_dir``."""
    for path in run_dir.iterdir():
        if is_temporary(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _is_run_config(path: Path) -> bool:
    """True when ``path`` is (or could be) the ``config.json`` of a trainers run."""
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and {"method", "dataset", "arch"} <= set(config)


def check_fresh(run_dir: Path, overwrite: bool) -> None:
    """Refuse to start a run over another one unless ``overwrite``.

    A folder whose run never finished an epoch (only ``config.json`` and an empty or torn
    ``metrics.jsonl``) may be started again; a ``config.json`` of something other than a
    run is not replaced without ``overwrite``.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file; name a folder")
    if overwrite:
        return
    existing = [name for name in FINISHED_RUN_FILES if (run_dir / name).exists()]
    if existing:
        raise ConfigError(
            f"{run_dir} already holds a run ({', '.join(existing)}); continue it with --resume {run_dir} "
            "or start over with --overwrite"
        )
    if (run_dir / CONFIG).exists() and not _is_run_config(run_dir / CONFIG):
        raise ConfigError(
            f"{run_dir} holds a {CONFIG} that is not a training run's; choose another --out, "
            "or pass --overwrite to replace it"
        )


def check_writable(run_dir: Path) -> None:
    """Refuse a run folder that cannot be created or written (a read-only folder or file
    system), by creating and removing a temporary file where the run would write first."""
    check_folder_writable(run_dir, "--out")


def start(run_dir: Path, config: dict[str, Any], point: ResumePoint | None) -> None:
    """Prepare the folder: leftover temporary files removed, ``config.json`` written; for a
    fresh run, the files of an earlier run removed; for a resumed one, the metrics lines
    after its epoch dropped and ``best.pt`` restored if a crash left it behind ``last.pt``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_temporaries(run_dir)
    if point is None:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    write_json_atomic(run_dir / CONFIG, config)
    lines = point.metrics_lines if point is not None else []
    write_text_atomic(run_dir / METRICS, "".join(line + "\n" for line in lines))
    if point is not None:
        restore_best(run_dir, point.checkpoint)


def metrics_lines(run_dir: Path, last_epoch: int) -> list[str]:
    """The lines of ``metrics.jsonl`` up to ``last_epoch``, a torn last line dropped.

    A crash during an append can leave the last line half-written; any other line that
    is not an epoch's JSON record is damage a person made, reported with its number.
    """
    path = run_dir / METRICS
    try:
        lines = path.read_text().splitlines() if path.exists() else []
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {path} ({exc}); the run cannot be resumed") from None
    kept = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # torn by a crash during the append
                break
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            raise CheckpointError(
                f"{path} line {number} is not an epoch's JSON record; repair or delete that line to resume"
            )
        if record["epoch"] <= last_epoch:
            kept.append(line)
    return kept


def _resume_state(run_dir: Path, checkpoint: Checkpoint) -> dict[str, Any]:
    """The resume state inside ``last.pt``, or in the ``last_state.pt`` of the earlier layout."""
    if checkpoint.resume_state is not None:
        return dict(checkpoint.resume_state)
    legacy = read_checkpoint_file(run_dir / LEGACY_STATE) if (run_dir / LEGACY_STATE).is_file() else None
    if not isinstance(legacy, dict) or legacy.get("epoch") != checkpoint.epoch:
        raise CheckpointError(
            f"{run_dir / LAST} holds no resume state and {run_dir / LEGACY_STATE} is missing or from another "
            f"epoch (last.pt has epoch {checkpoint.epoch}); the run cannot be resumed exactly"
        )
    return {key: value for key, value in legacy.items() if key != "epoch"}


def read_resume_point(run_dir: Path) -> ResumePoint:
    """Load the last finished epoch of ``run_dir``: ``last.pt`` (whose weights, optimizer and
    resume state must be finite) and the metrics lines up to it."""
    if not (run_dir / LAST).is_file():
        if (run_dir / CONFIG).is_file():
            raise ConfigError(
                f"nothing to resume: {run_dir} has no finished epoch (no {LAST}); run the same command "
                "again to start it over, --overwrite is not needed"
            )
        raise ConfigError(f"nothing to resume: {run_dir / LAST} does not exist")
    checkpoint = load_checkpoint(run_dir / LAST)
    state = _resume_state(run_dir, checkpoint)
    bad = non_finite_tensors({"optimizer": checkpoint.optimizer_state, "resume": state})
    if bad:
        raise CheckpointError(f"cannot resume from {run_dir / LAST}: non-finite values in {', '.join(bad[:4])}")
    return ResumePoint(checkpoint=checkpoint, state=state, metrics_lines=metrics_lines(run_dir, checkpoint.epoch))


def best_is_stale(run_dir: Path, checkpoint: Checkpoint) -> bool:
    """True when a crash fell between the writes of ``last.pt`` and ``best.pt`` of an epoch
    that was the best: ``last.pt`` names its own epoch as the best, ``best.pt`` holds another."""
    if checkpoint.metrics.get("best_epoch") != checkpoint.epoch:
        return False
    try:
        best = read_checkpoint_file(run_dir / BEST)
    except CheckpointError:
        return True
    return not isinstance(best, dict) or best.get("epoch") != checkpoint.epoch


def restore_best(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Rewrite a stale ``best.pt`` from ``last.pt``, which then holds the best epoch."""
    if best_is_stale(run_dir, checkpoint):
        save_checkpoint(run_dir / BEST, checkpoint.model, **_best_fields(checkpoint))


def _best_fields(checkpoint: Checkpoint) -> dict[str, Any]:
    """What ``best.pt`` stores beside the model (everything of ``last.pt`` but the optimizer,
    scheduler and resume state)."""
    return {
        "dataset": checkpoint.dataset, "classes": checkpoint.classes, "heads": checkpoint.heads,
        "word_vectors": checkpoint.word_vectors, "epoch": checkpoint.epoch, "config": checkpoint.config,
        "metrics": checkpoint.metrics,
    }


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one epoch's record as a JSON line, flushed to disk."""
    with open(run_dir / METRICS, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def record_epoch(run_dir: Path, record: dict[str, Any], model: Any, fields: dict[str, Any], *, optimizer: Any,
                 scheduler: Any, resume_state: dict[str, Any], improved: bool) -> None:
    """Write a finished epoch in the order the module docstring gives: its metrics line,
    ``last.pt`` (with ``resume_state``), then ``best.pt`` when the epoch ``improved``.

    ``fields`` are :func:`~semprobe.models.checkpoint.save_checkpoint`'s keyword arguments shared
    by both checkpoints.
    """
    append_metrics(run_dir, record)
    save_checkpoint(run_dir / LAST, model, optimizer=optimizer, scheduler=scheduler, resume_state=resume_state,
                    **fields)
    (run_dir / LEGACY_STATE).unlink(missing_ok=True)
    if improved:
        save_checkpoint(run_dir / BEST, model, **fields)
