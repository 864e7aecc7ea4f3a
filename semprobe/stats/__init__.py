"""Statistics of semprobe's semantic diagnostics: CCA (SCARL Fig. 1/5) and class similarity (Fig. 2).

The numerical core of ``semprobe cca`` and ``semprobe simmatrix``; see ``shared/DESIGN.md``,
"The statistics, done right". Everything is numpy/scipy float64; nothing here imports torch.
"""

from semprobe.stats.cca import (
    CCA,
    CanonicalVariates,
    CCADiagnostics,
    CCAReport,
    CCAStatistic,
    cca_report,
    pair_shuffle_test,
    random_matrix_chance,
    relabel_test,
)
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.similarity import (
    SimilarityReport,
    class_mean_gram,
    rsa,
    rsa_relabel_test,
    rsa_undefined_reason,
    similarity_report,
    word_cosine_matrix,
)

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
