"""The checks a training run makes before it writes anything: its folder, a resume, the batch split, where
the data may live.

:func:`trainers.loop.train` calls :func:`run_folder_config` first (a resumed run continues with the stored
configuration, :mod:`trainers.resuming`) and :func:`check_data_placement` once the data is loaded, so every
refusal is one :class:`~semprobe.errors.ConfigError` line before a file of the run changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from semprobe.errors import ConfigError
from trainers import rundir
from trainers.config import TrainConfig
from trainers.resident import can_hold
from trainers.resuming import resumed_config
from trainers.validation import Splits


def run_folder_config(config: TrainConfig, given: Iterable[str],
                      world_size: int) -> tuple[TrainConfig, rundir.ResumePoint | None]:
    """``(config, resume point or None)``: with ``--resume``, the stored run's configuration with the options
    ``given`` on the command line checked against it; else ``config`` after checking that its folder is new
    (or ``--overwrite``). Either way the folder must be writable and the batch split over the processes."""
    run_dir = Path(config.out)
    point = None
    if config.resume:
        point = rundir.read_resume_point(run_dir)
        config = resumed_config(point.checkpoint.config, config, set(given))
        done = point.checkpoint.epoch
        # a finished run is resumed only to restore a best.pt that a crash left behind last.pt
        if done > config.epochs or (done == config.epochs and not rundir.best_is_stale(run_dir, point.checkpoint)):
            raise ConfigError(f"{run_dir} has already run {done} of {config.epochs} epochs; "
                              "pass a larger --epochs to continue it")
    else:
        rundir.check_fresh(run_dir, config.overwrite)
    rundir.check_writable(run_dir)
    if config.batch_size % world_size:
        raise ConfigError(f"--batch-size {config.batch_size} must be divisible by the {world_size} processes")
    return config, point


def check_data_placement(config: TrainConfig, splits: Splits) -> None:
    """``--data-on-device on`` needs an in-memory split and no ``--extra-data``."""
    if config.data_on_device != "on":
        return
    if splits.extra is not None:
        raise ConfigError("--data-on-device on does not take --extra-data (its mixed batches come from a DataLoader): "
                          "use --data-on-device off")
    if not can_hold(splits.train):
        raise ConfigError(f"--data-on-device on needs a dataset held in memory; {config.dataset} is read from "
                          "image files: use --data-on-device off")
