"""Stratified sampling, splitting and bootstrapping by class, and class relabellings.

All draws come from a :class:`numpy.random.Generator` passed in by the caller, so a
report that seeds one generator gives the same numbers for the same ``random_state``.
Every draw keeps each class's share of the sample: the images of class k are only ever
exchanged with images of class k (the bootstrap "resampling images within class" of
``shared/DESIGN.md``, "The statistics, done right").
"""

from __future__ import annotations

import itertools

import numpy as np

from semprobe.errors import ConfigError

#: Up to this many classes a relabelling test enumerates all K! relabellings (40,320 for 8).
EXACT_RELABEL_MAX_CLASSES = 8


def class_indices(labels: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """The sample indices of each class, in increasing order: ``result[k]`` for class k."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_classes + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(n_classes)]


def stratified_sample(labels: np.ndarray, size: int, rng: np.random.Generator, *, min_per_class: int = 1) -> np.ndarray:
    """``size`` sample indices without replacement, each class in proportion to its count.

    Class k receives ``size * n_k / n`` draws rounded by largest remainder, at least
    ``min_per_class`` and at most ``n_k``. Returns the chosen indices in increasing order.
    """
    n_classes = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=n_classes)
    present = counts > 0
    if size > labels.size or size < min_per_class * int(present.sum()):
        raise ConfigError(
            f"cannot draw {size} samples with at least {min_per_class} per class from {labels.size} "
            f"samples of {int(present.sum())} classes"
        )
    quota = size * counts / labels.size
    take = np.where(present, np.maximum(np.floor(quota).astype(np.int64), min_per_class), 0)
    take = np.minimum(take, counts)
    # Hand out the remaining draws by largest remainder, then take back any excess from
    # the classes furthest above their quota (only possible after raising to the minimum).
    while take.sum() < size:
        room = take < counts
        k = int(np.argmax(np.where(room, quota - take, -np.inf)))
        take[k] += 1
    while take.sum() > size:
        spare = take > np.where(present, min_per_class, 0)
        k = int(np.argmax(np.where(spare, take - quota, -np.inf)))
        take[k] -= 1
    chosen = [rng.choice(idx, size=t, replace=False) for idx, t in zip(class_indices(labels, n_classes), take) if t]
    return np.sort(np.concatenate(chosen))


def stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (train, test), ``test_fraction`` of every class in test.

    Class k puts ``round(n_k * test_fraction)`` samples in test, clipped to [1, n_k - 1], so
    every class is on both sides; each class needs at least 2 samples. Both index arrays
    are returned in increasing order.
    """
    train, test = [], []
    for idx in class_indices(labels, int(labels.max()) + 1):
        if idx.size == 0:
            continue
        if idx.size < 2:
            raise ConfigError("a stratified split needs at least 2 samples of every class present")
        n_test = min(max(round(idx.size * test_fraction), 1), idx.size - 1)
        shuffled = rng.permutation(idx)
        test.append(shuffled[:n_test])
        train.append(shuffled[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def bootstrap_within_class(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One bootstrap replicate: for every class, n_k indices drawn with replacement from its n_k samples."""
    groups = class_indices(labels, int(labels.max()) + 1)
    return np.concatenate([idx[rng.integers(0, idx.size, size=idx.size)] for idx in groups if idx.size])


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile bootstrap interval: the (1 -/+ confidence)/2 quantiles of the replicates
    (Efron & Tibshirani 1993, An Introduction to the Bootstrap, eq. 13.5)."""
    low, high = np.quantile(replicates, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(low), float(high)


def basic_correlation_interval(estimate: float, replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Basic bootstrap interval of a correlation, on Fisher's z = atanh(r) scale.

    ``[tanh(2 z - z*_hi), tanh(2 z - z*_lo)]`` with ``z*_lo, z*_hi`` the (1 -/+ confidence)/2
    quantiles of the replicates' z (Davison & Hinkley 1997, Bootstrap Methods and their
    Application, eq. 5.6, on the transformed scale of section 5.2.2). It assumes that the
    replicates deviate from the estimate as the estimate deviates from the truth, so a
    statistic that noise pulls down (a correlation of noisy quantities) has its interval
    shifted back up, where a percentile interval would sit below the estimate. The z
    scale keeps the interval inside (-1, 1).
    """
    bound = 1.0 - 1e-12
    z = np.arctanh(np.clip(estimate, -bound, bound))
    z_low, z_high = np.quantile(np.arctanh(np.clip(replicates, -bound, bound)), [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(np.tanh(2.0 * z - z_high)), float(np.tanh(2.0 * z - z_low))


def class_relabellings(n_classes: int, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Permutations of the class order for a relabelling test: ``(perms, exact)``.

    With ``n_classes <= EXACT_RELABEL_MAX_CLASSES`` all K! permutations are returned, the
    identity first, and ``exact`` is True (``n_perm`` is then ignored). Otherwise ``n_perm``
    permutations drawn uniformly at random (Monte Carlo). ``perms[b, k]`` is the class whose
    vector class k receives in relabelling b.
    """
    if n_classes <= EXACT_RELABEL_MAX_CLASSES:
        perms = np.array(list(itertools.permutations(range(n_classes))), dtype=np.int64)
        return perms, True
    return np.stack([rng.permutation(n_classes) for _ in range(n_perm)]), False
