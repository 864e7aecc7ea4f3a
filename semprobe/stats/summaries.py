"""Tables and printed summaries of :class:`~semprobe.stats.cca_reporting.CCAReport` and
:class:`~semprobe.stats.similarity_reporting.SimilarityReport`.

A notebook user reads a report through ``print(report)`` (a few lines: the statistics,
their intervals and p-values, the settings, the warnings) and ``report.to_frame()`` (a
pandas table with the settings as columns). The numbers are those of the reports'
``to_dict`` (what ``semprobe cca`` and ``semprobe simmatrix`` write); nothing is
recomputed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from semprobe import results

if TYPE_CHECKING:
    from semprobe.stats.cca_reporting import CCAReport, CCAStatistic
    from semprobe.stats.similarity_reporting import SimilarityReport

CCA_SETTINGS = ("ridge", "pca", "method", "n_boot", "n_perm", "random_state")
SIMILARITY_SETTINGS = ("centre", "split_half", "n_splits", "n_boot", "n_perm", "random_state")
# class pairs named in a similarity summary, most similar first
CLOSEST_PAIRS = 3


def _p(test) -> float | None:
    return test.p_value if test is not None else None


def cca_frame(report: CCAReport):
    """One row per statistic (``in_sample``: SCARL's, ``held_out``): r, its CI, both
    permutation p-values, the random-matrix chance level, the fit's diagnostics, the settings."""
    rows = []
    for stat in (report.in_sample, report.held_out):
        d = stat.diagnostics
        rows.append({
            "statistic": stat.name, "r": stat.r,
            "ci_low": stat.ci[0] if stat.ci is not None else None,
            "ci_high": stat.ci[1] if stat.ci is not None else None,
            "p_pair_shuffle": _p(stat.pair_shuffle), "p_relabel": _p(stat.relabel),
            "relabel_exact": stat.relabel.exact if stat.relabel is not None else None,
            "chance_level": d.chance_level, "chance_level_95": d.chance_level_95,
            "n": d.n, "dim_x": d.dim_x, "dim_y": d.dim_y, "saturated": d.saturated, "labels_only": d.labels_only,
            **results.setting_columns(report.settings),
        })
    return results.frame(rows)


def _cca_line(label: str, stat: CCAStatistic) -> str:
    d = stat.diagnostics
    return (f"  {label:<9} r {stat.r:.3f}{results.interval(stat.ci)}  chance {d.chance_level:.3f} "
            f"(q95 {d.chance_level_95:.3f})  {results.p_value(stat.pair_shuffle, 'pair-shuffle')}  "
            f"{results.p_value(stat.relabel, 'relabel')}")


def cca_summary(report: CCAReport) -> str:
    """A few lines: what was fitted, both statistics with CI, chance level and p-values,
    the settings, the warnings."""
    s = report.settings
    lines = [f"CCAReport: first canonical correlation of {s['n_pairs']} image/word pairs, {s['n_classes']} classes "
             f"({s['n_train']} train / {s['n_test']} test held out)",
             _cca_line("in-sample", report.in_sample), _cca_line("held-out", report.held_out),
             results.settings_line(s, CCA_SETTINGS)]
    return results.summary(lines + results.warning_lines(report.warnings))


def _pairs(report: SimilarityReport) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names and the (i, j) indices of the upper triangle, i < j."""
    names = results.class_names(report.classes, report.feature_matrix.shape[0])
    upper_i, upper_j = np.triu_indices(len(names), k=1)
    return names, upper_i, upper_j


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def similarity_frame(report: SimilarityReport):
    """One row per class pair (i < j): the two classes, their feature and word similarity and
    image counts, with the RSA, its CI, the relabelling p-value and the settings."""
    names, upper_i, upper_j = _pairs(report)
    ci = report.rsa_ci
    shared = {"rsa": _finite(report.rsa), "rsa_ci_low": ci[0] if ci is not None else None,
              "rsa_ci_high": ci[1] if ci is not None else None, "p_relabel": _p(report.relabel),
              **results.setting_columns(report.settings)}
    return results.frame({
        "class_a": names[i], "class_b": names[j],
        "feature_similarity": _finite(report.feature_matrix[i, j]), "word_similarity": _finite(report.word_matrix[i, j]),
        "count_a": report.class_counts[i], "count_b": report.class_counts[j], **shared,
    } for i, j in zip(upper_i.tolist(), upper_j.tolist()))


def _closest(matrix: np.ndarray, names: list[str], upper_i: np.ndarray, upper_j: np.ndarray) -> str:
    values = matrix[upper_i, upper_j]
    order = [k for k in np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable") if np.isfinite(values[k])]
    return ", ".join(f"{names[upper_i[k]]}/{names[upper_j[k]]} {values[k]:.2f}" for k in order[:CLOSEST_PAIRS]) or "-"


def similarity_summary(report: SimilarityReport) -> str:
    """A few lines: the RSA with CI and relabelling p-value (or why it is undefined), the
    class pairs each side finds closest, the settings, the warnings."""
    s = report.settings
    names, upper_i, upper_j = _pairs(report)
    if report.rsa_note is None:
        head = (f"SimilarityReport: RSA {report.rsa:.3f}{results.interval(report.rsa_ci)} "
                f"(Spearman over {len(upper_i)} class pairs), {results.p_value(report.relabel, 'relabel')}")
    else:
        head = "SimilarityReport: RSA undefined (see the warning)"
    low, high = min(report.class_counts), max(report.class_counts)
    lines = [head,
             f"  {s['n_classes']} classes, {s['n_images']} images ({low if low == high else f'{low} to {high}'} per class)",
             f"  closest pairs, features: {_closest(report.feature_matrix, names, upper_i, upper_j)}",
             f"  closest pairs, words:    {_closest(report.word_matrix, names, upper_i, upper_j)}",
             results.settings_line(s, SIMILARITY_SETTINGS)]
    return results.summary(lines + results.warning_lines(report.warnings))
