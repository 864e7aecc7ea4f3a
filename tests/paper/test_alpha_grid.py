"""semprobe.paper.alpha_grid: SPAT Fig. 5's two claims, judged paired against alpha 0 at each eps."""

import pytest
from scipy.stats import norm

from semprobe.paper.alpha_grid import _bonferroni_z, clean_gain_finding, grid_curves, robust_peak_finding
from semprobe.paper.findings import HOLDS, OPPOSITE, UNCLEAR, UNTESTABLE
from semprobe.robustness.accuracy import AttackResult, wilson_interval

N = 1000


MADRY_RIGHT = {"natural": 700, "pgd20": 600}  # images alpha 0 gets right, the first ones, at every eps


def _outcomes(attack, only_model, only_madry):
    """Per-image outcomes on the same N images of a model that gets ``only_model`` images right that alpha 0
    gets wrong and ``only_madry`` wrong that alpha 0 gets right, and alpha 0's own outcomes."""
    right = MADRY_RIGHT[attack]
    madry = "1" * right + "0" * (N - right)
    model = "1" * (right - only_madry) + "0" * only_madry + "1" * only_model + "0" * (N - right - only_model)
    return model, madry


def _document(eps, **per_image):
    """An eval.json of one checkpoint, as semprobe eval writes it, with these per-image outcomes per attack."""
    def result(attack, flags):
        correct = flags.count("1")
        low, high = wilson_interval(correct, len(flags))
        return AttackResult({"name": attack}, len(flags), correct, 100 * correct / len(flags),
                            (100 * low, 100 * high), [], 0.0, flags).to_dict()
    settings = {"dataset": "fashion-mnist", "split": "test", "n": N, "seed": 0, "sample": "all", "eps": eps}
    return {"metadata": {"settings": settings},
            "checkpoints": {f"model_{eps}": {"results": [result(a, f) for a, f in per_image.items()]}}}


def _grid(cells):
    """``{(eps, alpha): (clean counts, pgd20 counts)}`` -> a grid of documents, alpha 0's at each eps included;
    counts are (images right only for the model, only for alpha 0)."""
    grid = {}
    for (eps, alpha), (clean, pgd) in cells.items():
        (clean_model, clean_madry), (pgd_model, pgd_madry) = _outcomes("natural", *clean), _outcomes("pgd20", *pgd)
        grid[(eps, alpha)] = _document(eps, natural=clean_model, pgd20=pgd_model)
        grid[(eps, 0.0)] = _document(eps, natural=clean_madry, pgd20=pgd_madry)
    return grid


def test_bonferroni_z_is_the_normal_quantile_of_the_split_level():
    assert _bonferroni_z(1) == pytest.approx(norm.ppf(0.975), abs=1e-9)
    assert _bonferroni_z(3) == pytest.approx(norm.ppf(1 - 0.05 / 6), abs=1e-9)  # 2.394


def test_clean_gain_holds_only_when_every_alpha_is_above_alpha_0():
    gains = {(0.1, 0.2): ((60, 10), (5, 5)), (0.1, 0.4): ((90, 10), (5, 5))}
    finding = clean_gain_finding(_grid(gains))
    assert finding.verdict == HOLDS
    # the difference by hand: (images right only for the model - only for alpha 0) / N
    assert finding.numbers["eps 0.1, alpha 0.2"]["difference"][0] == pytest.approx(100 * (60 - 10) / N)
    assert finding.numbers["eps 0.1, alpha 0.4"]["difference"][0] == pytest.approx(100 * (90 - 10) / N)
    one_tied = {**gains, (0.1, 0.1): ((12, 10), (5, 5))}
    assert clean_gain_finding(_grid(one_tied)).verdict == UNCLEAR
    losses = {(0.1, 0.2): ((10, 60), (5, 5)), (0.1, 0.4): ((10, 90), (5, 5))}
    assert clean_gain_finding(_grid(losses)).verdict == OPPOSITE


def test_robust_peak_judges_the_larger_eps_with_bonferroni_intervals():
    small_eps_worse = {(0.05, 0.2): ((5, 5), (10, 60))}  # alpha 0 best at the smallest eps, as in the paper
    peak = {**small_eps_worse, (0.1, 0.1): ((5, 5), (20, 20)), (0.1, 0.2): ((5, 5), (80, 10))}
    finding = robust_peak_finding(_grid(peak))
    assert finding.verdict == HOLDS  # the smallest eps's loss is reported, not judged
    assert "reported, not judged" in " ".join(finding.details)
    every_alpha_worse = {**small_eps_worse, (0.1, 0.1): ((5, 5), (10, 70)),
                         (0.1, 0.2): ((5, 5), (10, 90))}
    assert robust_peak_finding(_grid(every_alpha_worse)).verdict == OPPOSITE
    mixed = {**peak, (0.15, 0.2): ((5, 5), (10, 90))}
    assert robust_peak_finding(_grid(mixed)).verdict == UNCLEAR


def test_a_gain_significant_alone_is_not_after_the_bonferroni_adjustment():
    # 36 images right only for alpha 0.2, 20 only for alpha 0: the unadjusted 95% interval is above 0 ...
    from semprobe.stats.intervals import paired_difference_interval
    assert paired_difference_interval(600 - 20, 36, 20, N - 636)[1] > 0
    cells = {(0.05, 0.1): ((5, 5), (5, 5)),
             **{(0.1, alpha): ((5, 5), (36 if alpha == 0.2 else 20, 20)) for alpha in (0.1, 0.2, 0.4)}}
    finding = robust_peak_finding(_grid(cells))
    # ... but not the family-wise one over three alphas
    assert finding.numbers["eps 0.1, alpha 0.2"]["difference"][1] < 0
    assert finding.verdict == UNCLEAR
    single = {(0.1, 0.2): ((5, 5), (36, 20))}
    assert robust_peak_finding(_grid(single)).verdict == UNTESTABLE  # one eps: nothing above the smallest


def test_an_eps_without_alpha_0_or_with_other_images_is_left_out():
    grid = _grid({(0.1, 0.2): ((60, 10), (80, 10)), (0.15, 0.2): ((60, 10), (80, 10))})
    del grid[(0.1, 0.0)]
    grid[(0.15, 0.2)]["metadata"]["settings"]["n"] = 500  # not the images alpha 0 was scored on
    assert clean_gain_finding(grid).verdict == UNTESTABLE
    assert robust_peak_finding(grid).verdict == UNTESTABLE


def test_grid_curves_plot_each_eps_over_alpha_with_its_wilson_interval():
    grid = _grid({(0.1, 0.2): ((30, 10), (5, 25)), (0.1, 0.4): ((40, 0), (0, 60)), (0.05, 0.2): ((0, 0), (0, 0))})
    del grid[(0.05, 0.0)]["checkpoints"]["model_0.05"]["results"][1]  # alpha 0 at eps 0.05: no pgd20
    curves = grid_curves(grid, "pgd20", "PGD-20")
    assert [c.label for c in curves] == ["PGD-20, trained at eps 0.05", "PGD-20, trained at eps 0.1"]
    assert [p.x for p in curves[0].points] == [0.2]  # the model without pgd20 is left out
    at_01 = curves[1]
    assert [p.x for p in at_01.points] == [0.0, 0.2, 0.4]
    assert [p.accuracy for p in at_01.points] == [60.0, 58.0, 54.0]  # 600, 600 + 5 - 25, 600 - 60 of 1000
    low, high = wilson_interval(580, N)
    assert at_01.points[1].ci95 == pytest.approx((100 * low, 100 * high)) and at_01.points[1].n == N
    assert at_01.fixed == {"metric": "PGD-20", "train_eps": 0.1, "interval": "Wilson 95%"}  # clean shares its colour
    assert [p.accuracy for p in grid_curves(grid, "natural", "clean")[1].points] == [70.0, 72.0, 74.0]
