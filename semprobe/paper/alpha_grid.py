"""SPAT Fig. 5, tested: Madry AT (alpha 0) against SPAT (alpha > 0) over a grid of training eps and alpha.

SPAT section 5 trains spat_madry at several eps and alphas and reads two claims off
Fig. 5 (PGD-20 at each model's training eps):

- every model trained with alpha > 0 has a higher clean accuracy than Madry AT (alpha 0)
  at the same eps (:func:`clean_gain_finding`);
- robust accuracy peaks at an alpha > 0 on the larger eps-balls (the paper: alpha 0 is best
  at 4/255, 0.2 at 8/255, 0.4 at 16/255), so some alpha > 0 beats Madry AT there
  (:func:`robust_peak_finding`).

The input is one eval.json document per grid model, keyed by ``(eps, alpha)``; models of one
eps were scored on the same test images, so each alpha is compared with alpha 0 paired
(Newcombe's paired interval, McNemar's exact test: :func:`semprobe.stats.intervals.paired_comparison`).
"""

from __future__ import annotations

from statistics import NormalDist

from semprobe.paper.findings import (HOLDS, OPPOSITE, UNCLEAR, UNTESTABLE, Finding, all_agree, format_ci,
                                     same_images, single_result, verdict_from_interval)
from semprobe.stats.intervals import paired_comparison, paired_difference_interval

Grid = dict[tuple[float, float], dict]  # (training eps, alpha) -> that model's eval.json document


def _flags(document: dict, attack: str) -> list[bool] | None:
    """The per-image outcomes of the document's (single) checkpoint under ``attack``; None when absent."""
    result = single_result(document, attack)
    return result.flags() if result is not None and result.per_image else None


def _versus_madry(grid: Grid, attack: str) -> dict[float, list[tuple[float, list[bool], list[bool]]]]:
    """Per training eps, ``(alpha, outcomes at alpha, outcomes at alpha 0)`` for every alpha > 0 scored on the
    same images as that eps's alpha-0 model under ``attack``; an eps without an alpha-0 model is left out."""
    pairs: dict[float, list] = {}
    for eps in sorted({eps for eps, _ in grid}):
        madry = grid.get((eps, 0.0))
        madry_flags = _flags(madry, attack) if madry is not None else None
        if madry_flags is None:
            continue
        for alpha in sorted(alpha for e, alpha in grid if e == eps and alpha > 0):
            spat = grid[(eps, alpha)]
            flags = _flags(spat, attack)
            if flags is not None and len(flags) == len(madry_flags) and same_images(spat, madry):
                pairs.setdefault(eps, []).append((alpha, flags, madry_flags))
    return pairs


def grid_curves(grid: Grid, attack: str, metric: str) -> list:
    """SPAT Fig. 5 on test evaluations: one :class:`~semprobe.robustness.curves.Curve` per training eps of
    accuracy (%) under ``attack`` against alpha, each point with its eval.json Wilson 95% interval; ``metric``
    names the accuracy in the legend (and in ``fixed``, so that clean and robust curves of one eps share a
    colour in :func:`semprobe.plots.curves.curves_figure`). Models without ``attack`` are left out."""
    from semprobe.robustness.curves import Curve, CurvePoint

    by_eps: dict[float, list] = {}
    for (eps, alpha), document in sorted(grid.items()):
        result = single_result(document, attack)
        if result is not None:
            by_eps.setdefault(eps, []).append(CurvePoint.of_result(alpha, result))
    return [Curve(f"{metric}, trained at eps {eps:g}", "alpha",
                  {"metric": metric, "train_eps": eps, "interval": "Wilson 95%"}, points)
            for eps, points in by_eps.items()]


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def clean_gain_finding(grid: Grid) -> Finding:
    """Every alpha > 0 has a higher clean accuracy than alpha 0 at the same training eps (SPAT Fig. 5).

    Holds when every paired difference (alpha - alpha 0, clean accuracy) has its 95% CI above 0,
    does not hold when every one is below, inconclusive otherwise ("every" is an intersection of
    tests, so no correction for their number is needed)."""
    details, numbers, verdicts = [], {}, []
    for eps, pairs in _versus_madry(grid, "natural").items():
        parts = []
        for alpha, flags, madry in pairs:
            c = paired_comparison(flags, madry)
            verdicts.append(verdict_from_interval(*c.ci95))
            numbers[f"eps {eps:g}, alpha {alpha:g}"] = {"difference": [100 * c.difference, 100 * c.ci95[0],
                                                                       100 * c.ci95[1]], "mcnemar_p": c.mcnemar_p}
            parts.append(f"alpha {alpha:g}: {_points(c.difference)} {format_ci([100 * v for v in c.ci95], 1)} "
                         f"(p = {c.mcnemar_p:.3g})")
        details.append(f"training eps {eps:g}, clean accuracy minus alpha 0's on {len(pairs[0][1])} test images, "
                       "points: " + "; ".join(parts))
    if not verdicts:
        details.append("no eps has both an alpha-0 model and an alpha > 0 model evaluated on the same images")
    details.append("verdict rule: holds when every alpha > 0 is above alpha 0 (paired 95% CI above 0), does not "
                   "hold when every one is below, inconclusive otherwise")
    claim = ("every model trained with SPAT (alpha > 0) has a higher clean accuracy than Madry AT (alpha 0) at the "
             "same eps")
    return Finding("SPAT Fig. 5: alpha > 0 raises clean accuracy", claim, all_agree(verdicts), details, numbers)


def _bonferroni_z(comparisons: int) -> float:
    """The two-sided normal quantile for a family-wise 95% level over ``comparisons`` intervals."""
    return NormalDist().inv_cdf(1 - 0.05 / (2 * comparisons))


def robust_peak_finding(grid: Grid, attack: str = "pgd20") -> Finding:
    """On every eps but the smallest, some alpha > 0 is more robust than alpha 0 (SPAT Fig. 5).

    At one eps the m alphas > 0 are each compared with alpha 0 under ``attack``, paired, with
    Bonferroni-adjusted intervals (family-wise 95% over the m): that eps says "holds" when some
    interval is above 0, "does not hold" when every one is below, inconclusive otherwise. The
    finding holds (or does not) when every eps above the smallest agrees. The smallest eps is
    reported, not judged: the paper finds alpha 0 best there."""
    details, numbers, verdicts = [], {}, []
    by_eps = _versus_madry(grid, attack)
    smallest = min((eps for eps, _ in grid), default=None)
    scored_at = sorted({document.get("metadata", {}).get("settings", {}).get("eps") for document in grid.values()},
                       key=str)
    details.append(f"{attack} scored at eps {', '.join(str(eps) for eps in scored_at)} (the paper scores every "
                   "grid model at 8/255, whatever its training eps)")
    for eps, pairs in by_eps.items():
        z = _bonferroni_z(len(pairs))
        parts, lows, highs = [], [], []
        for alpha, flags, madry in pairs:
            c = paired_comparison(flags, madry)
            _, low, high = paired_difference_interval(c.both, c.only_first, c.only_second, c.neither, z=z)
            lows.append(low)
            highs.append(high)
            numbers[f"eps {eps:g}, alpha {alpha:g}"] = {"difference": [100 * c.difference, 100 * low, 100 * high],
                                                        "mcnemar_p": c.mcnemar_p}
            parts.append(f"alpha {alpha:g}: {_points(c.difference)} {format_ci([100 * low, 100 * high], 1)}")
        verdict = HOLDS if max(lows) > 0 else OPPOSITE if max(highs) < 0 else UNCLEAR
        judged = eps != smallest
        if judged:
            verdicts.append(verdict)
        details.append(f"training eps {eps:g}, {attack} accuracy minus alpha 0's on {len(pairs[0][1])} test images, "
                       f"points (Bonferroni 95% CI over {len(pairs)} alphas): " + "; ".join(parts)
                       + (f": {verdict}" if judged else " (the smallest eps: reported, not judged)"))
    judged_eps = [eps for eps in by_eps if eps != smallest]
    if not judged_eps:
        details.append("needs alpha 0 and alpha > 0 models at two or more eps")
    details.append("verdict rule: at each eps above the smallest, holds when some alpha > 0 is above alpha 0 "
                   "(Bonferroni-adjusted paired interval above 0), does not hold when every alpha > 0 is below; "
                   "the finding holds (does not hold) when every such eps does, inconclusive otherwise")
    claim = ("robust accuracy peaks at an alpha > 0 on the larger eps-balls (alpha 0.2 at 8/255, 0.4 at 16/255 on "
             "CIFAR-10), so some alpha > 0 beats Madry AT there")
    verdict = all_agree(verdicts) if judged_eps else UNTESTABLE
    return Finding("SPAT Fig. 5: some alpha > 0 is more robust at the larger eps", claim, verdict, details, numbers)
