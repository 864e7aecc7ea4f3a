"""semprobe.paper.findings: the verdict rules, the MOVER interval, and findings on real command outputs."""

import json
import math

import pytest

from semprobe.paper.findings import (HOLDS, OPPOSITE, UNCLEAR, UNTESTABLE, accuracy_finding, alpha_finding,
                                     mover_difference, rank_trend, render_summary, rsa_finding, semantics_finding,
                                     separability_finding)
from semprobe.robustness.accuracy import AttackResult, wilson_interval
from semprobe.robustness.alpha_curves import SuccessRate
from semprobe.stats.records import NullSummary
from semprobe.stats.intervals import paired_comparison


def test_mover_is_newcombe_method_10_on_his_worked_example():
    # Newcombe (1998), Stat. Med. 17:873, Table II example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    difference, low, high = mover_difference(56 / 70, wilson_interval(56, 70), 48 / 80, wilson_interval(48, 80))
    assert difference == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_mover_with_symmetric_intervals_adds_half_widths_in_quadrature():
    difference, low, high = mover_difference(0.7, (0.6, 0.8), 0.5, (0.47, 0.53))
    half = math.hypot(0.1, 0.03)
    assert (difference, low, high) == pytest.approx((0.2, 0.2 - half, 0.2 + half))


def _null(p, null_mean=0.0):
    """A class-relabelling null as the commands write it (PermutationTest.to_dict)."""
    return NullSummary("statistic", "relabel", 0.0, p, 1000, False, null_mean, null_mean, null_mean,
                       null_mean).to_dict()


def _held_out(r, ci, p=1.0, rank_y=9, distinct=10, null_mean=0.0):
    return {"r": r, "ci": list(ci), "relabel": _null(p, null_mean),
            "diagnostics": {"n": 250, "rank_y": rank_y, "n_distinct_y": distinct}}


def _cca(values, column="adversarial", **kw):
    return {"sources": {label: {"columns": {column: {"held_out": _held_out(r, ci, **kw), "train": list(range(250)),
                                                     "test": list(range(250, 500))}}}
                        for label, (r, ci) in values.items()}}


@pytest.mark.parametrize("robust, natural, verdict", [
    ((0.8, (0.75, 0.85)), (0.5, (0.4, 0.6)), HOLDS),
    ((0.5, (0.4, 0.6)), (0.8, (0.75, 0.85)), OPPOSITE),
    ((0.62, (0.5, 0.7)), (0.6, (0.5, 0.7)), UNCLEAR),
])
def test_separability_verdict_follows_the_interval_of_the_difference(robust, natural, verdict):
    finding = separability_finding(_cca({"rob": robust, "nat": natural}), "rob", "nat")
    assert finding.verdict == verdict
    assert finding.numbers["r"] == {"rob": robust[0], "nat": natural[0]}


def test_separability_names_fitted_and_held_out_pairs_and_what_it_measures():
    finding = separability_finding(_cca({"rob": (0.8, (0.7, 0.9)), "nat": (0.5, (0.4, 0.6))}), "rob", "nat")
    assert "fitted on 250 pairs, correlated on 250 held-out pairs" in finding.details[0]
    assert any("class separability, not semantics" in line for line in finding.details)
    assert (finding.numbers["n_fit"], finding.numbers["n_test"]) == (250, 250)


def test_separability_names_a_missing_checkpoint():
    with pytest.raises(KeyError, match="has no entry 'other'"):
        separability_finding(_cca({"rob": (0.8, (0.7, 0.9))}), "rob", "other")


def _semantic(rob, nat, rsa_rob, rsa_nat):
    """rob/nat: (r, ci, p, null_mean) of the low-rank CCA; rsa_*: (rsa, ci, p) on adversarial images."""
    cca = {"sources": {label: {"columns": {"adversarial": {
        "held_out": _held_out(r, ci, p=p, rank_y=3, null_mean=null_mean), "train": [0] * 10, "test": [0] * 10}}}
        for label, (r, ci, p, null_mean) in (("rob", rob), ("nat", nat))}}
    sim = {"features": {f"{label} (adversarial)": {"embeddings": {"glove": {
        "rsa": rsa, "rsa_ci": list(ci), "relabel": _null(p)}}}
        for label, (rsa, ci, p) in (("rob", rsa_rob), ("nat", rsa_nat))}}
    return cca, sim


def test_semantics_is_the_excess_over_the_relabelling_null_not_the_raw_correlation():
    # the robust model has the larger r, but also the larger null mean (more separable): less semantic excess
    cca, sim = _semantic(rob=(0.90, (0.88, 0.92), 0.30, 0.88), nat=(0.85, (0.83, 0.87), 0.01, 0.70),
                         rsa_rob=(0.2, (0.1, 0.3), 0.2), rsa_nat=(0.5, (0.45, 0.55), 0.01))
    finding = semantics_finding(cca, sim, "rob", "nat")
    numbers = finding.numbers["CCA against the top 3 word dimensions"]
    assert numbers["excess"] == pytest.approx({"rob": 0.02, "nat": 0.15})
    low, high = mover_difference(0.02, (0.0, 0.04), 0.15, (0.13, 0.17))[1:]
    assert numbers["difference"] == pytest.approx([-0.13, low, high])
    assert finding.verdict == OPPOSITE


def test_semantics_holds_only_when_both_tests_agree_and_the_robust_model_passes_the_null():
    strong = _semantic(rob=(0.9, (0.88, 0.92), 0.01, 0.6), nat=(0.8, (0.78, 0.82), 0.01, 0.7),
                       rsa_rob=(0.6, (0.55, 0.65), 0.01), rsa_nat=(0.2, (0.1, 0.3), 0.2))
    assert semantics_finding(*strong, "rob", "nat").verdict == HOLDS
    not_significant = _semantic(rob=(0.9, (0.88, 0.92), 0.2, 0.6), nat=(0.8, (0.78, 0.82), 0.01, 0.7),
                                rsa_rob=(0.6, (0.55, 0.65), 0.01), rsa_nat=(0.2, (0.1, 0.3), 0.2))
    assert semantics_finding(*not_significant, "rob", "nat").verdict == UNCLEAR
    mixed = _semantic(rob=(0.9, (0.88, 0.92), 0.01, 0.6), nat=(0.8, (0.78, 0.82), 0.01, 0.7),
                      rsa_rob=(0.2, (0.1, 0.3), 0.01), rsa_nat=(0.6, (0.55, 0.65), 0.01))
    assert semantics_finding(*mixed, "rob", "nat").verdict == UNCLEAR


def _sim(values):
    return {"features": {label: {"embeddings": {"glove": {"rsa": rsa, "rsa_ci": list(ci), "relabel": _null(0.01)}}}
                         for label, (rsa, ci) in values.items()}}


def test_rsa_verdicts():
    assert rsa_finding(_sim({"rob": (0.6, (0.5, 0.7)), "nat": (0.2, (0.1, 0.3))}), "rob", "nat").verdict == HOLDS
    assert rsa_finding(_sim({"rob": (0.2, (0.1, 0.3)), "nat": (0.6, (0.5, 0.7))}), "rob", "nat").verdict == OPPOSITE
    assert rsa_finding(_sim({"rob": (0.3, (0.1, 0.5)), "nat": (0.2, (0.0, 0.4))}), "rob", "nat").verdict == UNCLEAR


def test_an_undefined_rsa_is_untestable_not_a_crash():
    onehot = {"features": {label: {"embeddings": {"onehot": {"rsa": None, "rsa_ci": None, "relabel": None,
                                                            "rsa_note": "one-hot vectors: every word similarity is 0"}}}
                           for label in ("rob", "nat")}}
    finding = rsa_finding(onehot, "rob", "nat", embedding="onehot")
    assert finding.verdict == UNTESTABLE and "every word similarity is 0" in finding.details[0]


def _eval(rows, n=None):
    def result(attack, correct, n, per_image=""):  # as semprobe eval writes it
        low, high = wilson_interval(correct, n)
        return AttackResult({"name": attack}, n, correct, 100 * correct / n, (100 * low, 100 * high), [], 0.0,
                            per_image).to_dict()
    return {"metadata": {"settings": {"dataset": "d", "split": "test", "n": n, "seed": 0, "sample": "all"}},
            "checkpoints": {label: {"results": [result(*row) for row in results]} for label, results in rows.items()}}


def test_accuracy_is_compared_paired_when_the_outputs_keep_per_image_outcomes():
    # 1000 images: both right on 550, scarl only on 50, trades only on 20
    scarl = "1" * 550 + "1" * 50 + "0" * 20 + "0" * 380
    trades = "1" * 550 + "0" * 50 + "1" * 20 + "0" * 380
    one = _eval({"scarl": [("pgd20", 600, 1000, scarl)]}, n=1000)
    other = _eval({"trades": [("pgd20", 570, 1000, trades)]}, n=1000)  # a separate command on the same images
    finding = accuracy_finding([one, other], "scarl", "trades", attacks=("pgd20",))
    expected = paired_comparison([c == "1" for c in scarl], [c == "1" for c in trades])
    numbers = finding.numbers["pgd20"]
    assert numbers["paired"] and numbers["only_better"] == 50 and numbers["only_baseline"] == 20
    assert numbers["difference"] == pytest.approx([3.0, 100 * expected.ci95[0], 100 * expected.ci95[1]])
    assert numbers["mcnemar_p"] == pytest.approx(expected.mcnemar_p)
    unpaired = mover_difference(60.0, [100 * v for v in wilson_interval(600, 1000)],
                                57.0, [100 * v for v in wilson_interval(570, 1000)])
    assert unpaired[1] < 0 < numbers["difference"][1]  # only the paired interval sees the difference
    assert finding.verdict == HOLDS
    elsewhere = _eval({"trades": [("pgd20", 570, 1000, trades)]}, n=500)  # another sample: no pair
    assert accuracy_finding([one, elsewhere], "scarl", "trades", attacks=("pgd20",)).verdict == UNTESTABLE


def test_accuracy_reads_each_attack_from_the_first_evaluation_that_has_it():
    big = _eval({"scarl": [("pgd20", 600, 1000)], "trades": [("pgd20", 500, 1000)]})
    small = _eval({"scarl": [("pgd20", 30, 50), ("aa", 29, 50)], "trades": [("pgd20", 25, 50), ("aa", 24, 50)]})
    finding = accuracy_finding([big, small], "scarl", "trades")
    assert finding.numbers["pgd20"]["n"] == 1000 and finding.numbers["aa"]["n"] == 50
    expected = mover_difference(60.0, [100 * v for v in wilson_interval(600, 1000)],
                                50.0, [100 * v for v in wilson_interval(500, 1000)])
    assert finding.numbers["pgd20"]["difference"] == pytest.approx(list(expected))
    assert finding.verdict == UNCLEAR  # PGD-20 clearly better, AutoAttack on 50 images undecided


def test_accuracy_verdicts_at_the_extremes():
    better = _eval({"s": [("pgd20", 700, 1000), ("aa", 690, 1000)], "t": [("pgd20", 500, 1000), ("aa", 480, 1000)]})
    assert accuracy_finding([better], "s", "t").verdict == HOLDS
    assert accuracy_finding([better], "t", "s").verdict == OPPOSITE
    assert accuracy_finding([_eval({"s": [], "t": []})], "s", "t").verdict == UNTESTABLE


def _curve(label, successes, alphas=None, n=200, kl=None, match=None):
    alphas = alphas or [i / (len(successes) - 1) for i in range(len(successes))]
    def rate(success):  # as semprobe alpha-curve writes it: every image correct before the attack
        return SuccessRate(round(n * (1 - success / 100)), n, n).to_dict()

    points = [{"alpha": alpha, **rate(success)} for alpha, success in zip(alphas, successes)]
    return {"label": label, "points": points, "pgd_ce": rate(100), "pgd_kl": rate(kl if kl is not None else successes[0]),
            "alpha_matching_pgd_kl": match}


def test_rank_trend_counts_orderings_by_hand():
    assert rank_trend([0, 1, 2, 3], [9, 7, 5, 1]) == pytest.approx((-1.0, 1 / 24, 1.0))
    rho, falling, rising = rank_trend([0, 1, 2], [1, 3, 2])  # rho 0.5; of the 6 orderings 3 have rho >= 0.5
    assert rho == pytest.approx(0.5) and rising == pytest.approx(3 / 6) and falling == pytest.approx(5 / 6)
    assert rank_trend([0, 1, 2], [4, 4, 4]) == (0.0, 1.0, 1.0)
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = list(range(10)), [5, 3, 8, 1, 0, 2, 9, 4, 7, 6]
    rho, falling, rising = rank_trend(x, y, n_perm=4000)
    assert rho == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert rising == pytest.approx(scipy_stats.spearmanr(x, y, alternative="greater").pvalue, abs=0.03)


def test_alpha_falling_on_both_models_holds_and_reports_the_match():
    document = {"curves": [_curve("nat", [90, 70, 50, 30]),
                           _curve("at", [50, 40, 35, 20], kl=45, match={"alpha": 0.17, "bracket": [0, 1 / 3]})]}
    finding = alpha_finding(document, ["nat", "at"], "at")
    assert finding.verdict == HOLDS
    assert finding.numbers["alpha_matching_pgd_kl"] == 0.17
    assert finding.numbers["nat"]["spearman"] == pytest.approx(-1.0)
    assert any("matches it at alpha 0.17" in line for line in finding.details)


def test_the_matching_alphas_interval_says_how_many_resamples_match():
    match = {"alpha": 0.17, "bracket": [0, 1 / 3], "ci95": [0.1, 0.3], "n_boot": 200, "undefined_share": 0.25}
    document = {"curves": [_curve("at", [50, 40, 35, 20], kl=45, match=match)]}
    line = [line for line in alpha_finding(document, ["at"], "at").details if "matches it" in line][0]
    assert "bootstrap 95% CI over images [0.1, 0.3] (200 resamples, 75% of which match PGD-KL" in line


def test_alpha_flat_or_rising_curves():
    flat = {"curves": [_curve("nat", [50, 50, 50]), _curve("at", [40, 41, 40])]}
    assert alpha_finding(flat, ["nat", "at"], "at").verdict == UNCLEAR
    rising = {"curves": [_curve("nat", [10, 40, 60, 70, 80]), _curve("at", [5, 30, 40, 50, 60])]}
    finding = alpha_finding(rising, ["nat", "at"], "at")
    assert finding.verdict == OPPOSITE
    assert any("no alpha in the range" in line for line in finding.details)


def test_render_summary_lists_every_verdict():
    findings = [rsa_finding(_sim({"rob": (0.6, (0.5, 0.7)), "nat": (0.2, (0.1, 0.3))}), "rob", "nat")]
    text = render_summary("Title", ["set-up line"], findings, ["## More\n\ntext"])
    assert text.startswith("# Title\n\nset-up line\n")
    assert "| Robust class similarities are closer to the word vectors' (RSA) | holds |" in text
    assert "### Robust class similarities" in text and text.rstrip().endswith("text")


def test_findings_on_real_command_outputs(digits_ckpt, tmp_path, run_cli):
    """The JSON the commands write is what the findings read (the same checkpoint twice: no difference)."""
    other = tmp_path / "copy" / "best.pt"
    other.parent.mkdir()
    other.write_bytes(digits_ckpt.read_bytes())
    ckpts = ["--ckpt", digits_ckpt, "--ckpt", other]
    common = ["--eps", 0.1, "--quiet", "--n-boot", 30, "--n-perm", 30]
    assert run_cli(["cca", *ckpts, "--n-pairs", 120, *common, "--out", tmp_path / "cca"])[0] == 0
    assert run_cli(["simmatrix", *ckpts, "--n", 120, *common, "--out", tmp_path / "sim"])[0] == 0
    assert run_cli(["eval", *ckpts, "--attacks", "natural,pgd5", "--n", 60, "--eps", 0.1, "--quiet",
                    "--out", tmp_path / "ev"])[0] == 0
    assert run_cli(["alpha-curve", *ckpts, "--alphas", "0,0.5,1", "--n", 60, "--eps", 0.1, "--quiet",
                    "--out", tmp_path / "al"])[0] == 0
    load = lambda *parts: json.loads(tmp_path.joinpath(*parts).read_text())  # noqa: E731
    second = "copy/best"  # a run file (best.pt, last.pt) is labelled with its folder
    first = next(label for label in load("cca", "cca.json")["sources"] if label != second)
    cca = separability_finding(load("cca", "cca.json"), first, second)
    assert cca.verdict == UNCLEAR and cca.numbers["difference"][0] == pytest.approx(0.0)
    assert cca.numbers["n_fit"] + cca.numbers["n_test"] == 120
    assert rsa_finding(load("sim", "simmatrix.json"), first, second).numbers["difference"][0] == pytest.approx(0.0)
    accuracy = accuracy_finding([load("ev", "eval.json")], first, second, attacks=("pgd5",))
    assert accuracy.verdict == UNCLEAR and accuracy.numbers["pgd5"]["n"] == 60
    assert accuracy.numbers["pgd5"]["paired"] and accuracy.numbers["pgd5"]["mcnemar_p"] == 1.0
    alpha = alpha_finding(load("al", "alpha_curve.json"), [first], first)
    assert set(alpha.numbers[first]["success"]) == {0.0, 0.5, 1.0}


def test_an_interval_bound_that_would_round_to_zero_keeps_its_sign():
    from semprobe.paper.findings import format_ci

    assert format_ci((0.00024, 0.064)) == "[0.00024, 0.064]"
    assert format_ci((-0.00031, 0.5), 1) == "[-0.00031, 0.5]"
    assert format_ci((0.0, 1.25), 1) == "[0.0, 1.2]"
