"""Fixed chunks with their own random streams: results do not depend on how many processes share them.

The processes are simulated here by threads that exchange their rows through a barrier
(:class:`ThreadProcesses`), so the library's share-out, seeding and reassembly are checked
in a second; tests/cli/test_sharded_commands.py runs the same under torchrun with Gloo.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from semprobe.attacks.specs import parse_attack
from semprobe.distributed import Processes
from semprobe.models.features import extract_features
from semprobe.robustness.accuracy import evaluate
from semprobe.robustness.alpha_curves import alpha_curve
from semprobe.robustness.curves import accuracy_vs_steps
from semprobe.robustness.sharding import chunk_seed, chunk_slices, map_chunks


@dataclass
class Board:
    """Where the simulated processes leave their rows for each other."""

    world_size: int
    barrier: threading.Barrier = field(init=False)
    rows: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    agreements: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.barrier = threading.Barrier(self.world_size, timeout=60)


@dataclass(frozen=True)
class ThreadProcesses(Processes):
    """One simulated process of a job of ``world_size`` threads."""

    board: Board | None = None

    def agree(self) -> None:
        self.board.agreements.append(self.rank)
        self.board.barrier.wait()

    def gather_rows(self, local, counts, device):
        assert len(local) == counts[self.rank]
        self.board.rows[self.rank] = local.clone()
        self.board.barrier.wait()
        gathered = [self.board.rows[r] for r in range(self.world_size)]
        self.board.barrier.wait()
        return gathered

    def gather_objects(self, local):
        self.board.objects[self.rank] = list(local)
        self.board.barrier.wait()
        gathered = [self.board.objects[r] for r in range(self.world_size)]
        self.board.barrier.wait()
        return gathered


def shared_out(world_size: int, work):
    """``work(processes)`` in ``world_size`` simulated processes; every process's result."""
    board = Board(world_size)
    with ThreadPoolExecutor(world_size) as pool:
        futures = [pool.submit(work, ThreadProcesses(rank, world_size, rank, board)) for rank in range(world_size)]
        return [f.result(timeout=120) for f in futures]


def test_chunks_and_their_seeds():
    assert chunk_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert chunk_slices(0, 4) == []
    seeds = [chunk_seed(0, c) for c in range(100)] + [chunk_seed(1, c) for c in range(100)]
    assert len(set(seeds)) == 200 and chunk_seed(3, 7) == chunk_seed(3, 7)


@pytest.mark.parametrize("world_size", [2, 3, 5])
def test_rows_come_back_in_order_whoever_computed_them(world_size):
    def work(processes):
        def compute(chunk, rows):
            assert chunk % processes.world_size == processes.rank
            return torch.stack([torch.arange(rows.start, rows.stop), torch.full((rows.stop - rows.start,), chunk)], 1)

        return map_chunks(11, 3, compute, dtype=torch.int64, processes=processes)

    single = map_chunks(11, 3, lambda chunk, rows: torch.stack(
        [torch.arange(rows.start, rows.stop), torch.full((rows.stop - rows.start,), chunk)], 1), dtype=torch.int64)
    assert single[:, 0].tolist() == list(range(11)) and single[:, 1].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    for result in shared_out(world_size, work):  # 5 processes for 4 chunks: one has none
        assert torch.equal(result, single)


def test_every_result_is_the_same_on_one_two_and_three_processes(digits_model):
    model, x, y = digits_model
    x, y = x[:45], y[:45]
    pgd = parse_attack("pgd3")

    def work(processes=None):
        common = dict(batch_size=8, seed=5, processes=processes)
        evaluation = evaluate(model, x, y, "natural,fgsm,pgd3,cw3", eps=0.1, step_size=0.03, **common)
        steps = accuracy_vs_steps(model, x, y, [1, 3], eps=0.1, step_size=0.03, **common)
        features = extract_features(model, x, y, attack=pgd, eps=0.1, step_size=0.03, **common)
        curve = alpha_curve(model, x, y, [0.0, 0.5, 1.0], eps=0.1, step_size=0.03, steps=3, **common)
        return evaluation, steps, features, curve

    evaluation, steps, features, curve = work()
    assert evaluation[2].correct < evaluation[0].correct  # the attacks do something
    assert not np.array_equal(features.features, features.features_adv)
    for world_size in (2, 3):
        for other_evaluation, other_steps, other_features, other_curve in shared_out(world_size, work):
            assert [r.per_image for r in other_evaluation] == [r.per_image for r in evaluation]
            assert other_steps.points == steps.points
            np.testing.assert_array_equal(other_features.features, features.features)
            np.testing.assert_array_equal(other_features.features_adv, features.features_adv)
            assert other_curve.to_dict() == curve.to_dict()


def test_autoattack_warnings_come_back_per_chunk_in_order_from_every_process(digits_model):
    # a model that outputs probabilities: AutoAttack's range check warns once per attacked chunk
    model, x, y = digits_model
    probabilities = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))

    def work(processes=None):
        return evaluate(probabilities, x[:20], y[:20], "natural,apgd-ce,pgd3", eps=0.1, batch_size=8, seed=1,
                        processes=processes)

    alone = work()
    assert alone[0].warnings == [] and alone[2].warnings == []
    assert [w.split(": ")[0] for w in alone[1].warnings] == ["images 0-7", "images 8-15", "images 16-19"]
    assert all("probability distribution" in w for w in alone[1].warnings)
    assert "warning: images 8-15: " in str(alone)
    assert type(alone).from_dict(alone.to_dict())[1].warnings == alone[1].warnings
    for shared in shared_out(2, work) + shared_out(3, work):
        assert [r.warnings for r in shared] == [r.warnings for r in alone]


def test_results_do_not_depend_on_which_attacks_ran_before(digits_model):
    model, x, y = digits_model
    alone = evaluate(model, x[:30], y[:30], "pgd3", eps=0.1, batch_size=8, seed=2)
    after = evaluate(model, x[:30], y[:30], "fgsm,pgd3", eps=0.1, batch_size=8, seed=2)
    assert alone[0].per_image == after[1].per_image


def test_every_process_agrees_once_per_round():
    board = Board(2)

    def work(processes):
        return map_chunks(20, 4, lambda chunk, rows: torch.zeros(rows.stop - rows.start), dtype=torch.float32,
                          processes=ThreadProcesses(processes.rank, 2, processes.rank, board))

    shared_out(2, work)
    assert sorted(board.agreements) == [0, 0, 0, 1, 1, 1]  # 5 chunks: 3 rounds of 2
