"""semprobe.stats.records: the statistics the cca and simmatrix commands write, read back."""

import numpy as np
import pytest

from semprobe.stats import cca_report, similarity_report
from semprobe.stats.nulls import PermutationTest
from semprobe.stats.records import NullSummary, Statistic, cca_statistic, rsa_statistic


def _planted(n=200, k=5, p=12, seed=0):
    rng = np.random.default_rng(seed)
    words = rng.normal(size=(k, 6))
    labels = np.arange(n) % k
    features = np.concatenate([words[labels], rng.normal(size=(n, p - 6))], axis=1) + 0.5 * rng.normal(size=(n, p))
    return features, labels, words


def test_a_null_summary_reads_back_what_a_permutation_test_writes():
    test = PermutationTest("r", "relabel", 0.4, np.array([0.1, 0.2, 0.5, 0.3]), False)
    summary = NullSummary.from_dict(test.to_dict())
    assert summary.to_dict() == test.to_dict()
    assert summary.p_value == pytest.approx((1 + 1) / (1 + 4)) and summary.null_mean == pytest.approx(0.275)
    assert NullSummary.from_dict(None) is None


def test_a_cca_column_reads_back_the_report_the_command_wrote():
    features, labels, words = _planted()
    report = cca_report(features, labels, words, n_pairs=150, n_boot=50, n_perm=50, random_state=0)
    document = {"sources": {"model": {"columns": {"natural": report.to_dict()}}}}
    held = cca_statistic(document, "model", "natural")
    assert held.value == report.held_out.r and held.ci == tuple(report.held_out.ci)
    assert held.relabel_p == report.held_out.relabel.p_value
    assert held.n_fit == len(report.train) and held.n_test == len(report.test)
    assert held.relabelling_is_degenerate == (report.held_out.diagnostics.rank_y >= 5 - 1)
    excess, ci, p = held.excess()
    mean = float(np.mean(report.held_out.relabel.null_values))
    assert excess == pytest.approx(report.held_out.r - mean) and ci == pytest.approx(
        (report.held_out.ci[0] - mean, report.held_out.ci[1] - mean))
    inside = cca_statistic(document, "model", "natural", which="in_sample")
    assert inside.value == report.in_sample.r and inside.pair_shuffle.p_value == report.in_sample.pair_shuffle.p_value
    with pytest.raises(KeyError, match="has no entry 'other'; it has model"):
        cca_statistic(document, "other", "natural")


def test_an_rsa_reads_back_the_report_the_command_wrote():
    features, labels, words = _planted()
    report = similarity_report(features, labels, words, n_boot=50, n_perm=50, random_state=0)
    document = {"features": {"model": {"embeddings": {"glove": report.to_dict()}}}}
    rsa = rsa_statistic(document, "model", "glove")
    assert rsa.defined and rsa.value == report.rsa and rsa.ci == tuple(report.rsa_ci)
    assert rsa.relabel_p == report.relabel.p_value and rsa.note is None
    undefined = Statistic.from_rsa({"rsa": None, "rsa_ci": None, "relabel": None, "rsa_note": "constant"})
    assert not undefined.defined and undefined.note == "constant" and undefined.relabel_p is None
