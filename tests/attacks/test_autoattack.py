"""AutoAttack through pyautoattack: runs on a tiny model, never weaker than PGD-20."""

import pytest
import torch

from semprobe import attacks
from semprobe.attacks.autoattack import autoattack, check_attacks
from semprobe.errors import ConfigError

EPS = 0.1


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_standard_autoattack_is_at_least_as_strong_as_pgd20(digits_model):
    model, x, y = digits_model
    x, y = x[:16], y[:16]
    x_aa = autoattack(model, x, y, eps=EPS, batch_size=16, seed=0)
    assert (x_aa - x).abs().max() <= EPS + 1e-6 and x_aa.min() >= 0 and x_aa.max() <= 1
    pgd20 = attacks.pgd(model, x, y, eps=EPS, step_size=EPS / 4, steps=20, generator=torch.Generator().manual_seed(0))
    assert accuracy(model, x_aa, y) <= accuracy(model, pgd20, y)


def test_square_alone_runs_and_is_seeded(digits_model):
    # at eps 0.3 Square breaks these images within a few hundred of its 5,000 queries (at 0.1 most
    # of them resist all 5,000: seconds per run); its random squares still decide each result
    model, x, y = digits_model
    x, y, eps = x[:8], y[:8], 0.3
    first = autoattack(model, x, y, eps=eps, attacks=["square"], seed=3)
    second = autoattack(model, x, y, eps=eps, attacks=["square"], seed=3)
    assert torch.equal(first, second)
    assert (first - x).abs().max() <= eps + 1e-6 and first.min() >= 0 and first.max() <= 1
    assert accuracy(model, first, y) < accuracy(model, x, y)


def test_square_takes_more_queries_and_restarts(digits_model):
    # at eps 0.3, 10 queries break few of these images and 300 nearly all; each restart starts
    # again on the images the ones before left unbroken, with the same first stream, so it
    # can only add successes
    model, x, y = digits_model
    x, y = x[:32], y[:32]
    broken = {}
    for queries, restarts in ((10, 1), (10, 3), (300, 1)):
        x_adv = autoattack(model, x, y, eps=0.3, attacks=["square"], seed=3, square_queries=queries,
                           square_restarts=restarts)
        assert (x_adv - x).abs().max() <= 0.3 + 1e-6
        broken[queries, restarts] = 1 - accuracy(model, x_adv, y)
    assert broken[10, 1] < broken[10, 3] < broken[300, 1]
    with pytest.raises(ConfigError, match="standard version keeps"):
        autoattack(model, x, y, eps=0.3, square_queries=100)
    with pytest.raises(ConfigError, match="1 to 10 restarts"):
        autoattack(model, x, y, eps=0.3, attacks=["square"], square_restarts=0)


def test_autoattack_warnings_are_collected_instead_of_printed(digits_model, capsys):
    # a model that outputs probabilities, not logits: AutoAttack's range check warns on every run
    model, x, y = digits_model
    probabilities = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    collected = []
    autoattack(probabilities, x[:8], y[:8], eps=EPS, attacks=["apgd-ce"], warnings=collected)
    assert len(collected) == 1 and "output is a probability distribution" in collected[0]
    assert "probability distribution" not in capsys.readouterr().err
    autoattack(model, x[:8], y[:8], eps=EPS, attacks=["apgd-ce"], warnings=(clean := []))
    assert clean == []


def test_bad_subsets_are_refused():
    with pytest.raises(ConfigError, match="unknown AutoAttack"):
        check_attacks(["apgd-ce", "deepfool"], 10)
    with pytest.raises(ConfigError, match="at least 4 classes"):
        check_attacks(["apgd-t"], 3)
    assert check_attacks(None, 10) == ("apgd-ce", "apgd-t", "fab-t", "square")
