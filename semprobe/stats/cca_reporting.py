"""``semprobe cca`` for one set of features: SCARL's statistic and what qualifies it.

SCARL (Section 1, Fig. 1; Appendix D, Fig. 5; the CCA of 0.84 in Section 3.2) reports
the first canonical correlation of 500 image/word pairs, in sample. :func:`cca_report`
computes that statistic for fidelity and, as ``shared/DESIGN.md`` ("The statistics, done
right") asks, beside it the held-out canonical correlation with a bootstrap interval
(images resampled within class), the chance level, the pair-shuffle and relabelling
nulls (:mod:`semprobe.stats.cca_nulls`) and the diagnostics of both fits
(:class:`~semprobe.stats.cca.CCADiagnostics`).

* :class:`CanonicalVariates` -- the points of one Fig. 1 panel.
* :class:`CCAStatistic` -- one statistic (in sample or held out) with its interval and nulls.
* :class:`CCAReport` -- both statistics, the settings and the warnings (what ``cca.json`` holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
import warnings

import numpy as np

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
from semprobe.stats._whitening import PcaSpec, RidgeSpec, parse_pca, parse_ridge
from semprobe.stats.cca import CCA, CCADiagnostics, _check_options, _pearson, _pearson_rows
from semprobe.stats.cca_nulls import (
    _block_size,
    _pair_shuffle_held_out,
    _pair_shuffle_in_sample,
    _pairs_input,
    _relabel_tol,
    _relabel_values,
    _RelabelProblem,
)
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.resampling import (
    bootstrap_within_class,
    class_relabellings,
    percentile_interval,
    stratified_sample,
    stratified_split,
)


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
    r_in = float(plain.canonical_correlations_[0])
    x_var, y_var = plain.transform(X, Y)
    in_sample_tests: tuple[PermutationTest | None, PermutationTest | None] = (None, None)
    if n_perm:
        statistic = "in-sample first canonical correlation"
        zx, zy = plain.whitened(X, Y)
        shuffled = _pair_shuffle_in_sample(zx, zy, n_perm, rng)
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
        test_x, test_y = model.whitened(X[test_pos], Y[test_pos])
        train_x, train_y = model.whitened(X[train_pos], Y[train_pos])
        shuffled = _pair_shuffle_held_out((train_x, train_y), (test_x, test_y), n_perm, rng)
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
