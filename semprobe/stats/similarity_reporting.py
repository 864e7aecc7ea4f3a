"""``semprobe simmatrix`` for one feature set and one embedding: SCARL Fig. 2 with its RSA.

SCARL (Section 1, Fig. 2) compares the class-similarity matrix of a model's features
with that of the class word vectors by eye. :func:`similarity_report` puts the matrices
and their RSA (:mod:`semprobe.stats.similarity`) together with what ``shared/DESIGN.md``
("The statistics, done right") asks for: the class-relabelling p-value and a bootstrap CI
of the RSA that resamples images within class; :class:`SimilarityReport` holds it all
(what ``simmatrix.json`` holds).

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

from semprobe.errors import ConfigError, DataError
from semprobe.options import MAX_HALF_SPLITS, MAX_RESAMPLES
from semprobe.stats._checks import (
    as_matrix,
    check_class_names,
    check_every_class,
    check_int,
    check_open_fraction,
    check_random_state,
    class_vectors_and_names,
)
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import basic_correlation_interval
from semprobe.stats.similarity import (
    _features_input,
    _gram_estimate,
    _relabel,
    _rsa_values,
    rsa,
    rsa_undefined_reason,
    word_cosine_matrix,
)


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
