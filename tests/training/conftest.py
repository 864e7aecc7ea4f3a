"""Fixtures shared by the trainer tests."""

from __future__ import annotations

import pytest


class Interrupted(Exception):
    """Stands for a crash right after an epoch's files were written."""


@pytest.fixture
def train_interrupted(monkeypatch):
    """``train_interrupted(argv, epoch)`` runs ``python -m trainers argv`` in this process and stops
    it right after epoch ``epoch`` is saved, leaving a run folder to resume."""
    from trainers import loop
    from trainers.config import parse_args

    def run(argv: list[str], epoch: int = 1) -> None:
        save_epoch = loop.TrainingRun.save_epoch

        def save_then_stop(self, saved, record):
            save_epoch(self, saved, record)
            if saved == epoch:
                raise Interrupted

        with monkeypatch.context() as patch:
            patch.setattr(loop.TrainingRun, "save_epoch", save_then_stop)
            with pytest.raises(Interrupted):
                loop.train(*parse_args(argv))

    return run
