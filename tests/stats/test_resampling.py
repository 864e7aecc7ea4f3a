"""Stratified draws, bootstrap intervals and permutation p-values (semprobe.stats.resampling, .nulls)."""

import math

import numpy as np
import pytest

from semprobe.errors import ConfigError
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import (
    basic_correlation_interval,
    bootstrap_within_class,
    class_relabellings,
    percentile_interval,
    stratified_sample,
    stratified_split,
)


def test_stratified_sample_keeps_class_shares_and_minimum():
    labels = np.repeat(np.arange(3), [100, 50, 10])
    rng = np.random.default_rng(0)
    sample = stratified_sample(labels, 32, rng)
    assert np.bincount(labels[sample]).tolist() == [20, 10, 2]
    assert np.unique(sample).size == 32 and np.all(np.diff(sample) > 0)
    assert np.bincount(labels[stratified_sample(labels, 12, rng, min_per_class=3)]).min() >= 3
    with pytest.raises(ConfigError):
        stratified_sample(labels, 161, rng)


def test_stratified_split_and_bootstrap_stay_within_class():
    labels = np.repeat(np.arange(4), [6, 7, 2, 9])
    rng = np.random.default_rng(1)
    train, test = stratified_split(labels, 0.5, rng)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == labels.size
    assert set(labels[train]) == set(labels[test]) == {0, 1, 2, 3}
    replicate = bootstrap_within_class(labels, rng)
    assert np.array_equal(np.bincount(labels[replicate]), np.bincount(labels))


def test_relabellings_exact_up_to_eight_classes():
    perms, exact = class_relabellings(4, 5, np.random.default_rng(0))
    assert exact and perms.shape == (24, 4) and perms[0].tolist() == [0, 1, 2, 3]
    assert len({tuple(p) for p in perms}) == math.factorial(4)
    perms, exact = class_relabellings(9, 50, np.random.default_rng(0))
    assert not exact and perms.shape == (50, 9) and np.all(np.sort(perms, axis=1) == np.arange(9))


def test_permutation_p_values_exact_and_monte_carlo():
    exact = PermutationTest("t", "relabel", 0.5, np.array([0.5, 0.1, 0.7, 0.5 - 1e-12]), True)
    assert exact.p_value == 0.75  # the identity, the tie within 1e-9 and 0.7
    monte_carlo = PermutationTest("t", "pair_shuffle", 0.5, np.array([0.1, 0.2, 0.6]), False)
    assert monte_carlo.p_value == pytest.approx(2 / 4)
    assert monte_carlo.to_dict()["n_perm"] == 3


def test_bootstrap_intervals():
    replicates = np.linspace(0.2, 0.6, 1001)
    assert percentile_interval(replicates, 0.9) == pytest.approx((0.22, 0.58))
    low, high = basic_correlation_interval(0.7, replicates, 0.9)
    z = np.arctanh
    assert (low, high) == pytest.approx((np.tanh(2 * z(0.7) - z(0.58)), np.tanh(2 * z(0.7) - z(0.22))))
    assert -1 < low < high < 1
