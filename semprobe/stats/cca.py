"""Canonical correlation analysis between image features and class word vectors.

SCARL (Fig. 1 and Fig. 5) samples 500 image/word pairs, pairs each image's features with
the word vector of its class, and reports their first canonical correlation (Hotelling,
1936). ``shared/DESIGN.md`` ("The statistics, done right") names the two traps of that
statistic, and this module computes it together with what a reviewer would ask for:

* :class:`CCA` -- the exact closed form in float64 (a scikit-learn style estimator):
  centre, whiten each side (:mod:`semprobe.stats._whitening`: SVD, covariance
  eigendecomposition or pivoted Cholesky with a relative rank tolerance, optional PCA,
  optional ridge), then the SVD of the whitened cross-covariance gives every canonical
  correlation and the weights. Its :attr:`CCA.diagnostics_` flag both traps.
* :func:`random_matrix_chance` -- where the first canonical correlation of independent
  data lands (Wachter 1980; Johnstone 2008).
* :func:`pair_shuffle_test` and :func:`relabel_test` -- the two permutation nulls, reusing
  the whitening instead of refitting.
* :func:`cca_report` -- everything ``semprobe cca`` writes for one set of features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
import warnings

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from semprobe.errors import ConfigError, DataError
from semprobe.options import MAX_RESAMPLES
from semprobe.stats._checks import (
    as_labels,
    as_matrix,
    check_class_names,
    check_every_class,
    check_int,
    check_open_fraction,
    check_random_state,
    class_vectors_and_names,
)
from semprobe.stats._whitening import (
    METHODS,
    PcaSpec,
    RidgeSpec,
    Whitening,
    default_tol,
    parse_pca,
    parse_ridge,
    whiten,
    whiten_class_rows,
)
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import (
    bootstrap_within_class,
    class_relabellings,
    percentile_interval,
    stratified_sample,
    stratified_split,
)

#: 95% quantile of the Tracy-Widom law for beta = 1 (Tracy & Widom 1996, Commun. Math.
#: Phys. 177:727-754; tabulated e.g. in Johnstone 2001, Ann. Statist. 29:295-327, Table 1).
TRACY_WIDOM1_Q95 = 0.9793

# Elements per temporary block in the batched permutation code (32 MiB of float64).
_BLOCK_ELEMENTS = 4_000_000


def random_matrix_chance(n: int, dim_x: int, dim_y: int) -> tuple[float, float]:
    """Chance level of the first canonical correlation: ``(edge, q95)``.

    For centred Gaussian X (n x dim_x) independent of any Y of rank dim_y, the squared
    canonical correlations are the eigenvalues of a Jacobi (double Wishart) ensemble
    ``J(p, m, q)`` with ``p, q = dim_x, dim_y`` and ``m = n - 1 - q`` (regression and
    residual sums of squares). Their limiting spectrum (Wachter 1980, "The limiting
    empirical measure of multiple discriminant ratios", Ann. Statist. 8:937-957) has the
    upper edge ``theta+ = (sqrt(a (1 - b)) + sqrt(b (1 - a)))^2``, ``a, b`` the two
    dimensions over the sample size. Johnstone (2008, "Multivariate analysis and Jacobi
    ensembles: largest eigenvalue, Tracy-Widom limits and rates of convergence", Ann.
    Statist. 36:2638-2716, Theorem 1) gives the finite-n centring and scale on the logit
    scale: with ``sin^2(phi/2) = (max(p, q) - 1/2) / (n - 2)`` and
    ``sin^2(gamma/2) = (min(p, q) - 1/2) / (n - 2)``,
    ``mu = 2 log tan((phi + gamma) / 2)`` (so ``theta+ = sin^2((phi + gamma) / 2)``: the
    Wachter edge with ``a, b = (dim - 1/2) / (n - 2)``) and
    ``sigma^3 = 16 / (n - 2)^2 / (sin^2(phi + gamma) sin(phi) sin(gamma))``, and
    ``(logit(theta_1) - mu) / sigma`` tends to the Tracy-Widom law TW1.

    Returns ``sqrt(theta+)`` (about the 83rd percentile of the null, the TW1 CDF at 0)
    and the TW1-based 95% quantile ``sqrt(logistic(mu + 0.9793 sigma))``. Both are 1 when
    ``a + b >= 1``, i.e. ``dim_x + dim_y >= n - 1``: there the sample correlations reach
    1 (exactly, once ``n <= dim_x + dim_y``). Only X needs to be Gaussian, so the level
    holds for discrete Y (class word vectors) too; checked by simulation in the tests.
    """
    n, dim_x, dim_y = (check_int(name, v, 1) for name, v in (("n", n), ("dim_x", dim_x), ("dim_y", dim_y)))
    if n < 3:
        raise ConfigError(f"the chance level needs n >= 3 samples, got {n}")
    a = (max(dim_x, dim_y) - 0.5) / (n - 2)
    b = (min(dim_x, dim_y) - 0.5) / (n - 2)
    if a + b >= 1.0:
        return 1.0, 1.0
    phi, gamma = 2.0 * np.arcsin(np.sqrt(a)), 2.0 * np.arcsin(np.sqrt(b))
    edge = np.sin((phi + gamma) / 2.0) ** 2
    mu = 2.0 * np.log(np.tan((phi + gamma) / 2.0))
    sigma = (16.0 / (n - 2) ** 2 / (np.sin(phi + gamma) ** 2 * np.sin(phi) * np.sin(gamma))) ** (1.0 / 3.0)
    q95 = 1.0 / (1.0 + np.exp(-(mu + TRACY_WIDOM1_Q95 * sigma)))
    return float(np.sqrt(edge)), float(np.sqrt(q95))


@dataclass(frozen=True)
class CCADiagnostics:
    """What a CCA fit was computed from, and the traps that apply to it.

    Attributes:
        n, p, q: samples, image-side and word-side dimensions.
        rank_x, rank_y: numerical ranks of the centred data.
        dim_x, dim_y: whitened dimensions used by the fit (the ranks, or fewer after PCA).
        n_distinct_y: number of distinct rows of Y (K for class word vectors).
        shrinkage_x, shrinkage_y: ridge intensities used (0 without ridge).
        chance_level, chance_level_95: :func:`random_matrix_chance` for (n, dim_x, dim_y).
        saturated: ``n <= dim_x + dim_y``: without ridge some in-sample canonical
            correlations equal 1 whatever the data.
        labels_only: Y has K < n distinct rows and ``dim_y >= K - 1``: its column span is
            that of the one-hot class labels, so (without ridge on Y) the CCA equals the CCA
            against one-hot labels and measures class separability, not semantics.
        warnings: one sentence per trap that applies, for the CLI and the plots.
    """

    n: int
    p: int
    q: int
    rank_x: int
    rank_y: int
    dim_x: int
    dim_y: int
    n_distinct_y: int
    shrinkage_x: float
    shrinkage_y: float
    chance_level: float
    chance_level_95: float
    saturated: bool
    labels_only: bool
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy for JSON."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["warnings"] = list(self.warnings)
        return out


def _diagnostics(n: int, p: int, q: int, sx: Whitening, sy: Whitening, n_distinct_y: int) -> CCADiagnostics:
    edge, q95 = random_matrix_chance(n, sx.dim, sy.dim)
    messages = []
    saturated = n <= sx.dim + sy.dim
    if saturated:
        ones = min(sx.dim, sy.dim, sx.dim + sy.dim - (n - 1))
        consequence = (
            f"{ones} in-sample canonical correlation(s) equal 1 whatever the data"
            if sx.shrinkage == 0.0 and sy.shrinkage == 0.0
            else f"{ones} in-sample canonical correlation(s) would equal 1 without ridge; the shrunk values still overfit"
        )
        messages.append(
            f"n = {n} <= dim_x + dim_y = {sx.dim} + {sy.dim}: {consequence}; "
            "only held-out correlations are informative (or reduce the dimensions with pca)"
        )
    labels_only = 2 <= n_distinct_y < n and sy.dim >= n_distinct_y - 1
    if labels_only:
        messages.append(
            f"the word side has only {n_distinct_y} distinct rows and rank {sy.dim} >= K-1 = {n_distinct_y - 1}: "
            "CCA against these vectors equals CCA against one-hot class labels"
            + (" (exactly without ridge on the word side)" if sy.shrinkage else "")
            + "; it measures class separability, not semantics (the relabelling null tests semantics)"
        )
    return CCADiagnostics(
        n=n,
        p=p,
        q=q,
        rank_x=sx.rank,
        rank_y=sy.rank,
        dim_x=sx.dim,
        dim_y=sy.dim,
        n_distinct_y=n_distinct_y,
        shrinkage_x=sx.shrinkage,
        shrinkage_y=sy.shrinkage,
        chance_level=edge,
        chance_level_95=q95,
        saturated=saturated,
        labels_only=labels_only,
        warnings=tuple(messages),
    )


def _check_options(method: str, tol: float | None, ridge: RidgeSpec, pca: PcaSpec) -> None:
    """Refuse bad estimator options before any work starts."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and 0.0 <= tol < 1.0):
        raise ConfigError(f"tol must be None or a relative tolerance in [0, 1), got {tol!r}")
    parse_ridge(ridge)
    if method == "cholesky" and parse_pca(pca) != (None, None):
        raise ConfigError("pca needs method 'svd' or 'cov' (the Cholesky factor gives no principal components)")


class CCA(BaseEstimator):
    """Exact canonical correlation analysis in closed form (Hotelling 1936), float64.

    Each side is centred and whitened (:mod:`semprobe.stats._whitening`): rank by a
    relative tolerance on the singular values of the centred data, optional PCA to
    ``pca`` components (SVCCA, Raghu et al. 2017), optional ridge shrinkage
    ``(1 - c) Sigma + c tr(Sigma)/d I`` (Ledoit & Wolf 2004). With whitened data Zx, Zy
    the canonical correlations are the singular values of ``C = Zx^T Zy / (n - 1)``
    (with ridge: of the regularised problem ``max a^T Sxy b`` subject to
    ``a^T Sxx_c a = b^T Syy_c b = 1``), and the weights map the singular vectors back.
    Rank-deficient data (n < p, collinear columns, class word vectors) are handled; the
    ranks and both traps of ``shared/DESIGN.md`` are in :attr:`diagnostics_`.

    Parameters:
        n_components: number of canonical pairs to keep weights for (default: all
            ``min(dim_x, dim_y)``); :attr:`canonical_correlations_` always holds all.
        method: ``"svd"`` (SVD of the centred data; default, most accurate), ``"cov"``
            (eigendecomposition of the covariance, or of the n x n Gram when p > n) or
            ``"cholesky"`` (pivoted Cholesky of the covariance; fastest, no PCA). The last
            two are faster when n >> p but square the condition number, hence their
            coarser default rank tolerance.
        ridge: None, a shrinkage c in [0, 1], ``"auto"`` (Ledoit-Wolf), or a pair
            ``(x_side, y_side)`` of those.
        pca: None, a number of principal components kept on each side, or a pair.
        tol: relative rank tolerance on singular values; default ``max(n, p) * eps`` for
            ``"svd"`` and ``sqrt(max(n, p) * eps)`` for ``"cov"`` and ``"cholesky"`` (there
            relative to the largest variance rather than the largest eigenvalue).

    Attributes (after :meth:`fit`):
        canonical_correlations_: all ``min(dim_x, dim_y)`` canonical correlations, descending.
        x_weights_, y_weights_: (p, k) and (q, k) weights; ``(X - x_mean_) @ x_weights_``
            are the canonical variates, with unit variance on the training data when
            there is no ridge.
        x_mean_, y_mean_: training means.
        n_components_: k.
        n_features_in_: p.
        diagnostics_: :class:`CCADiagnostics`.

    The signs are fixed (the largest entry of each whitened-space x direction is
    positive), so the same data give the same weights.
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        method: str = "svd",
        ridge: RidgeSpec = None,
        pca: PcaSpec = None,
        tol: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.method = method
        self.ridge = ridge
        self.pca = pca
        self.tol = tol

    def _whiten_sides(self, X: np.ndarray, Y: np.ndarray) -> tuple[Whitening, Whitening]:
        _check_options(self.method, self.tol, self.ridge, self.pca)
        ridge_x, ridge_y = parse_ridge(self.ridge)
        pca_x, pca_y = parse_pca(self.pca)
        sx = whiten(X, side="image (X)", method=self.method, shrinkage=ridge_x, n_components=pca_x, tol=self.tol)
        sy = whiten(Y, side="word (Y)", method=self.method, shrinkage=ridge_y, n_components=pca_y, tol=self.tol)
        return sx, sy

    def fit(self, X: Any, Y: Any) -> CCA:
        """Fit on paired samples: X (n x p) image features, Y (n x q or n) word side."""
        X = as_matrix("X", X)
        Y = as_matrix("Y", Y, allow_vector=True)
        if X.shape[0] != Y.shape[0]:
            raise DataError(f"X and Y must have the same number of rows (pairs), got {X.shape[0]} and {Y.shape[0]}")
        n = X.shape[0]
        if n < 3:
            raise DataError(f"CCA needs at least 3 pairs, got {n}")
        if self.n_components is not None:
            check_int("n_components", self.n_components, 1)
        sx, sy = self._whiten_sides(X, Y)
        # sum_i (x_i - mean_x)(y_i - mean_y)^T = X^T (Y - mean_y): X needs no centred copy.
        cross = sx.projection.T @ (X.T @ (Y - sy.mean)) @ sy.projection / (n - 1)
        a, sigma, bt = scipy.linalg.svd(cross, full_matrices=False, check_finite=False)
        pairs = min(sx.dim, sy.dim)  # beyond: whitened coordinates without variance (Cholesky with ridge)
        k = pairs if self.n_components is None else self.n_components
        if k > pairs:
            raise ConfigError(
                f"n_components = {k} exceeds the {pairs} canonical pairs available (dim_x = {sx.dim}, dim_y = {sy.dim})"
            )
        a, b = a[:, :k], bt.T[:, :k]
        flip = np.sign(a[np.argmax(np.abs(a), axis=0), np.arange(k)])
        self.canonical_correlations_ = np.minimum(sigma[:pairs], 1.0)
        self.x_weights_ = sx.projection @ (a * flip)
        self.y_weights_ = sy.projection @ (b * flip)
        self.x_mean_, self.y_mean_ = sx.mean, sy.mean
        self.n_components_ = k
        self.n_features_in_ = X.shape[1]
        self.diagnostics_ = _diagnostics(n, X.shape[1], Y.shape[1], sx, sy, _count_distinct_rows(Y))
        self._whitenings = (sx, sy)
        return self

    def transform(self, X: Any, Y: Any = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Canonical variates of X (m x k), or of (X, Y) as a pair when Y is given."""
        check_is_fitted(self)
        X = as_matrix("X", X)
        if X.shape[1] != self.x_weights_.shape[0]:
            raise DataError(f"X has {X.shape[1]} columns, the CCA was fitted on {self.x_weights_.shape[0]}")
        x_variates = (X - self.x_mean_) @ self.x_weights_
        if Y is None:
            return x_variates
        Y = as_matrix("Y", Y, allow_vector=True)
        if Y.shape[1] != self.y_weights_.shape[0] or Y.shape[0] != X.shape[0]:
            raise DataError(f"Y must be {X.shape[0]} x {self.y_weights_.shape[0]}, got {Y.shape}")
        return x_variates, (Y - self.y_mean_) @ self.y_weights_

    def fit_transform(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit` then the canonical variates of the training pairs."""
        return self.fit(X, Y).transform(X, Y)

    def score(self, X: Any, Y: Any) -> float:
        """Pearson correlation of the first canonical variates of (X, Y) under the fitted weights.

        On pairs not used by :meth:`fit` this is the held-out canonical correlation.
        """
        x_variates, y_variates = self.transform(X, Y)
        return _pearson(x_variates[:, 0], y_variates[:, 0])


def _count_distinct_rows(data: np.ndarray) -> int:
    """Number of distinct rows, comparing each row's bytes (10x faster than ``np.unique(axis=0)``).

    ``+ 0.0`` turns -0.0 into 0.0 so that equal values have equal bytes (NaN is refused earlier).
    """
    rows = np.ascontiguousarray(data + 0.0)
    return int(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))).size)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two vectors (NaN when one is constant)."""
    return float(_pearson_rows(x[None, :], y[None, :])[0])


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlations of two (B, n) arrays (NaN where a row is constant)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.einsum("bi,bi->b", xc, xc) * np.einsum("bi,bi->b", yc, yc))
    numerator = np.einsum("bi,bi->b", xc, yc)
    return np.divide(numerator, denominator, out=np.full(x.shape[0], np.nan), where=denominator > 0)


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
    X, Y = as_matrix("X", X), as_matrix("Y", Y, allow_vector=True)
    sx, sy = model._whitenings
    values = _pair_shuffle_in_sample(sx.apply(X), sy.apply(Y), n_perm, np.random.default_rng(seed))
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
    sx, _ = model._whitenings
    perms, exact = class_relabellings(class_vectors.shape[0], n_perm, rng)
    problem = _RelabelProblem.build(sx.apply(features), labels, class_vectors.shape[0], None)
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


@dataclass(frozen=True)
class CanonicalVariates:
    """First canonical variates of image/word pairs: the points of one SCARL Fig. 1 panel.

    Attributes:
        x: image-side variate per pair, (n,).
        y: word-side variate per pair, (n,); it takes one value per class.
        labels: class index per pair, (n,).
        r: Pearson correlation of x and y.
        description: how the variates were obtained (which pairs, which weights).
    """

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    r: float
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy for JSON."""
        return {
            "description": self.description,
            "r": self.r,
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "labels": self.labels.tolist(),
        }


@dataclass(frozen=True)
class CCAStatistic:
    """One canonical-correlation statistic with its uncertainty and nulls.

    Attributes:
        name: ``"in_sample"`` (SCARL's statistic) or ``"held_out"``.
        r: the statistic.
        ci: percentile bootstrap interval (low, high) of the held-out r, or None.
        pair_shuffle, relabel: the two permutation tests (None when ``n_perm == 0``).
        diagnostics: of the fit behind the statistic (all pairs, or the training part).
        variates: first canonical variates for the scatter plot (all pairs in sample, or
            the test pairs under the training weights).
    """

    name: str
    r: float
    ci: tuple[float, float] | None
    pair_shuffle: PermutationTest | None
    relabel: PermutationTest | None
    diagnostics: CCADiagnostics
    variates: CanonicalVariates

    def to_dict(self, *, include_variates: bool = True) -> dict[str, Any]:
        """Plain-type copy for JSON (the variates can be left out)."""
        out: dict[str, Any] = {
            "name": self.name,
            "r": self.r,
            "ci": list(self.ci) if self.ci is not None else None,
            "pair_shuffle": self.pair_shuffle.to_dict() if self.pair_shuffle else None,
            "relabel": self.relabel.to_dict() if self.relabel else None,
            "diagnostics": self.diagnostics.to_dict(),
        }
        if include_variates:
            out["variates"] = self.variates.to_dict()
        return out


@dataclass(frozen=True, repr=False)
class CCAReport:
    """Everything ``semprobe cca`` reports for one feature set (one panel of SCARL Fig. 1).

    ``print(report)`` (and its repr) is a few lines: both statistics with their CI,
    chance level and the two permutation p-values, the settings and the warnings;
    :meth:`to_frame` is the same as a table (see :mod:`semprobe.stats.summaries`).

    Attributes:
        in_sample: SCARL's statistic: plain CCA (no ridge, no PCA) on all sampled pairs,
            in sample; its pair-shuffle null is the chance distribution at this n, p, q.
        held_out: CCA with the report's ridge/PCA fitted on the training part of the pairs,
            correlated on the test part, with a bootstrap CI.
        warnings: the diagnostics' warnings of both fits, each prefixed by the fit it
            concerns.
        settings: every option that produced the numbers (plain types).
        sample: indices (rows of ``features``) of the sampled pairs.
        train, test: indices (rows of ``features``) of the training and test pairs.
        model: the held-out CCA (fitted on the training pairs); used by :meth:`project`.
        class_vectors: the K x q word vectors the report was computed with.
        classes: the K class names, when known (given, or from a ``ClassVectors``), else None.
    """

    in_sample: CCAStatistic
    held_out: CCAStatistic
    warnings: tuple[str, ...]
    settings: dict[str, Any]
    sample: np.ndarray = field(repr=False)
    train: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)
    model: CCA = field(repr=False)
    class_vectors: np.ndarray = field(repr=False)
    classes: tuple[str, ...] | None = None

    def project(self, features: Any, labels: Any, description: str = "projected with the held-out weights") -> CanonicalVariates:
        """First canonical variates of other images (e.g. adversarial) under this report's held-out weights.

        ``features`` (m x p) and their ``labels`` (m); the word side of image i is the
        vector of its class. Pair natural and adversarial versions of the same images with
        ``features_adv[report.test]`` to compare like with like.
        """
        features = as_matrix("features", features)
        labels = as_labels("labels", labels, features.shape[0], self.class_vectors.shape[0])
        x_variates, y_variates = self.model.transform(features, self.class_vectors[labels])
        return CanonicalVariates(x_variates[:, 0], y_variates[:, 0], labels, _pearson(x_variates[:, 0], y_variates[:, 0]), description)

    def to_dict(self, *, include_variates: bool = True) -> dict[str, Any]:
        """Plain-type copy for JSON (what ``semprobe cca`` writes): settings, both statistics,
        warnings, sample indices, and the class names when the report knows them."""
        out = {
            "settings": dict(self.settings),
            "in_sample": self.in_sample.to_dict(include_variates=include_variates),
            "held_out": self.held_out.to_dict(include_variates=include_variates),
            "warnings": list(self.warnings),
            "sample": self.sample.tolist(),
            "train": self.train.tolist(),
            "test": self.test.tolist(),
        }
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out

    def to_frame(self):
        """A pandas DataFrame, one row per statistic (in_sample, held_out): r, CI, chance level,
        both p-values, the fit's diagnostics and the settings as columns."""
        from semprobe.stats.summaries import cca_frame

        return cca_frame(self)

    def __str__(self) -> str:
        from semprobe.stats.summaries import cca_summary

        return cca_summary(self)

    __repr__ = __str__


def _bootstrap_test_variates(x: np.ndarray, y: np.ndarray, codes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Held-out r on ``n_boot`` replicates of the test pairs resampled within class (weights fixed)."""
    values = np.empty(n_boot)
    step = _block_size(x.size)
    for start in range(0, n_boot, step):
        rows = np.stack([bootstrap_within_class(codes, rng) for _ in range(min(step, n_boot - start))])
        values[start : start + step] = _pearson_rows(x[rows], y[rows])
    return values


def _clip_pca(components: int | None, width: int, side: str) -> tuple[int | None, str | None]:
    """PCA components for a side with ``width`` columns: at most ``width``, with a note when clipped."""
    if components is None or components <= width:
        return components, None
    return width, (f"pca asks for {components} components but the {side} has {width} features: "
                   f"all {width} kept, no reduction on that side")


def cca_report(
    features: Any,
    labels: Any,
    class_vectors: Any,
    *,
    n_pairs: int | None = 500,
    held_out_fraction: float = 0.5,
    n_boot: int = 1000,
    n_perm: int = 1000,
    confidence: float = 0.95,
    ridge: RidgeSpec = ("auto", None),
    pca: PcaSpec = None,
    method: str = "svd",
    tol: float | None = None,
    random_state: int | None = 0,
    warn: bool = False,
    classes: Any = None,
) -> CCAReport:
    """SCARL's CCA statistic (Fig. 1, Fig. 5) and the statistics that qualify it.

    ``class_vectors`` is a (K, q) array or a :class:`semprobe.words.ClassVectors`, whose
    class names the report then keeps (``classes`` names them for an array).

    1. Sample ``n_pairs`` images stratified by class (all images when None) and pair each
       with the word vector of its class. The sample depends only on ``labels``,
       ``n_pairs`` and ``random_state``, so natural and adversarial features of the same
       images give the same sample.
    2. **In sample** (the paper's statistic): the first canonical correlation of plain CCA
       on all pairs; pair-shuffle null (its chance distribution, ``n_perm`` permutations)
       and relabelling null (all K! when K <= 8).
    3. **Held out**: split the pairs stratified by class (``held_out_fraction`` to test),
       fit CCA with ``ridge`` and ``pca`` on the training part and correlate the first
       canonical variates of the test pairs (``pca`` beyond a side's number of columns
       keeps them all, noted in the warnings; settings record the components used and
       those asked for). The default ridge ``("auto", None)`` shrinks
       the image side by Ledoit-Wolf, which keeps the fit well-defined when the training
       part has fewer pairs than feature dimensions (without it the tied unit correlations
       make the first direction arbitrary), and leaves the word side exact, so that the
       relabelling null stays exactly invariant when the word vectors span the labels.
       Percentile bootstrap CI (``n_boot`` replicates resampling the test images within
       class, the fitted weights fixed: the interval is for the correlation these weights
       reach on the population of images); pair-shuffle null (pairs shuffled within train
       and within test) and relabelling null, both refitting the first canonical pair for
       every permutation.

    Why the bootstrap keeps the training pairs fixed: resampling them too refits on
    samples in which only ~63% of the images are distinct, which weakens the fit; in
    simulations with p = 512 features and 250 training pairs that interval fell below the
    population value most of the time, while the variability between training samples it
    would add was small (sd 0.008 of the held-out r).

    ``n_boot=0`` or ``n_perm=0`` skips the bootstrap or the permutation tests. With
    ``warn=True`` every warning string is also issued with :func:`warnings.warn`.

    Raises:
        DataError: bad arrays (shapes, NaN/inf, labels outside the class vectors, a class
            with fewer than 2 images).
        ConfigError: bad options (``n_pairs`` larger than the number of images or smaller
            than 2 per class, fractions outside (0, 1), unknown method, bad ridge/pca).
    """
    class_vectors, classes = class_vectors_and_names(class_vectors, classes)
    features, labels, class_vectors = _pairs_input(features, labels, class_vectors)
    n_classes = class_vectors.shape[0]
    check_class_names(classes, n_classes)
    check_every_class(labels, n_classes, 2)
    n_images = features.shape[0]
    n_pairs = n_images if n_pairs is None else check_int("n_pairs", n_pairs, 2 * n_classes, n_images)
    held_out_fraction = check_open_fraction("held_out_fraction", held_out_fraction)
    confidence = check_open_fraction("confidence", confidence)
    n_boot = check_int("n_boot", n_boot, 0, MAX_RESAMPLES)
    n_perm = check_int("n_perm", n_perm, 0, MAX_RESAMPLES)
    _check_options(method, tol, ridge, pca)
    ridge_x, ridge_y = parse_ridge(ridge)
    requested_x, requested_y = parse_pca(pca)
    (pca_x, note_x), (pca_y, note_y) = (_clip_pca(requested_x, features.shape[1], "image side"),
                                        _clip_pca(requested_y, class_vectors.shape[1], "word side"))
    pca = (pca_x, pca_y)
    seed = check_random_state(random_state)
    rng = np.random.default_rng(seed)

    sample = stratified_sample(labels, n_pairs, rng, min_per_class=2)
    X, codes = features[sample], labels[sample]
    Y = class_vectors[codes]
    relabel_tol = _relabel_tol(tol, n_pairs, class_vectors.shape[1])
    perms, exact = class_relabellings(n_classes, n_perm, rng) if n_perm else (None, False)

    # 2. In sample, plain CCA: SCARL's statistic.
    plain = CCA(n_components=1, method=method, tol=tol).fit(X, Y)
    px, py = plain._whitenings
    r_in = float(plain.canonical_correlations_[0])
    x_var, y_var = plain.transform(X, Y)
    in_sample_tests: tuple[PermutationTest | None, PermutationTest | None] = (None, None)
    if n_perm:
        statistic = "in-sample first canonical correlation"
        zx = px.apply(X)
        shuffled = _pair_shuffle_in_sample(zx, py.apply(Y), n_perm, rng)
        relabelled = _relabel_values(
            _RelabelProblem.build(zx, codes, n_classes, None), class_vectors, perms,
            shrinkage=0.0, n_components=None, tol=relabel_tol,
        )
        in_sample_tests = (
            PermutationTest(statistic, "pair_shuffle", r_in, shuffled, False),
            PermutationTest(statistic, "relabel", r_in, relabelled, exact),
        )
    in_sample = CCAStatistic(
        "in_sample", r_in, None, *in_sample_tests, plain.diagnostics_,
        CanonicalVariates(x_var[:, 0], y_var[:, 0], codes, _pearson(x_var[:, 0], y_var[:, 0]), "all sampled pairs, in sample"),
    )

    # 3. Held out, with the report's ridge and PCA.
    train_pos, test_pos = stratified_split(codes, held_out_fraction, rng)

    model = CCA(n_components=1, method=method, ridge=ridge, pca=pca, tol=tol).fit(X[train_pos], Y[train_pos])
    r_held = model.score(X[test_pos], Y[test_pos])
    x_test, y_test = model.transform(X[test_pos], Y[test_pos])
    ci = None
    if n_boot:
        ci = percentile_interval(_bootstrap_test_variates(x_test[:, 0], y_test[:, 0], codes[test_pos], n_boot, rng), confidence)
    held_out_tests: tuple[PermutationTest | None, PermutationTest | None] = (None, None)
    if n_perm:
        statistic = "held-out first canonical correlation"
        mx, my = model._whitenings
        test_x, test_y = mx.apply(X[test_pos]), my.apply(Y[test_pos])
        train_x = mx.apply(X[train_pos])
        shuffled = _pair_shuffle_held_out((train_x, my.apply(Y[train_pos])), (test_x, test_y), n_perm, rng)
        relabelled = _relabel_values(
            _RelabelProblem.build(train_x, codes[train_pos], n_classes, (test_x, codes[test_pos])), class_vectors, perms,
            shrinkage=ridge_y, n_components=pca_y, tol=relabel_tol,
        )
        held_out_tests = (
            PermutationTest(statistic, "pair_shuffle", r_held, shuffled, False),
            PermutationTest(statistic, "relabel", r_held, relabelled, exact),
        )
    held_out = CCAStatistic(
        "held_out", r_held, ci, *held_out_tests, model.diagnostics_,
        CanonicalVariates(x_test[:, 0], y_test[:, 0], codes[test_pos], r_held, "test pairs, weights fitted on the training pairs"),
    )

    messages = tuple(note for note in (note_x, note_y) if note) + tuple(
        f"in-sample fit: {w}" for w in plain.diagnostics_.warnings
    ) + tuple(f"held-out fit: {w}" for w in model.diagnostics_.warnings)
    if warn:
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=2)
    settings = {
        "n_images": n_images,
        "n_pairs": n_pairs,
        "n_classes": n_classes,
        "n_train": int(train_pos.size),
        "n_test": int(test_pos.size),
        "held_out_fraction": held_out_fraction,
        "n_boot": n_boot,
        "n_perm": n_perm,
        "confidence": confidence,
        "ridge": [ridge_x, ridge_y],
        "pca": [pca_x, pca_y],
        "pca_requested": [requested_x, requested_y],
        "method": method,
        "tol": tol,
        "random_state": seed,
    }
    return CCAReport(
        in_sample=in_sample,
        held_out=held_out,
        warnings=messages,
        settings=settings,
        sample=sample,
        train=sample[train_pos],
        test=sample[test_pos],
        model=model,
        class_vectors=class_vectors,
        classes=classes,
    )
