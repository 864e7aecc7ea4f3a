"""Time the CCA closed form against scikit-learn, and the permutation nulls.

At n = 5000 pairs, p = 512 image features and q = 50 word dimensions, two word sides:

* ``continuous``: Gaussian Y with one planted canonical correlation (0.6): the general case,
  whitened word side of rank 50;
* ``words``: the vectors of K = 10 classes repeated per image (what ``semprobe cca``
  sees): rank K - 1 = 9 after centring.

For each: the closed-form fit (``CCA(n_components=1)``, methods ``svd`` and ``cov``) and
``sklearn.cross_decomposition.CCA(n_components=1)`` alternate ``--repeats`` times on the
same data (median seconds, speed-up, sklearn's iterations, and the difference of the first
canonical correlation, sklearn's taken as the correlation of its first variates); then one
1,000-permutation pair-shuffle null (:func:`semprobe.stats.pair_shuffle_test`, fit
included). Finally the relabelling null over all 8! = 40,320 relabellings and a full
``cca_report`` at the CLI defaults (500 pairs, 1,000 bootstrap replicates, 1,000
permutations).

    .venv/bin/python benchmarks/stats.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.cross_decomposition import CCA as SklearnCCA

from semprobe.stats import CCA, cca_report, pair_shuffle_test, relabel_test

N, P, Q, K = 5000, 512, 50, 10


def data(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Features X (N x P) and word side Y (N x Q) of the given kind, with shared structure."""
    if kind == "continuous":
        latent = rng.standard_normal(N)
        X, Y = rng.standard_normal((N, P)), rng.standard_normal((N, Q))
        X[:, 0] = latent
        Y[:, 0] = 0.6 * latent + 0.8 * Y[:, 0]
        return X @ rng.standard_normal((P, P)), Y
    words = rng.standard_normal((K, Q))
    labels = rng.integers(0, K, N)
    X = 0.02 * words[labels] @ rng.standard_normal((Q, P)) + rng.standard_normal((N, P))
    return X, words[labels]


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def sklearn_first(X: np.ndarray, Y: np.ndarray) -> tuple[float, int]:
    """First canonical correlation from scikit-learn's iterative CCA, and its iteration count."""
    model = SklearnCCA(n_components=1).fit(X, Y)
    x_scores, y_scores = model.transform(X, Y)
    return float(np.corrcoef(x_scores[:, 0], y_scores[:, 0])[0, 1]), int(model.n_iter_[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings per side (median reported)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    print(f"n = {N}, p = {P}, q = {Q}; median of {args.repeats} alternating runs, seconds")
    print(
        f"{'word side':<11} {'rho1':>6} {'svd':>7} {'cov':>7} {'sklearn':>8} {'iter':>5} {'svd x':>7} {'cov x':>7} "
        f"{'|d rho1|':>9} {'null 1000':>10}"
    )
    for kind in ("continuous", "words"):
        X, Y = data(kind, rng)
        times: dict[str, list[float]] = {"svd": [], "cov": [], "sklearn": []}
        for _ in range(args.repeats):
            for method in ("svd", "cov"):
                seconds, model = timed(lambda: CCA(n_components=1, method=method).fit(X, Y))
                times[method].append(seconds)
                ours = model.canonical_correlations_[0]
            seconds, (theirs, iterations) = timed(lambda: sklearn_first(X, Y))
            times["sklearn"].append(seconds)
        median = {name: statistics.median(values) for name, values in times.items()}
        null_seconds, _ = timed(lambda: pair_shuffle_test(X, Y, n_perm=1000, random_state=0))
        print(
            f"{kind:<11} {ours:6.3f} {median['svd']:7.3f} {median['cov']:7.3f} {median['sklearn']:8.3f} {iterations:5d} "
            f"{median['sklearn'] / median['svd']:6.1f}x {median['sklearn'] / median['cov']:6.1f}x "
            f"{abs(ours - theirs):9.1e} {null_seconds:10.2f}"
        )

    words = rng.standard_normal((8, Q))
    labels = rng.integers(0, 8, N)
    X = 0.02 * words[labels] @ rng.standard_normal((Q, P)) + rng.standard_normal((N, P))
    seconds, test = timed(lambda: relabel_test(X, labels, words))
    print(f"relabelling null, K = 8, all {test.n_perm} relabellings (fit included): {seconds:.2f} s")

    words = rng.standard_normal((K, Q))
    labels = np.repeat(np.arange(K), 1000)
    X = 0.02 * words[labels] @ rng.standard_normal((Q, P)) + rng.standard_normal((labels.size, P))
    seconds, _ = timed(lambda: cca_report(X, labels, words))
    print(f"cca_report at the defaults (500 pairs of 10,000 images, p = {P}, K = {K}): {seconds:.2f} s")


if __name__ == "__main__":
    main()
