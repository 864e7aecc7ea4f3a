"""Statistics of semprobe's semantic diagnostics: CCA (SCARL Fig. 1/5) and class similarity (Fig. 2).

The numerical core of ``semprobe cca`` and ``semprobe simmatrix``; see ``shared/DESIGN.md``,
"The statistics, done right". Everything is numpy/scipy float64; nothing here imports torch.

One job per module: :mod:`~semprobe.stats.cca` (the estimator and its chance level),
:mod:`~semprobe.stats.cca_nulls` (its permutation nulls), :mod:`~semprobe.stats.cca_reporting`
(``cca_report``), :mod:`~semprobe.stats.similarity` (class-similarity matrices, RSA and its
null), :mod:`~semprobe.stats.similarity_reporting` (``similarity_report``),
:mod:`~semprobe.stats.summaries` (printed summaries and tables of both reports), and beneath
them ``_checks``, ``_whitening``, ``resampling``, ``nulls`` and ``intervals``.
"""

from semprobe.stats.cca import CCA, CCADiagnostics, random_matrix_chance
from semprobe.stats.cca_nulls import pair_shuffle_test, relabel_test
from semprobe.stats.cca_reporting import CanonicalVariates, CCAReport, CCAStatistic, cca_report
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.similarity import (
    class_mean_gram,
    rsa,
    rsa_relabel_test,
    rsa_undefined_reason,
    word_cosine_matrix,
)
from semprobe.stats.similarity_reporting import SimilarityReport, similarity_report

__all__ = [
    "CCA",
    "CCADiagnostics",
    "CCAReport",
    "CCAStatistic",
    "CanonicalVariates",
    "PermutationTest",
    "SimilarityReport",
    "cca_report",
    "class_mean_gram",
    "pair_shuffle_test",
    "random_matrix_chance",
    "relabel_test",
    "rsa",
    "rsa_relabel_test",
    "rsa_undefined_reason",
    "similarity_report",
    "word_cosine_matrix",
]
