"""Class-similarity matrices and their agreement (RSA): SCARL Fig. 2, done right.

SCARL (Section 1, Fig. 2) shows, for a model's features, "the inner product between
different categories of normalized features" -- the K x K Gram of L2-normalised
class-mean features -- beside the cosine matrix of the classes' GloVe (and CLIP) vectors,
and reads their resemblance by eye. This module computes the matrices and their
agreement; :mod:`semprobe.stats.similarity_reporting` puts them together for
``semprobe simmatrix`` (:func:`~semprobe.stats.similarity_reporting.similarity_report`,
with a bootstrap CI of the RSA; ``SimilarityReport`` is still importable from here).

* :func:`class_mean_gram`: that Gram, optionally **centred** (the mean of the class means
  subtracted before normalising, so a component shared by every class does not make all
  classes look alike) and optionally **split-half cross-validated**: the images of each
  class are split at random into halves A and B and the entry (i, j) is
  ``(<a_i, b_j> + <b_i, a_j>) / 2 / sqrt(<a_i, b_i> <a_j, b_j>)`` with ``a_k, b_k`` the
  half means, averaged (numerator and denominators separately) over ``n_splits`` splits.
  The halves are independent, so ``E <a_i, b_j> = <mu_i, mu_j>``: the noise of a mean,
  which inflates its norm ``|m_k|^2 = |mu_k|^2 + tr(Sigma_k) / n_k`` and shrinks every
  plain cosine towards 0 when classes have few images, cancels from numerator and
  denominator alike, so the entries are consistent where the plain ones are attenuated
  (in simulations with 50 dimensions and 20 images per class, a true cosine of 0.6 came
  out at 0.17 plain and at a median of 0.66 split-half). Being a ratio of noisy
  estimates, an entry is heavy-tailed when a class's halves barely agree and can leave
  [-1, 1]; the diagonal is 1; a class whose halves do not agree at all
  (``<a_k, b_k> <= 0``: its mean is lost in noise) gets NaN entries and a warning.
  ``_gram_estimate`` also draws its bootstrap replicates (images resampled within class).
* :func:`word_cosine_matrix`: the cosine matrix of the class word vectors.
* :func:`rsa`: representational similarity analysis (Kriegeskorte et al. 2008, Front.
  Syst. Neurosci. 2:4): the Spearman correlation between the off-diagonal (upper
  triangle) entries of a feature matrix and a word matrix, undefined (NaN, with the
  reason from :func:`rsa_undefined_reason`) when either side's entries are all equal, as
  for one-hot word vectors;
  :func:`rsa_relabel_test`: its null, permuting the class order of the word matrix (rows
  and columns together), exact over all K! orders when K <= 8.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import rankdata

from semprobe.errors import DataError
from semprobe.options import MAX_HALF_SPLITS, MAX_RESAMPLES
from semprobe.stats._checks import (
    as_labels,
    as_matrix,
    check_every_class,
    check_int,
    check_random_state,
)
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import class_indices, class_relabellings

if TYPE_CHECKING:  # re-exported below (module __getattr__): the report module imports this one
    from semprobe.stats.similarity_reporting import SimilarityReport

# Numbers per temporary block of bootstrap means (32 MiB of float64).
_BLOCK_ELEMENTS = 4_000_000
# Off-diagonal entries spread less than this count as all equal (rounding, not a ranking).
_CONSTANT_SPREAD = 1e-9


def _normalised_gram(means: np.ndarray, centre: bool) -> np.ndarray:
    """Gram of the L2-normalised rows of ``means`` (..., K, p); NaN for a zero row."""
    if centre:
        means = means - means.mean(axis=-2, keepdims=True)
    norms = np.linalg.norm(means, axis=-1, keepdims=True)
    unit = np.divide(means, norms, out=np.full_like(means, np.nan), where=norms > 0)
    return _inner(unit, unit)


def _inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inner products of the rows of a and b, batched: (..., K, p) x (..., K, p) -> (..., K, K).

    einsum, because numpy's stacked matmul against a transposed view is ~100x slower.
    """
    return np.einsum("...kp,...lp->...kl", a, b, optimize=True)


def _cross_half_gram(cross: np.ndarray) -> np.ndarray:
    """Split-half Gram from averaged cross products ``<a_i, b_j>`` (..., K, K): symmetrised, normalised."""
    reliability = np.diagonal(cross, axis1=-2, axis2=-1)
    root = np.sqrt(np.where(reliability > 0, reliability, np.nan))
    symmetric = (cross + np.swapaxes(cross, -1, -2)) / 2.0
    return symmetric / (root[..., :, None] * root[..., None, :])


def _half_groups(labels: np.ndarray, n_classes: int, n_splits: int, rng: np.random.Generator) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """``n_splits`` random splits of every class into halves: per split (halves A, halves B), one array per class."""
    groups = class_indices(labels, n_classes)
    splits = []
    for _ in range(n_splits):
        shuffled = [rng.permutation(idx) for idx in groups]
        splits.append(([s[: s.size // 2] for s in shuffled], [s[s.size // 2 :] for s in shuffled]))
    return splits


def _means(features: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """(K, p) mean of each group of rows."""
    return np.stack([features[idx].mean(axis=0) for idx in groups])


def _resampled_means(features: np.ndarray, groups: list[np.ndarray], counts: list[np.ndarray]) -> np.ndarray:
    """(B, K, p) means of each group under bootstrap counts (B, size of the group) per group."""
    return np.stack([c @ features[idx] / idx.size for idx, c in zip(groups, counts)], axis=1)


def _draw_counts(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Bootstrap multiplicities: for each group, (n_boot, size) counts summing to its size per replicate."""
    counts = []
    for idx in groups:
        draws = rng.integers(0, idx.size, size=(n_boot, idx.size)) + idx.size * np.arange(n_boot)[:, None]
        counts.append(np.bincount(draws.ravel(), minlength=n_boot * idx.size).reshape(n_boot, idx.size).astype(np.float64))
    return counts


def _gram_estimate(
    features: np.ndarray, labels: np.ndarray, n_classes: int, *, centre: bool, split_half: bool, n_splits: int,
    rng: np.random.Generator, n_boot: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The class-mean Gram, and (when ``n_boot``) its (n_boot, K, K) bootstrap replicates.

    A bootstrap replicate resamples with replacement within each class (and, for the
    split-half Gram, within each half, so no image lands in both halves).
    """
    if not split_half:
        groups = class_indices(labels, n_classes)
        estimate = _normalised_gram(_means(features, groups), centre)
        if not n_boot:
            return estimate, None
        step = max(1, _BLOCK_ELEMENTS // (n_classes * features.shape[1]))
        replicates = np.concatenate([
            _normalised_gram(_resampled_means(features, groups, _draw_counts(groups, min(step, n_boot - start), rng)), centre)
            for start in range(0, n_boot, step)
        ])
        return estimate, replicates

    def centred(means: np.ndarray) -> np.ndarray:
        return means - means.mean(axis=-2, keepdims=True) if centre else means

    splits = _half_groups(labels, n_classes, n_splits, rng)
    cross = np.mean([_inner(centred(_means(features, a)), centred(_means(features, b))) for a, b in splits], axis=0)
    estimate = _cross_half_gram(cross)
    if not n_boot:
        return estimate, None
    step = max(1, _BLOCK_ELEMENTS // (2 * n_classes * features.shape[1]))
    blocks = []
    for start in range(0, n_boot, step):
        size = min(step, n_boot - start)
        cross_b = np.zeros((size, n_classes, n_classes))
        for a, b in splits:
            means_a = centred(_resampled_means(features, a, _draw_counts(a, size, rng)))
            means_b = centred(_resampled_means(features, b, _draw_counts(b, size, rng)))
            cross_b += _inner(means_a, means_b)
        blocks.append(_cross_half_gram(cross_b / len(splits)))
    return estimate, np.concatenate(blocks)


def _features_input(features: Any, labels: Any, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    features = as_matrix("features", features)
    raw = np.asarray(labels)
    if n_classes is None:
        n_classes = int(raw.max()) + 1 if raw.size else 0
    labels = as_labels("labels", raw, features.shape[0], n_classes)
    return features, labels, n_classes


def class_mean_gram(
    features: Any,
    labels: Any,
    *,
    n_classes: int | None = None,
    centre: bool = False,
    split_half: bool = False,
    n_splits: int = 10,
    random_state: int | None = 0,
) -> np.ndarray:
    """The (K, K) Gram of L2-normalised class-mean features (SCARL Fig. 2 a, b).

    Args:
        features: (n, p) image features; labels: (n,) class indices.
        n_classes: K (default: the largest label + 1); every class needs an image, two for
            ``split_half``.
        centre: subtract the mean of the class means before normalising.
        split_half: the split-half cross-validated Gram of the module docstring, averaged
            over ``n_splits`` random splits drawn from ``random_state``.
    """
    features, labels, n_classes = _features_input(features, labels, n_classes)
    check_every_class(labels, n_classes, 2 if split_half else 1)
    n_splits = check_int("n_splits", n_splits, 1, MAX_HALF_SPLITS)
    rng = np.random.default_rng(check_random_state(random_state))
    return _gram_estimate(features, labels, n_classes, centre=centre, split_half=split_half, n_splits=n_splits, rng=rng)[0]


def word_cosine_matrix(class_vectors: Any) -> np.ndarray:
    """The (K, K) cosine matrix of class word vectors (SCARL Fig. 2 c, d)."""
    vectors = as_matrix("class_vectors", class_vectors)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise DataError(f"class vector(s) {np.flatnonzero(norms[:, 0] == 0).tolist()} are zero; their cosine is undefined")
    unit = vectors / norms
    return unit @ unit.T


def _upper(matrices: np.ndarray) -> np.ndarray:
    """Upper-triangle (off-diagonal) entries of (..., K, K) matrices, (..., K(K-1)/2)."""
    rows, cols = np.triu_indices(matrices.shape[-1], k=1)
    return matrices[..., rows, cols]


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with each row of b (broadcast (B, m)); average ranks for ties."""
    ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=-1) * (rb**2).sum(axis=-1))
    return np.divide((ra * rb).sum(axis=-1), denominator, out=np.full(denominator.shape, np.nan), where=denominator > 0)


def _square_pair(feature_matrix: Any, word_matrix: Any) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feature_matrix, dtype=np.float64)
    w = np.asarray(word_matrix, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != f.shape[1] or f.shape != w.shape:
        raise DataError(f"RSA needs two K x K matrices of the same size, got {f.shape} and {w.shape}")
    if f.shape[0] < 3:
        raise DataError(f"RSA needs at least 3 classes (3 off-diagonal pairs), got {f.shape[0]}")
    if not np.all(np.isfinite(w)):
        raise DataError("the word matrix holds NaN or infinite values")
    return f, w


def rsa_undefined_reason(feature_matrix: Any, word_matrix: Any) -> str | None:
    """Why the RSA of these K x K matrices is undefined, or None when it is defined.

    A rank correlation needs both sides to rank the class pairs: it is undefined when every
    off-diagonal word entry is equal (one-hot vectors: the word matrix is the identity) or
    every defined off-diagonal feature entry is (constant features: all class means point
    the same way), or when fewer than 3 class pairs have a defined feature entry.
    """
    f, w = _square_pair(feature_matrix, word_matrix)
    words = _upper(w)
    if np.ptp(words) <= _CONSTANT_SPREAD:
        return (f"the RSA is undefined: every off-diagonal entry of the word matrix is {words[0]:.3g} (one-hot or "
                "otherwise equidistant class vectors), so the words rank no pair of classes as more alike than "
                "another; such vectors only tell the classes apart and carry no semantics to compare with the "
                "feature similarities (still shown)")
    features = _upper(f)
    features = features[np.isfinite(features)]
    if features.size < 3:
        return f"the RSA is undefined: only {features.size} class pair(s) have a defined feature similarity"
    if np.ptp(features) <= _CONSTANT_SPREAD:
        return (f"the RSA is undefined: every off-diagonal entry of the feature matrix is {features[0]:.3g} (the "
                "class means all point the same way, e.g. constant features), so the features rank no pair of "
                "classes as more alike than another")
    return None


def _rsa_values(feature_matrices: np.ndarray, word_matrix: np.ndarray) -> np.ndarray:
    """RSA of each of (B, K, K) feature matrices against one word matrix, NaN feature pairs left out."""
    fu, wu = _upper(feature_matrices), _upper(word_matrix)
    finite = np.isfinite(fu)
    if finite.all():
        return spearman_rows(fu, wu[None, :])
    return np.array([spearman_rows(row[keep], wu[keep]) for row, keep in zip(fu, finite)])


def rsa(feature_matrix: Any, word_matrix: Any) -> float:
    """Spearman correlation of the upper-triangle entries of two K x K similarity matrices.

    Pairs whose feature entry is NaN (a class lost in noise, see :func:`class_mean_gram`)
    are left out. NaN when a side ranks no pairs (:func:`rsa_undefined_reason`).
    """
    f, w = _square_pair(feature_matrix, word_matrix)
    if rsa_undefined_reason(f, w) is not None:
        return float("nan")
    return float(_rsa_values(f[None], w)[0])


def rsa_relabel_test(feature_matrix: Any, word_matrix: Any, *, n_perm: int = 1000, random_state: int | None = 0) -> PermutationTest:
    """Class-relabelling null of :func:`rsa`: permute the word matrix's class order (rows and columns).

    All K! orders (the identity included, exact p-value) when K <= 8, otherwise
    ``n_perm`` random orders (Monte Carlo p-value, :mod:`semprobe.stats.nulls`). A DataError
    when the RSA is undefined (:func:`rsa_undefined_reason`): there is nothing to test.
    """
    f, w = _square_pair(feature_matrix, word_matrix)
    n_perm = check_int("n_perm", n_perm, 1, MAX_RESAMPLES)
    reason = rsa_undefined_reason(f, w)
    if reason is not None:
        raise DataError(f"no relabelling test: {reason}")
    rng = np.random.default_rng(check_random_state(random_state))
    return _relabel(f, w, n_perm, rng)


def _relabel(f: np.ndarray, w: np.ndarray, n_perm: int, rng: np.random.Generator) -> PermutationTest:
    perms, exact = class_relabellings(f.shape[0], n_perm, rng)
    fu = _upper(f)
    keep = np.isfinite(fu)
    observed = float(_rsa_values(f[None], w)[0])
    step = max(1, _BLOCK_ELEMENTS // (f.shape[0] ** 2))
    values = np.concatenate([
        spearman_rows(fu[keep][None, :], _upper(w[block[:, :, None], block[:, None, :]])[:, keep])
        for block in (perms[start : start + step] for start in range(0, perms.shape[0], step))
    ])
    return PermutationTest("RSA (Spearman, off-diagonal entries)", "relabel", observed, values, exact)


# The report class, still importable from here (``semprobe.plots.semantic`` names it).
# Resolved on first access (PEP 562): ``similarity_reporting`` imports this module.
def __getattr__(name: str) -> Any:
    """``SimilarityReport`` from :mod:`semprobe.stats.similarity_reporting` (PEP 562)."""
    if name == "SimilarityReport":
        from semprobe.stats import similarity_reporting

        return similarity_reporting.SimilarityReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
