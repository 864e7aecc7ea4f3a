"""Whitening of one side of a CCA: spectrum, rank, PCA, ridge shrinkage.

Both sides of :class:`semprobe.stats.cca.CCA` are whitened the same way. With the centred
data ``Xc = U diag(s) V^T`` (n x p) and ``lambda_j = s_j^2 / (n - 1)`` the eigenvalues of
the covariance ``Sigma = Xc^T Xc / (n - 1)`` (``method="svd"``: SVD of Xc; ``"cov"``:
eigendecomposition of Sigma):

1. **rank**: the components with ``s_j > tol * s_1`` (a relative tolerance);
2. **PCA** (optional, SVCCA style, Raghu et al. 2017): keep the first ``k`` of them;
3. **ridge** (optional): shrink towards a multiple of the identity,
   ``Sigma_c = (1 - c) Sigma + c tr(Sigma) / d I`` (Ledoit & Wolf 2004, eq. 14 of
   "A well-conditioned estimator for large-dimensional covariance matrices", J.
   Multivariate Anal. 88:365-411), with ``d`` the dimension (p, or k after PCA) and
   ``c`` given or, for ``"auto"``, their optimal intensity (Lemmas 3.2-3.4 there);
4. the whitened data ``Xc V_k diag(lambda_c)^(-1/2)``, whose covariance is the identity
   without ridge and ``diag(lambda / lambda_c)`` with it.

Components outside the data's range carry no variance, so they never enter the
cross-covariance and are dropped; the ranks are reported.

``method="cholesky"`` needs neither: a pivoted Cholesky factorisation of Sigma
(``Pi^T Sigma Pi = L L^T``, LAPACK ``dpstrf``) reveals the rank r, and
``Pi[:, :r] L_11^(-T)`` whitens (any W with ``W^T Sigma W = I`` gives the same canonical
correlations). With ridge the shrunk Sigma_c is positive definite and its plain Cholesky
factor whitens all p coordinates. It has no PCA, and the Ledoit-Wolf moments come from
the Gram matrix instead of the spectrum.

:func:`whiten_class_rows` does the same for data whose rows take only K distinct values
(class word vectors repeated per image), from a K x K Gram matrix and batched over many
relabellings, which is what makes the class-relabelling null cheap.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from semprobe.errors import ConfigError, DataError

Shrinkage = Union[float, Literal["auto"]]
RidgeSpec = Union[None, float, Literal["auto"], tuple]
PcaSpec = Union[None, int, tuple]

METHODS = ("svd", "cov", "cholesky")
_EPS = np.finfo(np.float64).eps


def default_tol(method: str, n: int, p: int) -> float:
    """The default relative rank tolerance on singular values for ``method``.

    ``"svd"`` resolves singular values down to ``max(n, p) * eps`` of the largest (numpy's
    ``matrix_rank`` rule); ``"cov"`` and ``"cholesky"`` work on their squares, which are
    only accurate to ``max(n, p) * eps`` of the largest, hence ``sqrt(max(n, p) * eps)``.
    """
    return max(n, p) * _EPS if method == "svd" else float(np.sqrt(max(n, p) * _EPS))


def parse_ridge(ridge: RidgeSpec) -> tuple[Shrinkage, Shrinkage]:
    """``ridge`` as one shrinkage per side (x, y): None -> 0, a number in [0, 1], or ``"auto"``."""

    def side(value: Any) -> Shrinkage:
        if value is None:
            return 0.0
        if isinstance(value, str) and value == "auto":
            return "auto"
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0:
            return float(value)
        raise ConfigError(f"ridge must be None, 'auto' or a number in [0, 1] (per side or a pair), got {ridge!r}")

    if isinstance(ridge, tuple):
        if len(ridge) != 2:
            raise ConfigError(f"ridge as a tuple must be (x_side, y_side), got {ridge!r}")
        return side(ridge[0]), side(ridge[1])
    return side(ridge), side(ridge)


def parse_pca(pca: PcaSpec) -> tuple[int | None, int | None]:
    """``pca`` as one number of kept components per side (x, y), None for no PCA."""

    def side(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
            return int(value)
        raise ConfigError(f"pca must be None or a positive integer (per side or a pair), got {pca!r}")

    if isinstance(pca, tuple):
        if len(pca) != 2:
            raise ConfigError(f"pca as a tuple must be (x_side, y_side), got {pca!r}")
        return side(pca[0]), side(pca[1])
    return side(pca), side(pca)


def ledoit_wolf_intensity(sum_fourth: np.ndarray, gram_trace: np.ndarray, gram_square_trace: np.ndarray, n: int, dim: np.ndarray | int) -> np.ndarray:
    """Ledoit-Wolf shrinkage intensity c in [0, 1] towards ``tr(S)/d I`` (batched).

    Ledoit & Wolf (2004), Lemmas 3.2-3.4 with the normalised Frobenius norm
    ``||A||^2 = tr(A A^T) / d`` and ``S = Y^T Y / n`` for centred rows ``y_i``:
    ``m = tr(S)/d``, ``delta^2 = tr(S^2)/d - m^2``,
    ``b^2 = (sum_i ||y_i||^4 / n - tr(S^2)) / (n d)`` (using ``sum_i y_i^T S y_i = n tr(S^2)``),
    ``c = min(b^2, delta^2) / delta^2`` (0 when ``delta^2 = 0``: S is already isotropic).

    Args:
        sum_fourth: ``sum_i ||y_i||^4``.
        gram_trace: ``tr(Y^T Y)`` (the sum of the squared singular values).
        gram_square_trace: ``tr((Y^T Y)^2)`` (the sum of their fourth powers).
        n: number of rows.
        dim: the dimension d of the target (all arrays broadcast together).
    """
    trace = gram_trace / n
    trace_sq = gram_square_trace / n**2
    mean = trace / dim
    delta = np.asarray(trace_sq / dim - mean**2, dtype=np.float64)
    beta = (sum_fourth / n - trace_sq) / (n * dim)
    ratio = np.divide(np.clip(beta, 0.0, None), delta, out=np.zeros_like(delta), where=delta > 0)
    return np.minimum(ratio, 1.0)


@dataclass(frozen=True)
class Whitening:
    """The fitted whitening of one side: ``apply(data) = (data - mean) @ projection``.

    Attributes:
        mean: the training mean, shape (p,).
        projection: (p, m) map from centred data to whitened coordinates; ``m = dim``,
            except for ``"cholesky"`` with ridge, which whitens all p coordinates.
        rank: numerical rank of the centred training data.
        dim: whitened dimensions that carry the data's variance (the rank, or fewer after PCA).
        shrinkage: the ridge intensity c actually used (0 without ridge).
    """

    mean: np.ndarray
    projection: np.ndarray
    rank: int
    dim: int
    shrinkage: float

    def apply(self, data: np.ndarray) -> np.ndarray:
        """``data`` (m x p) in this side's whitened coordinates."""
        return (data - self.mean) @ self.projection


def _spectrum(centred: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Singular values (descending), right singular vectors and, for ``"svd"``, left ones."""
    n, p = centred.shape
    if method == "svd":
        try:
            u, s, vt = scipy.linalg.svd(centred, full_matrices=False, check_finite=False)
        except np.linalg.LinAlgError:  # gesdd occasionally fails to converge; gesvd is slower but robust
            u, s, vt = scipy.linalg.svd(centred, full_matrices=False, check_finite=False, lapack_driver="gesvd")
        return s, vt.T, u
    if p <= n:
        evals, v = np.linalg.eigh(centred.T @ centred)
        return np.sqrt(np.clip(evals[::-1], 0.0, None)), v[:, ::-1], None
    evals, u = np.linalg.eigh(centred @ centred.T)  # the n x n dual when p > n
    s, u = np.sqrt(np.clip(evals[::-1], 0.0, None)), u[:, ::-1]
    v = (centred.T @ u) / np.where(s > 0, s, 1.0)
    return s, v, u


def _row_fourth_powers(rows: np.ndarray) -> float:
    return float(np.sum(np.einsum("ij,ij->i", rows, rows) ** 2))


def _cholesky_whitening(centred: np.ndarray, mean: np.ndarray, shrinkage: Shrinkage, tol: float, side: str) -> Whitening:
    """Whitening from the pivoted Cholesky factor of the covariance (module docstring)."""
    n, p = centred.shape
    gram = centred.T @ centred
    covariance = gram / (n - 1)
    largest = float(np.max(np.diag(covariance)))
    if largest <= 0.0:
        raise DataError(f"the {side} side has no variance (every sample is the same); CCA is undefined")
    factor, pivots, rank, _ = scipy.linalg.lapack.dpstrf(covariance, tol=tol**2 * largest, lower=1)
    if shrinkage == "auto":
        c = float(ledoit_wolf_intensity(_row_fourth_powers(centred), np.trace(gram), np.sum(gram**2), n, p))
    else:
        c = float(shrinkage)
    if c == 0.0:
        projection = np.zeros((p, rank))
        projection[pivots[:rank] - 1] = scipy.linalg.solve_triangular(factor[:rank, :rank], np.eye(rank), lower=True).T
    else:
        shrunk = (1.0 - c) * covariance + (c * np.trace(covariance) / p) * np.eye(p)
        lower = scipy.linalg.cholesky(shrunk, lower=True, check_finite=False)
        projection = scipy.linalg.solve_triangular(lower, np.eye(p), lower=True).T
    return Whitening(mean=mean, projection=projection, rank=int(rank), dim=int(rank), shrinkage=c)


def whiten(data: np.ndarray, *, side: str, method: str, shrinkage: Shrinkage, n_components: int | None, tol: float | None) -> Whitening:
    """Whiten ``data`` (n x p, float64): the steps 1-4 of the module docstring.

    Raises :class:`DataError` when the data have no variance at all.
    """
    n, p = data.shape
    mean = data.mean(axis=0)
    centred = data - mean
    tolerance = default_tol(method, n, p) if tol is None else tol
    if method == "cholesky":  # callers refuse PCA with this method up front
        return _cholesky_whitening(centred, mean, shrinkage, tolerance, side)
    s, v, u = _spectrum(centred, method)
    if s[0] <= 0.0:
        raise DataError(f"the {side} side has no variance (every sample is the same); CCA is undefined")
    rank = int(np.count_nonzero(s > tolerance * s[0]))
    dim = rank if n_components is None else min(n_components, rank)
    s, v = s[:dim], v[:, :dim]
    target_dim = p if n_components is None else dim
    if shrinkage == "auto":
        rows = centred if n_components is None else (u[:, :dim] * s if u is not None else centred @ v)
        c = float(ledoit_wolf_intensity(_row_fourth_powers(rows), np.sum(s**2), np.sum(s**4), n, target_dim))
    else:
        c = float(shrinkage)
    variances = s**2 / (n - 1)
    shrunk = (1.0 - c) * variances + c * variances.sum() / target_dim
    return Whitening(mean=mean, projection=v / np.sqrt(shrunk), rank=rank, dim=dim, shrinkage=c)


def whiten_class_rows(
    grams: np.ndarray, counts: np.ndarray, n_features: int, *, shrinkage: Shrinkage, n_components: int | None, tol: float
) -> np.ndarray:
    """Whitened class rows of data whose rows are class vectors, for a batch of Grams.

    The data are ``Y = E G`` (n x q): image i carries row ``G[label_i]``. With ``c_k`` the
    class counts and ``H`` the rows of G centred by the weighted mean, only the K x K Gram
    ``Gamma = H H^T`` and ``c`` matter: the centred ``Y^T Y = H^T diag(c) H`` shares its
    non-zero eigenvalues ``s_j^2`` and vectors with ``A = diag(sqrt c) Gamma diag(sqrt c)``
    (eigenvectors P), and the scores of a class-k image on component j are
    ``P_kj s_j / sqrt(c_k)``. Rank, PCA and ridge follow :func:`whiten` (rank tolerance on
    singular values, Ledoit-Wolf from the same moments).

    Args:
        grams: (B, K, K) centred Grams ``Gamma``, one per relabelling.
        counts: (K,) images per class, all positive.
        n_features: q, the dimension of the target ``tr(Sigma)/q I`` without PCA.
        tol: relative rank tolerance on singular values.

    Returns:
        (B, K, K): row k holds the whitened coordinates of class k; the columns beyond
        each Gram's kept dimension are zero.
    """
    n = int(counts.sum())
    root = np.sqrt(counts.astype(np.float64))
    evals, vecs = np.linalg.eigh(root[:, None] * grams * root[None, :])
    squared, vecs = np.clip(evals[:, ::-1], 0.0, None), vecs[:, :, ::-1]
    singular = np.sqrt(squared)
    rank = np.count_nonzero(singular > tol * singular[:, :1], axis=1)
    dim = rank if n_components is None else np.minimum(rank, n_components)
    keep = np.arange(squared.shape[1])[None, :] < dim[:, None]
    squared = np.where(keep, squared, 0.0)
    scores = vecs * np.sqrt(squared)[:, None, :] / root[None, :, None]
    target_dim = n_features if n_components is None else dim
    if shrinkage == "auto":
        sum_fourth = np.einsum("k,bk->b", counts.astype(np.float64), np.einsum("bkj,bkj->bk", scores, scores) ** 2)
        c = ledoit_wolf_intensity(sum_fourth, squared.sum(axis=1), (squared**2).sum(axis=1), n, target_dim)
    else:
        c = np.full(grams.shape[0], float(shrinkage))
    variances = squared / (n - 1)
    shrunk = (1.0 - c)[:, None] * variances + (c * variances.sum(axis=1) / target_dim)[:, None]
    scale = np.divide(1.0, np.sqrt(shrunk), out=np.zeros_like(shrunk), where=keep)
    return scores * scale[:, None, :]
