"""The CCA estimator: SCARL's canonical correlation between image features and word vectors.

SCARL (Section 1, Fig. 1; Appendix D, Fig. 5) samples 500 image/word pairs, pairs each
image's features with the word vector of its class, and reports their first canonical
correlation (Hotelling, 1936). ``shared/DESIGN.md`` ("The statistics, done right") names
the two traps of that statistic; this module holds the estimator that computes it and
flags both:

* :class:`CCA` -- the exact closed form in float64 (a scikit-learn style estimator):
  centre, whiten each side (:mod:`semprobe.stats._whitening`: SVD, covariance
  eigendecomposition or pivoted Cholesky with a relative rank tolerance, optional PCA,
  optional ridge), then the SVD of the whitened cross-covariance gives every canonical
  correlation and the weights. Its :attr:`CCA.diagnostics_` flag both traps, and
  :meth:`CCA.whitened` gives data in the fitted whitened coordinates.
* :func:`random_matrix_chance` -- where the first canonical correlation of independent
  data lands (Wachter 1980; Johnstone 2008).

The rest of ``semprobe cca`` lives beside it: :mod:`semprobe.stats.cca_nulls` (the
pair-shuffle and relabelling permutation nulls, reusing the whitening instead of
refitting) and :mod:`semprobe.stats.cca_reporting` (:func:`~semprobe.stats.cca_reporting.cca_report`,
everything the command writes for one set of features). ``CCAReport`` and
``CanonicalVariates`` are still importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from semprobe.errors import ConfigError, DataError
from semprobe.stats._checks import as_matrix, check_int
from semprobe.stats._whitening import (
    METHODS,
    PcaSpec,
    RidgeSpec,
    Whitening,
    parse_pca,
    parse_ridge,
    whiten,
)

if TYPE_CHECKING:  # re-exported below (module __getattr__): the report module imports this one
    from semprobe.stats.cca_reporting import CanonicalVariates, CCAReport

#: 95% quantile of the Tracy-Widom law for beta = 1 (Tracy & Widom 1996, Commun. Math.
#: Phys. 177:727-754; tabulated e.g. in Johnstone 2001, Ann. Statist. 29:295-327, Table 1).
TRACY_WIDOM1_Q95 = 0.9793


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

    :meth:`whitened` maps data into the fitted whitened coordinates, where the nulls of
    :mod:`semprobe.stats.cca_nulls` work.

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

    def _new_data(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Check X (m x p) and, when given, Y (m x q) against the fit; float64 arrays."""
        check_is_fitted(self)
        X = as_matrix("X", X)
        if X.shape[1] != self.x_weights_.shape[0]:
            raise DataError(f"X has {X.shape[1]} columns, the CCA was fitted on {self.x_weights_.shape[0]}")
        if Y is None:
            return X, None
        Y = as_matrix("Y", Y, allow_vector=True)
        if Y.shape[1] != self.y_weights_.shape[0] or Y.shape[0] != X.shape[0]:
            raise DataError(f"Y must be {X.shape[0]} x {self.y_weights_.shape[0]}, got {Y.shape}")
        return X, Y

    def transform(self, X: Any, Y: Any = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Canonical variates of X (m x k), or of (X, Y) as a pair when Y is given."""
        X, Y = self._new_data(X, Y)
        x_variates = (X - self.x_mean_) @ self.x_weights_
        if Y is None:
            return x_variates
        return x_variates, (Y - self.y_mean_) @ self.y_weights_

    def whitened(self, X: Any, Y: Any = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """X (m x p) in the fitted whitened coordinates Zx, or (Zx, Zy) when Y is given.

        The centring and whitening :meth:`fit` computed (rank cut, PCA and ridge included;
        ``dim_x`` columns, all p for ``"cholesky"`` with ridge): on the training pairs
        ``Zx^T Zy / (n - 1)`` is the whitened cross-covariance whose leading singular
        values are :attr:`canonical_correlations_` (clipped at 1), and
        ``Zx @ a`` with ``a`` its first left singular vector is the first canonical variate.
        A whitening does not depend on the order of the rows, so the permutation nulls
        (:mod:`semprobe.stats.cca_nulls`) shuffle whitened rows instead of refitting.
        """
        X, Y = self._new_data(X, Y)
        sx, sy = self._whitenings
        if Y is None:
            return sx.apply(X)
        return sx.apply(X), sy.apply(Y)

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


# The report's names, still importable from here (``semprobe.plots.semantic`` does). Resolved
# on first access (PEP 562): ``cca_reporting`` imports this module, so it cannot be imported here.
_REPORT_NAMES = ("CCAReport", "CanonicalVariates")


def __getattr__(name: str) -> Any:
    """``CCAReport`` and ``CanonicalVariates`` from :mod:`semprobe.stats.cca_reporting` (PEP 562)."""
    if name in _REPORT_NAMES:
        from semprobe.stats import cca_reporting

        return getattr(cca_reporting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
