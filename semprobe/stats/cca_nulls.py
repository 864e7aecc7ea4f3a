"""Permutation nulls of SCARL's canonical correlation: pair shuffle and class relabelling.

SCARL (Section 1, Fig. 1; Appendix D, Fig. 5) reads its first canonical correlation
without a reference point. ``shared/DESIGN.md`` ("The statistics, done right") asks for
two nulls next to it, both computed here on the whitening of a :class:`~semprobe.stats.cca.CCA`
fit (:meth:`~semprobe.stats.cca.CCA.whitened`) instead of refitting:

* :func:`pair_shuffle_test` -- the rows of the word side permuted against the images:
  the chance distribution of the statistic at this n, p, q (the permutation counterpart
  of :func:`~semprobe.stats.cca.random_matrix_chance`).
* :func:`relabel_test` -- which word vector belongs to which class permuted, the
  statistic recomputed in class space (:class:`_RelabelProblem`): the only null that
  tests semantics rather than class separability.

The batched kernels (``_pair_shuffle_in_sample``, ``_pair_shuffle_held_out``,
``_relabel_values``) also serve the held-out statistic of
:func:`~semprobe.stats.cca_reporting.cca_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from semprobe.options import MAX_RESAMPLES
from semprobe.stats._checks import (
    as_labels,
    as_matrix,
    check_every_class,
    check_int,
    check_random_state,
)
from semprobe.stats._whitening import (
    PcaSpec,
    RidgeSpec,
    default_tol,
    parse_pca,
    parse_ridge,
    whiten_class_rows,
)
from semprobe.stats.cca import CCA, _pearson_rows
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import class_relabellings

# Elements per temporary block in the batched permutation code (32 MiB of float64).
_BLOCK_ELEMENTS = 4_000_000


def _top_pair(cross: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest singular value and its vectors for a batch of (B, r, c) matrices.

    Computed from the eigendecomposition of the smaller Gram (r x r or c x c). Returns
    ``(sigma, left, right)`` with ``left`` (B, r) and ``right`` (B, c) (unnormalised on
    the side recovered by multiplication; only directions are used).
    """
    # einsum: numpy's stacked matmul of a batch with its transposed view is ~100x slower.
    if cross.shape[1] <= cross.shape[2]:
        evals, evecs = np.linalg.eigh(np.einsum("brc,bsc->brs", cross, cross, optimize=True))
        left = evecs[:, :, -1]
        right = np.einsum("brc,br->bc", cross, left)
    else:
        evals, evecs = np.linalg.eigh(np.einsum("brc,brd->bcd", cross, cross, optimize=True))
        right = evecs[:, :, -1]
        left = np.einsum("brc,bc->br", cross, right)
    return np.sqrt(np.clip(evals[:, -1], 0.0, None)), left, right


def _shuffled_cross(zx: np.ndarray, zy: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """``Zy[perm]^T Zx`` for each row of ``perms`` (B, n): (B, dim_y, dim_x), one GEMM."""
    n, dim_y = zy.shape
    gathered = zy[perms.T].reshape(n, perms.shape[0] * dim_y)
    return (gathered.T @ zx).reshape(perms.shape[0], dim_y, zx.shape[1])


def _block_size(per_item: int) -> int:
    """Items per block so that a block's temporaries hold at most ``_BLOCK_ELEMENTS`` numbers."""
    return max(1, _BLOCK_ELEMENTS // max(per_item, 1))


def _pair_shuffle_in_sample(zx: np.ndarray, zy: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """First canonical correlation after permuting the rows of Zy, ``n_perm`` times."""
    n = zx.shape[0]
    values = np.empty(n_perm)
    step = _block_size(n * zy.shape[1])
    for start in range(0, n_perm, step):
        perms = np.stack([rng.permutation(n) for _ in range(min(step, n_perm - start))])
        values[start : start + step] = _top_pair(_shuffled_cross(zx, zy, perms))[0] / (n - 1)
    return values


def _pair_shuffle_held_out(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], n_perm: int, rng: np.random.Generator
) -> np.ndarray:
    """Held-out first canonical correlation with the pairs shuffled within train and within test.

    ``train`` and ``test`` are (Zx, Zy) in the training whitening; each permutation refits
    the first canonical pair on the shuffled training pairs (the whitening is invariant
    to row order) and correlates the projections of the shuffled test pairs.
    """
    (zx, zy), (tx, ty) = train, test
    n, m = zx.shape[0], tx.shape[0]
    values = np.empty(n_perm)
    step = _block_size(max(n, m) * zy.shape[1])
    for start in range(0, n_perm, step):
        count = min(step, n_perm - start)
        train_perms = np.stack([rng.permutation(n) for _ in range(count)])
        test_perms = np.stack([rng.permutation(m) for _ in range(count)])
        _, y_dirs, x_dirs = _top_pair(_shuffled_cross(zx, zy, train_perms))
        x_variates = (tx @ x_dirs.T).T
        y_variates = np.einsum("mbd,bd->bm", ty[test_perms.T], y_dirs)
        values[start : start + count] = _pearson_rows(x_variates, y_variates)
    return values


def _class_sums(z: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, d) sums of the rows of z per class."""
    return np.eye(n_classes)[labels].T @ z


@dataclass(frozen=True)
class _RelabelProblem:
    """The fixed image side of a relabelling null, in class space.

    With the word side ``Y = E W[pi]`` the cross-covariance with the whitened image side
    Zx is ``S^T Zc / (n - 1)``, where ``S = E^T Zx`` are the per-class sums of Zx and Zc
    the whitened class rows (:func:`whiten_class_rows`), so each relabelling costs a few
    K x K operations. For the held-out statistic, ``T = Tx S^T`` holds the test images'
    whitened features against the class sums: the test image-side variate of a
    relabelling is ``T g`` with ``g = Zc v`` its word-side class values.
    """

    sums: np.ndarray
    counts: np.ndarray
    test_scores: np.ndarray | None
    test_labels: np.ndarray | None

    @classmethod
    def build(cls, zx: np.ndarray, labels: np.ndarray, n_classes: int, test: tuple[np.ndarray, np.ndarray] | None) -> _RelabelProblem:
        sums = _class_sums(zx, labels, n_classes)
        counts = np.bincount(labels, minlength=n_classes)
        if test is None:
            return cls(sums, counts, None, None)
        return cls(sums, counts, test[0] @ sums.T, test[1])


def _relabel_values(
    problem: _RelabelProblem,
    class_vectors: np.ndarray,
    perms: np.ndarray,
    *,
    shrinkage: Any,
    n_components: int | None,
    tol: float,
) -> np.ndarray:
    """The statistic for every relabelling in ``perms`` (B, K): in-sample first canonical
    correlation, or the held-out one when the problem has a test part."""
    n = int(problem.counts.sum())
    k = problem.counts.size
    gram = class_vectors @ class_vectors.T
    centring = np.eye(k) - np.outer(np.ones(k), problem.counts / n)
    moment = problem.sums @ problem.sums.T
    values = np.empty(perms.shape[0])
    step = _block_size(k * max(k, 1 if problem.test_scores is None else problem.test_scores.shape[0]))
    for start in range(0, perms.shape[0], step):
        block = perms[start : start + step]
        permuted = gram[block[:, :, None], block[:, None, :]]
        rows = whiten_class_rows(
            centring @ permuted @ centring.T, problem.counts, class_vectors.shape[1],
            shrinkage=shrinkage, n_components=n_components, tol=tol,
        )
        evals, evecs = np.linalg.eigh(np.einsum("bki,kl,blj->bij", rows, moment, rows, optimize=True))
        if problem.test_scores is None:
            values[start : start + step] = np.sqrt(np.clip(evals[:, -1], 0.0, None)) / (n - 1)
        else:
            class_values = np.einsum("bkj,bj->bk", rows, evecs[:, :, -1])
            x_variates = class_values @ problem.test_scores.T
            values[start : start + step] = _pearson_rows(x_variates, class_values[:, problem.test_labels])
    return values


def _relabel_tol(tol: float | None, n: int, q: int) -> float:
    # The class-space path works on squared singular values, like method="cov".
    return default_tol("cov", n, q) if tol is None else tol


def pair_shuffle_test(
    X: Any,
    Y: Any,
    *,
    n_perm: int = 1000,
    method: str = "svd",
    ridge: RidgeSpec = None,
    pca: PcaSpec = None,
    tol: float | None = None,
    random_state: int | None = 0,
) -> PermutationTest:
    """Pair-shuffle null of the in-sample first canonical correlation of (X, Y).

    Under "no association" every pairing of X rows with Y rows is equally likely, so the
    rows of Y are permuted against X ``n_perm`` times (Monte Carlo). Row order does not
    change a side's covariance, so both whitenings are computed once and each permutation
    costs one product ``Zy[perm]^T Zx`` (2 n dim_x dim_y flops, batched into one GEMM per
    block of permutations) and a small eigenproblem. For class word vectors dim_y <= K-1:
    1,000 permutations at n = 5000, p = 512, K = 10 take about 1 s on 2 CPU cores; a
    continuous word side of rank 50 makes that 256 GFLOP, several seconds. The null
    distribution is the chance level of the statistic at this n, p, q (compare with
    :func:`random_matrix_chance`).
    """
    n_perm = check_int("n_perm", n_perm, 1, MAX_RESAMPLES)
    seed = check_random_state(random_state)
    model = CCA(method=method, ridge=ridge, pca=pca, tol=tol).fit(X, Y)
    zx, zy = model.whitened(X, Y)
    values = _pair_shuffle_in_sample(zx, zy, n_perm, np.random.default_rng(seed))
    return PermutationTest("in-sample first canonical correlation", "pair_shuffle", float(model.canonical_correlations_[0]), values, False)


def relabel_test(
    features: Any,
    labels: Any,
    class_vectors: Any,
    *,
    n_perm: int = 1000,
    method: str = "svd",
    ridge: RidgeSpec = None,
    pca: PcaSpec = None,
    tol: float | None = None,
    random_state: int | None = 0,
) -> PermutationTest:
    """Relabelling null of the in-sample first canonical correlation of features vs word vectors.

    Image i is paired with ``class_vectors[labels[i]]``; the null permutes which word vector
    belongs to which class (all K! relabellings when K <= 8, else ``n_perm`` random ones)
    and recomputes the statistic each time -- word-side whitening, PCA and ridge included --
    in class space (:class:`_RelabelProblem`). This is the null that tests semantics: it
    asks whether the true assignment of words to classes fits the features better than
    other assignments. When the word side spans the one-hot labels (K-1 <= its rank,
    no word-side ridge) every relabelling gives the same value and p = 1.
    """
    features, labels, class_vectors = _pairs_input(features, labels, class_vectors)
    n_perm = check_int("n_perm", n_perm, 1, MAX_RESAMPLES)
    rng = np.random.default_rng(check_random_state(random_state))
    check_every_class(labels, class_vectors.shape[0], 1)
    model = CCA(method=method, ridge=ridge, pca=pca, tol=tol).fit(features, class_vectors[labels])
    perms, exact = class_relabellings(class_vectors.shape[0], n_perm, rng)
    problem = _RelabelProblem.build(model.whitened(features), labels, class_vectors.shape[0], None)
    values = _relabel_values(
        problem, class_vectors, perms, shrinkage=parse_ridge(ridge)[1], n_components=parse_pca(pca)[1],
        tol=_relabel_tol(tol, labels.size, class_vectors.shape[1]),
    )
    return PermutationTest("in-sample first canonical correlation", "relabel", float(model.canonical_correlations_[0]), values, exact)


def _pairs_input(features: Any, labels: Any, class_vectors: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features = as_matrix("features", features)
    class_vectors = as_matrix("class_vectors", class_vectors)
    labels = as_labels("labels", labels, features.shape[0], class_vectors.shape[0])
    return features, labels, class_vectors
