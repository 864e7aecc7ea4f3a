"""semprobe.stats.intervals: McNemar's exact test against scipy's binomial test, Newcombe's paired interval
against its unpaired special case and against simulated coverage, the per-image flags of eval."""

import math
import random

import pytest
import torch
from scipy.stats import binomtest

from semprobe.stats.intervals import (
    mcnemar_exact,
    mover_difference,
    paired_comparison,
    paired_difference_interval,
    wilson_interval,
)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 1), (1, 0), (3, 9), (9, 3), (10, 10), (25, 40), (400, 455),
                                      (4000, 4150)])
def test_mcnemar_exact_equals_the_two_sided_binomial_test_of_the_discordant_pairs(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_by_hand():
    # b = 1, c = 5: P(X <= 1) for Binomial(6, 1/2) = (1 + 6) / 64, two-sided 14/64
    assert mcnemar_exact(1, 5) == pytest.approx(14 / 64, rel=1e-12)


def test_paired_interval_is_the_unpaired_one_when_the_corrected_correlation_is_zero():
    # ad - bc = 30*10 - 20*15 = 0, so phi = 0 and Newcombe's method 10 reduces to MOVER on Wilson intervals
    both, only_first, only_second, neither = 30, 20, 15, 10
    n = both + only_first + only_second + neither
    p1, p2 = (both + only_first) / n, (both + only_second) / n
    unpaired = mover_difference(p1, wilson_interval(both + only_first, n), p2, wilson_interval(both + only_second, n))
    assert paired_difference_interval(both, only_first, only_second, neither) == pytest.approx(unpaired, rel=1e-12)


def test_paired_interval_by_hand_with_a_positive_correlation():
    both, only_first, only_second, neither = 50, 5, 2, 43
    n = 100
    p1, p2 = 0.55, 0.52
    l1, u1 = wilson_interval(55, n)
    l2, u2 = wilson_interval(52, n)
    cross = both * neither - only_first * only_second - n / 2
    phi = cross / math.sqrt(55 * 45 * 52 * 48)
    low = (p1 - p2) - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = (p1 - p2) + math.sqrt((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    assert paired_difference_interval(both, only_first, only_second, neither) == pytest.approx(
        (p1 - p2, low, high), rel=1e-12)
    unpaired = mover_difference(p1, (l1, u1), p2, (l2, u2))
    assert high - low < 0.5 * (unpaired[2] - unpaired[1])  # strongly correlated models: a much narrower interval


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """Simulated pairs of correlated models (the case of two robust models on one test set)."""
    rng = random.Random(0)
    # joint distribution of (first right, second right): P(both) .60, P(first only) .08, P(second only) .04
    cells = [(True, True)] * 60 + [(True, False)] * 8 + [(False, True)] * 4 + [(False, False)] * 28
    truth = 0.08 - 0.04
    covered, trials = 0, 2000
    for _ in range(trials):
        draws = [rng.choice(cells) for _ in range(300)]
        result = paired_comparison([a for a, _ in draws], [b for _, b in draws])
        covered += result.ci95[0] <= truth <= result.ci95[1]
    assert 0.93 <= covered / trials <= 0.975


def test_paired_comparison_counts_the_table():
    first = [True, True, False, False, True, True]
    second = [True, False, True, False, True, False]
    result = paired_comparison(first, second)
    assert (result.both, result.only_first, result.only_second, result.neither) == (2, 2, 1, 1)
    assert result.accuracy_first == pytest.approx(4 / 6) and result.accuracy_second == pytest.approx(3 / 6)
    assert result.mcnemar_p == pytest.approx(mcnemar_exact(2, 1))
    with pytest.raises(ValueError, match="different numbers of images"):
        paired_comparison(first, second[:-1])


def test_evaluate_keeps_the_per_image_robustness_for_paired_tests(digits_model):
    from semprobe.attacks.specs import parse_attack_list
    from semprobe.robustness.accuracy import evaluate

    model, x, y = digits_model
    results = evaluate(model, x[:64], y[:64], parse_attack_list("natural,pgd5"), eps=0.1)
    for result in results:
        assert len(result.per_image) == 64 and set(result.per_image) <= {"0", "1"}
        assert result.per_image.count("1") == result.correct
    natural, pgd = (r.flags() for r in results)
    assert all(n or not p for n, p in zip(natural, pgd))  # robust implies clean-correct
    assert torch.equal(torch.tensor(natural), model(x[:64]).argmax(1) == y[:64])
