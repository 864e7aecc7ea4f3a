"""Class-similarity matrices and their agreement (RSA): SCARL Fig. 2, done right.

SCARL Fig. 2 shows, for a model's features, "the inner product between different
categories of normalized features" -- the K x K Gram of L2-normalised class-mean
features -- beside the cosine matrix of the classes' GloVe (and CLIP) vectors, and reads
their resemblance by eye. This module computes

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
* :func:`word_cosine_matrix`: the cosine matrix of the class word vectors.
* :func:`rsa`: representational similarity analysis (Kriegeskorte et al. 2008, Front.
  Syst. Neurosci. 2:4): the Spearman correlation between the off-diagonal (upper
  triangle) entries of a feature matrix and a word matrix, undefined (NaN, with the
  reason from :func:`rsa_undefined_reason`) when either side's entries are all equal, as
  for one-hot word vectors;
  :func:`rsa_relabel_test`: its null, permuting the class order of the word matrix (rows
  and columns together), exact over all K! orders when K <= 8.
* :func:`similarity_report`: all of it for one feature set and one embedding, with a
  bootstrap CI of the RSA that resamples images within class.

Noise in the class means attenuates the RSA (a correlation of noisy entries): the sample
RSA is biased towards 0, strongly so with few images per class, and each bootstrap
replicate adds as much noise again. The CI is therefore the basic bootstrap interval on
Fisher's z scale (:func:`~semprobe.stats.resampling.basic_correlation_interval`), which
shifts that extra attenuation back instead of sitting below the estimate as a percentile
interval does. It describes the sampling variability of the estimate; it is not a
noise-corrected interval for the RSA of noise-free class means (in simulations with 10
images per class it covered that value in well under half the cases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
import warnings

import numpy as np
from scipy.stats import rankdata

from semprobe.errors import ConfigError, DataError
from semprobe.options import MAX_HALF_SPLITS, MAX_RESAMPLES
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
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import basic_correlation_interval, class_indices, class_relabellings

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


@dataclass(frozen=True, repr=False)
class SimilarityReport:
    """Everything ``semprobe simmatrix`` reports for one feature set and one embedding.

    ``print(report)`` (and its repr) is a few lines: the RSA with its CI and relabelling
    p-value, the closest class pairs, the settings and the warnings; :meth:`to_frame` has
    one row per class pair (see :mod:`semprobe.stats.summaries`).

    Attributes:
        feature_matrix: (K, K) class-mean Gram of the features (SCARL Fig. 2 a, b).
        word_matrix: (K, K) cosine matrix of the class word vectors (Fig. 2 c, d).
        rsa: Spearman correlation of their off-diagonal entries (NaN when undefined).
        rsa_ci: basic bootstrap interval of the RSA on Fisher's z scale (images resampled
            within class, the feature matrix recomputed), or None when not computed.
        relabel: class-relabelling permutation test of the RSA, or None.
        class_counts: images per class.
        settings: every option that produced the numbers.
        warnings: sentences for the CLI and the plot.
        rsa_note: why the RSA is undefined (also among the warnings), or None.
        classes: the K class names, when known (given, or from a ``ClassVectors``), else None.
    """

    feature_matrix: np.ndarray = field(repr=False)
    word_matrix: np.ndarray = field(repr=False)
    rsa: float
    rsa_ci: tuple[float, float] | None
    relabel: PermutationTest | None
    class_counts: tuple[int, ...]
    settings: dict[str, Any]
    warnings: tuple[str, ...]
    rsa_note: str | None = None
    classes: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy for JSON, what ``semprobe simmatrix`` writes (NaN entries become
        None), with the class names when the report knows them."""

        def matrix(m: np.ndarray) -> list[list[float | None]]:
            return [[float(v) if np.isfinite(v) else None for v in row] for row in m]

        out = {
            "settings": dict(self.settings),
            "feature_matrix": matrix(self.feature_matrix),
            "word_matrix": matrix(self.word_matrix),
            "rsa": self.rsa if np.isfinite(self.rsa) else None,
            "rsa_note": self.rsa_note,
            "rsa_ci": list(self.rsa_ci) if self.rsa_ci is not None else None,
            "relabel": self.relabel.to_dict() if self.relabel else None,
            "class_counts": list(self.class_counts),
            "warnings": list(self.warnings),
        }
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out

    def to_frame(self):
        """A pandas DataFrame, one row per class pair (i < j): both classes' names, the feature
        and word similarities, with the RSA, its CI, the relabelling p-value and the settings."""
        from semprobe.stats.summaries import similarity_frame

        return similarity_frame(self)

    def __str__(self) -> str:
        from semprobe.stats.summaries import similarity_summary

        return similarity_summary(self)

    __repr__ = __str__


def _bootstrap_interval(value: float, boot: np.ndarray, confidence: float, messages: list[str]) -> tuple[float, float] | None:
    """The RSA interval from the replicates with a defined RSA (None if none has); notes dropped ones."""
    finite = boot[np.isfinite(boot)]
    if finite.size < boot.size:
        messages.append(f"{boot.size - finite.size} of {boot.size} bootstrap replicates had no defined RSA and were dropped")
    if not finite.size:
        messages.append("no bootstrap replicate had a defined RSA: no interval")
        return None
    return basic_correlation_interval(value, finite, confidence)


def similarity_report(
    features: Any,
    labels: Any,
    class_vectors: Any,
    *,
    centre: bool = False,
    split_half: bool = False,
    n_splits: int = 10,
    n_boot: int = 1000,
    n_perm: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    warn: bool = False,
    classes: Any = None,
) -> SimilarityReport:
    """SCARL Fig. 2 for one feature set and one embedding, with its RSA, null and CI.

    ``class_vectors`` is a (K, q) array or a :class:`semprobe.words.ClassVectors`, whose
    class names the report then keeps (``classes`` names them for an array).

    ``features`` (n, p) with ``labels`` (n,) in [0, K) for the K rows of ``class_vectors``
    (K, q). Computes :func:`class_mean_gram` (``centre``, ``split_half``, ``n_splits``),
    :func:`word_cosine_matrix`, :func:`rsa`, the relabelling test (``n_perm``; all K! when
    K <= 8) and a bootstrap CI (``n_boot`` replicates resampling images within class,
    recomputing the feature matrix each time; basic interval on Fisher's z scale, see the
    module docstring). The split-half bootstrap costs about
    ``2 n_boot n_splits n p`` flops (100 GFLOP for 10,000 images of 512 features). ``n_boot=0`` / ``n_perm=0`` skip
    those. The same ``random_state`` gives the same numbers.

    When the RSA is undefined (one-hot word vectors, constant features: see
    :func:`rsa_undefined_reason`) the report still holds both matrices, with ``rsa`` NaN,
    no CI and no test, and says why in ``rsa_note`` (also one of its ``warnings``).
    """
    class_vectors, classes = class_vectors_and_names(class_vectors, classes)
    class_vectors = as_matrix("class_vectors", class_vectors)
    n_classes = class_vectors.shape[0]
    check_class_names(classes, n_classes)
    features, labels, _ = _features_input(features, labels, n_classes)
    if n_classes < 3:
        raise DataError(f"RSA needs at least 3 classes, got {n_classes}")
    counts = check_every_class(labels, n_classes, 2 if split_half else 1)
    n_splits = check_int("n_splits", n_splits, 1, MAX_HALF_SPLITS)
    n_boot = check_int("n_boot", n_boot, 0, MAX_RESAMPLES)
    n_perm = check_int("n_perm", n_perm, 0, MAX_RESAMPLES)
    confidence = check_open_fraction("confidence", confidence)
    if not isinstance(centre, bool) or not isinstance(split_half, bool):
        raise ConfigError("centre and split_half must be True or False")
    seed = check_random_state(random_state)
    rng = np.random.default_rng(seed)

    word_matrix = word_cosine_matrix(class_vectors)
    feature_matrix, replicates = _gram_estimate(
        features, labels, n_classes, centre=centre, split_half=split_half, n_splits=n_splits, rng=rng, n_boot=n_boot
    )
    messages = []
    lost = np.flatnonzero(np.isnan(np.diagonal(feature_matrix)))
    if lost.size:
        reason = "its two halves' means do not agree (<a_k, b_k> <= 0)" if split_half else "its mean is zero"
        messages.append(
            f"class(es) {lost.tolist()} have no defined similarity ({reason}); their pairs are left out of the RSA"
        )
    note = rsa_undefined_reason(feature_matrix, word_matrix)
    value, ci, relabel = float("nan"), None, None
    if note is not None:
        messages.append(note)
    else:
        value = rsa(feature_matrix, word_matrix)
        if n_boot:
            ci = _bootstrap_interval(value, _rsa_values(replicates, word_matrix), confidence, messages)
        relabel = _relabel(feature_matrix, word_matrix, n_perm, rng) if n_perm else None
    if warn:
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=2)
    settings = {
        "n_images": int(features.shape[0]),
        "n_classes": n_classes,
        "centre": centre,
        "split_half": split_half,
        "n_splits": n_splits if split_half else None,
        "n_boot": n_boot,
        "n_perm": n_perm,
        "confidence": confidence,
        "random_state": seed,
    }
    return SimilarityReport(
        feature_matrix=feature_matrix,
        word_matrix=word_matrix,
        rsa=value,
        rsa_ci=ci,
        relabel=relabel,
        class_counts=tuple(int(c) for c in counts),
        settings=settings,
        warnings=tuple(messages),
        rsa_note=note,
        classes=classes,
    )
