"""Time the CCA closed form against scikit-learn, and the permutation nulls.

At n = 5000 pairs, p = 512 image features and q = 50 word dimensions, three word sides:

* ``independent``: Gaussian X and Y, no association (scikit-learn's power iteration
  converges slowly: the first canonical correlations are close together);
* ``planted``: Gaussian Y with one planted canonical correlation of 0.6 (a large gap:
  scikit-learn converges in a few iterations);
* ``words``: the vectors of K = 10 classes repeated per image, features carrying a little
  of their geometry (what ``semprobe cca`` sees): rank K - 1 = 9 after centring.

For each: the closed-form fit (``CCA(n_components=1)``, methods ``svd``, ``cov`` and
``cholesky``) and ``sklearn.cross_decomposition.CCA(n_components=1)`` alternate
``--repeats`` times on the same data (median seconds, speed-ups, sklearn's iterations, and
the largest difference of the first canonical correlation, sklearn's taken as the
correlation of its first variates); then one 1,000-permutation pair-shuffle null
(:func:`semprobe.stats.pair_shuffle_test` with ``method="cholesky"``, fit included).
Finally the relabelling null over all 8! = 40,320 relabellings and a full ``cca_report``
at the CLI defaults (500 pairs, 1,000 bootstrap replicates, 1,000 permutations).

    .venv/bin/python benchmarks/stats.py [--repeats 5]

Measured on the development machine (2 AMD EPYC cores, OpenBLAS 0.3.31) while other jobs
kept the load at 2-4, so with ``OPENBLAS_NUM_THREADS=1``: multi-threaded BLAS stalls when
another process holds a core (a default-threads run under load 3-5 gave 5-19x for
``cholesky`` against scikit-learn, and 2.9 s for the word-vector null).

    OPENBLAS_NUM_THREADS=1, seconds
    word side     rho1    svd    cov   chol sklearn iter  svd x  cov x chol x |d rho1| null 1000
    independent  0.408  0.337  0.076  0.055   0.612  134   1.8x   8.1x  11.2x  3.7e-06      5.45
    planted      0.670  0.350  0.078  0.055   0.425    6   1.2x   5.4x   7.8x  8.9e-09      5.54
    words        0.799  0.334  0.078  0.056   0.556   86   1.7x   7.1x  10.0x  5.6e-06      1.08
    relabelling null, K = 8, all 40320 relabellings (fit included): 0.61 s
    cca_report at the defaults (500 pairs of 10,000 images, p = 512, K = 10): 0.40 s

The differences of the first correlation are scikit-learn's convergence error (our three
methods agree with an independent QR algorithm to 1e-10 in the tests). scikit-learn's cost
is one pseudo-inverse (an SVD of X) plus its iterations, so the ``svd`` method cannot be
much faster than it and the ratio of the others shrinks when it converges in a few
iterations (``planted``). The pair-shuffle null costs 2 n p rank(Y) flops per
permutation: about 1 s for word vectors (rank K - 1 = 9), but 256 GFLOP for a
continuous rank-50 word side, which this CPU does in 5-9 s in float64.
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
    """Features X (N x P) and word side Y (N x Q) of the given kind."""
    if kind == "independent":
        return rng.standard_normal((N, P)), rng.standard_normal((N, Q))
    if kind == "planted":
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
    parser.add_argument("--repeats", type=int, default=5, help="alternating timings per method (median reported)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    methods = ("svd", "cov", "cholesky")
    print(f"n = {N}, p = {P}, q = {Q}; median of {args.repeats} alternating runs, seconds")
    print(
        f"{'word side':<12} {'rho1':>5} {'svd':>6} {'cov':>6} {'chol':>6} {'sklearn':>7} {'iter':>4} "
        f"{'svd x':>6} {'cov x':>6} {'chol x':>6} {'|d rho1|':>8} {'null 1000':>9}"
    )
    for kind in ("independent", "planted", "words"):
        X, Y = data(kind, rng)
        times: dict[str, list[float]] = {name: [] for name in (*methods, "sklearn")}
        ours: dict[str, float] = {}
        for _ in range(args.repeats):
            for method in methods:
                seconds, model = timed(lambda: CCA(n_components=1, method=method).fit(X, Y))
                times[method].append(seconds)
                ours[method] = model.canonical_correlations_[0]
            seconds, (theirs, iterations) = timed(lambda: sklearn_first(X, Y))
            times["sklearn"].append(seconds)
        median = {name: statistics.median(values) for name, values in times.items()}
        null_seconds, _ = timed(lambda: pair_shuffle_test(X, Y, n_perm=1000, method="cholesky", random_state=0))
        speedups = " ".join(f"{median['sklearn'] / median[m]:5.1f}x" for m in methods)
        print(
            f"{kind:<12} {ours['svd']:5.3f} {median['svd']:6.3f} {median['cov']:6.3f} {median['cholesky']:6.3f} "
            f"{median['sklearn']:7.3f} {iterations:4d} {speedups} "
            f"{max(abs(v - theirs) for v in ours.values()):8.1e} {null_seconds:9.2f}"
        )

    words = rng.standard_normal((8, Q))
    labels = rng.integers(0, 8, N)
    X = 0.02 * words[labels] @ rng.standard_normal((Q, P)) + rng.standard_normal((N, P))
    seconds, test = timed(lambda: relabel_test(X, labels, words, method="cholesky"))
    print(f"relabelling null, K = 8, all {test.n_perm} relabellings (fit included): {seconds:.2f} s")

    words = rng.standard_normal((K, Q))
    labels = np.repeat(np.arange(K), 1000)
    X = 0.02 * words[labels] @ rng.standard_normal((Q, P)) + rng.standard_normal((labels.size, P))
    seconds, _ = timed(lambda: cca_report(X, labels, words))
    print(f"cca_report at the defaults (500 pairs of 10,000 images, p = {P}, K = {K}): {seconds:.2f} s")


if __name__ == "__main__":
    main()
