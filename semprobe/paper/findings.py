"""The papers' findings, tested on the JSON that ``semprobe`` commands write.

Each function takes the parsed output of one command and the labels of the checkpoints
to compare, and returns a :class:`Finding`: the paper's claim, a verdict reached by a
stated rule, and the numbers with their uncertainty. :func:`render_summary` writes them
as Markdown (the demo's ``summary.md``). Nothing here computes features or attacks: a
finding is only as good as the command outputs it reads.

The claims:

- SCARL Fig. 1, split in two (the paper's CCA cannot tell them apart when the word
  vectors span the labels):
  C1 (a) robust features are more class-separable (:func:`separability_finding`: the
  held-out CCA r against word vectors of rank >= K-1, ``cca.json``);
  C1 (b) robust features carry more of the words' semantics (:func:`semantics_finding`:
  the CCA against fewer than K-1 word dimensions and the RSA, each as an excess over
  its class-relabelling null, the only null that separability cannot pass);
- SCARL Fig. 2: its class-similarity matrix is closer to the word vectors' (RSA,
  ``simmatrix.json``);
- SCARL Table 1: SCARL is more robust than TRADES (``eval.json``), compared paired on the
  same images (McNemar's exact test and Newcombe's paired interval);
- SPAT Fig. 4: PGD-LS attack success falls as alpha grows, and some alpha matches
  PGD-KL (``alpha_curve.json``, with the bootstrap interval of that alpha);
- SPAT Fig. 5 (a grid of models, one eval.json each) is in :mod:`semprobe.paper.alpha_grid`.

A difference of two estimates that come from separate resamplings (CCA r, RSA) gets a
confidence interval by MOVER (Zou & Donner 2008: "method of variance estimates
recovery"), which combines the two intervals; with Wilson intervals of two proportions
it is Newcombe's (1998) method 10. It ignores any correlation of the two, so it is
conservative for models scored on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semprobe.stats.intervals import mover_difference, paired_comparison
from semprobe.stats.records import Statistic, cca_statistic, lookup, rsa_statistic

HOLDS, OPPOSITE, UNCLEAR, UNTESTABLE = "holds", "does not hold", "inconclusive", "cannot be tested here"
DIFFERENCE_RULE = ("verdict rule: holds when the CI of the difference is above 0, does not hold when below, "
                   "inconclusive otherwise")


@dataclass
class Finding:
    """One claim of a paper, what the numbers here say about it, and why."""

    title: str
    claim: str
    verdict: str
    details: list[str] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        lines = [f"### {self.title}: **{self.verdict}**", "", f"*The paper:* {self.claim}", ""]
        lines += [f"- {line}" for line in self.details]
        return "\n".join(lines) + "\n"


def verdict_from_interval(low: float, high: float) -> str:
    """HOLDS when the whole interval of (claimed larger - claimed smaller) is above 0."""
    if low > 0:
        return HOLDS
    if high < 0:
        return OPPOSITE
    return UNCLEAR


def all_agree(verdicts: list[str]) -> str:
    """HOLDS (or OPPOSITE) when every part agrees on it, UNCLEAR otherwise; UNTESTABLE with no parts."""
    if not verdicts:
        return UNTESTABLE
    return verdicts[0] if verdicts[0] in (HOLDS, OPPOSITE) and len(set(verdicts)) == 1 else UNCLEAR


def _fmt_bound(value: float, digits: int) -> str:
    """``value`` to ``digits`` decimals, or to two significant digits where that would round a non-zero
    bound to zero (a verdict turns on the sign of a CI's bound, so the reader must see it)."""
    text = f"{value:.{digits}f}"
    if value != 0 and float(text) == 0:
        text = f"{value:.2g}"
    return text


def format_ci(ci, digits: int = 3) -> str:
    """``[low, high]`` of an interval, each bound to ``digits`` decimals (see :func:`_fmt_bound`)."""
    return f"[{_fmt_bound(ci[0], digits)}, {_fmt_bound(ci[1], digits)}]"


def _p(value: float | None) -> str:
    return "not computed" if value is None else f"{value:.3g}"


def separability_finding(cca: dict, robust: str, natural: str, column: str = "adversarial") -> Finding:
    """SCARL Fig. 1, claim C1 (a): on ``column`` images, ``robust``'s features are more class-separable.

    The held-out first canonical correlation against class word vectors that span the
    labels (rank >= K-1, as 50-d GloVe with 10 classes) equals the one against one-hot
    labels: it measures how linearly separable the classes are. Verdict by the MOVER
    interval of the difference of the two bootstrap intervals. ``cca`` is a cca.json
    document, read as :class:`~semprobe.stats.records.Statistic` records.
    """
    held = {label: cca_statistic(cca, label, column) for label in (robust, natural)}
    r_rob, r_nat = held[robust].value, held[natural].value
    difference, low, high = mover_difference(r_rob, held[robust].ci, r_nat, held[natural].ci)
    relabel = {label: held[label].relabel_p for label in (robust, natural)}
    details = [
        f"held-out r on {column} images: {robust} {r_rob:.3f} {format_ci(held[robust].ci)}, "
        f"{natural} {r_nat:.3f} {format_ci(held[natural].ci)} (CCA fitted on {held[robust].n_fit} pairs, "
        f"correlated on {held[robust].n_test} held-out pairs; bootstrap 95% CIs)",
        f"difference {difference:+.3f}, 95% CI {format_ci((low, high))} (MOVER from the two intervals)",
    ]
    if held[robust].relabelling_is_degenerate:
        details.append(
            f"the word vectors span the class labels (rank >= K-1), so this CCA equals CCA against one-hot labels: "
            f"it measures class separability, not semantics (class-relabelling p = {_p(relabel[robust])} and "
            f"{_p(relabel[natural])}: every relabelling gives the same r)")
    else:
        details.append(f"the word side has rank below K-1 here, so r mixes separability with word geometry; "
                       f"class-relabelling p = {_p(relabel[robust])} ({robust}), {_p(relabel[natural])} ({natural})")
    details.append(DIFFERENCE_RULE)
    claim = (f"on {column} images, the robust model's features are more class-separable, measured by the held-out "
             f"CCA with word vectors that span the labels (SCARL Fig. 1, read as separability); compared here: "
             f"{robust} vs {natural}")
    numbers = {"r": {robust: r_rob, natural: r_nat}, "difference": [difference, low, high], "relabel_p": relabel,
               "n_fit": held[robust].n_fit, "n_test": held[robust].n_test}
    return Finding("C1a: robust features are more class-separable (CCA)", claim, verdict_from_interval(low, high),
                   details, numbers)


def semantics_finding(semantic_cca: dict, simmatrix: dict, robust: str, natural: str,
                      column: str = "adversarial", embedding: str = "glove") -> Finding:
    """SCARL Fig. 1-2, claim C1 (b): ``robust``'s features carry more of the words' semantics.

    Two tests with power against separability, each as an excess over its class-relabelling
    null (statistic minus the null's mean, :meth:`~semprobe.stats.records.Statistic.excess`;
    the relabelling keeps the word vectors and the features and only changes which word goes
    with which class, so separability alone cannot pass it):

    - the held-out CCA r against fewer than K-1 word dimensions (``semantic_cca``: the
      word vectors' top principal components);
    - the RSA of the class-similarity matrix with the word vectors' cosines (``simmatrix``).

    Verdict rule: holds when on both tests the robust-minus-natural difference of excess
    has a 95% CI above 0 and the robust model passes the relabelling null (p < 0.05) on
    both; does not hold when on some test the difference's CI is below 0 and on none
    above; inconclusive otherwise.
    """
    cca_results = {label: cca_statistic(semantic_cca, label, column, what="the semantic cca.json")
                   for label in (robust, natural)}
    rank = cca_results[robust].diagnostics.get("rank_y")
    key = (lambda label: f"{label} (adversarial)") if column == "adversarial" else (lambda label: label)
    rsa_results = {label: rsa_statistic(simmatrix, key(label), embedding) for label in (robust, natural)}
    details, numbers, differences, robust_passes = [], {"rank_y": rank}, [], []
    claim = (f"robust features carry more of the class words' semantics than natural ones, beyond class "
             f"separability (SCARL Fig. 1-2, tested with the class-relabelling null); compared here: {robust} vs "
             f"{natural}, {embedding}")
    title = "C1b: robust features carry more word semantics (relabelling-null tests)"
    if not all(result.defined for result in rsa_results.values()):
        return Finding(title, claim, UNTESTABLE, [f"the RSA with {embedding} is undefined here "
                                                  "(one side cannot be ranked), so the test has no second part"], {})
    for name, results in ((f"CCA against the top {rank} word dimensions", cca_results),
                          (f"RSA with {embedding}", rsa_results)):
        excess = {label: results[label].excess() for label in (robust, natural)}
        (e_rob, ci_rob, p_rob), (e_nat, ci_nat, p_nat) = excess[robust], excess[natural]
        difference, low, high = mover_difference(e_rob, ci_rob, e_nat, ci_nat)
        differences.append((low, high))
        robust_passes.append(p_rob is not None and p_rob < 0.05)
        numbers[name] = {"excess": {robust: e_rob, natural: e_nat}, "relabel_p": {robust: p_rob, natural: p_nat},
                         "difference": [difference, low, high]}
        details.append(f"{name} on {column} images, excess over the relabelling null's mean: {robust} {e_rob:+.3f} "
                       f"{format_ci(ci_rob)} (p = {_p(p_rob)}), {natural} {e_nat:+.3f} {format_ci(ci_nat)} "
                       f"(p = {_p(p_nat)}); difference {difference:+.3f}, 95% CI {format_ci((low, high))}")
    above = [low > 0 for low, _ in differences]
    below = [high < 0 for _, high in differences]
    if all(above) and all(robust_passes):
        verdict = HOLDS
    elif any(below) and not any(above):
        verdict = OPPOSITE
    else:
        verdict = UNCLEAR
    details.append("verdict rule: holds when on both tests the difference's 95% CI is above 0 and the robust model "
                   "passes the relabelling null (p < 0.05) on both; does not hold when some difference's CI is below "
                   "0 and none above; inconclusive otherwise")
    return Finding(title, claim, verdict, details, numbers)


def rsa_finding(simmatrix: dict, robust: str, natural: str, embedding: str = "glove") -> Finding:
    """SCARL Fig. 2: the RSA of ``robust``'s class-similarity matrix with the word vectors above ``natural``'s."""
    reports = {label: rsa_statistic(simmatrix, label, embedding) for label in (robust, natural)}
    rsa = {label: reports[label].value for label in reports}
    ci = {label: list(reports[label].ci) if reports[label].ci else reports[label].ci for label in reports}
    p = {label: reports[label].relabel_p for label in reports}
    claim = (f"the robust model's class-similarity matrix is closer to the word vectors' than the natural model's "
             f"(SCARL Fig. 2); compared here: {robust} vs {natural}, {embedding}")
    title = "Robust class similarities are closer to the word vectors' (RSA)"
    undefined = [label for label in reports if not reports[label].defined]
    if undefined:
        notes = [reports[label].note or "no RSA" for label in undefined]
        return Finding(title, claim, UNTESTABLE, [f"RSA undefined for {', '.join(undefined)}: {'; '.join(notes)}"],
                       {"rsa": rsa})
    difference, low, high = mover_difference(rsa[robust], ci[robust], rsa[natural], ci[natural])
    verdict = verdict_from_interval(low, high)
    details = [f"RSA (Spearman, off-diagonal) with {embedding}: {label} {rsa[label]:.3f} {format_ci(ci[label])}, "
               f"class-relabelling p = {_p(p[label])}" for label in (robust, natural)]
    details.append(f"difference {difference:+.3f}, 95% CI {format_ci((low, high))}")
    for label in (robust, natural):
        adversarial = simmatrix["features"].get(f"{label} (adversarial)")
        if adversarial and embedding in adversarial["embeddings"]:
            report = Statistic.from_rsa(adversarial["embeddings"][embedding])
            details.append(f"on adversarial images, {label}: RSA {report.value:.3f} {format_ci(report.ci)}, "
                           f"p = {_p(report.relabel_p)}")
    details.append(DIFFERENCE_RULE)
    return Finding(title, claim, verdict, details,
                   {"rsa": rsa, "ci": ci, "relabel_p": p, "difference": [difference, low, high]})


def eval_result(evaluation: dict, label: str, attack: str):
    """``label``'s :class:`~semprobe.robustness.accuracy.AttackResult` under ``attack`` in an eval.json
    document, or None."""
    from semprobe.robustness.accuracy import AttackResult

    for result in evaluation.get("checkpoints", {}).get(label, {}).get("results", []):
        if result["attack"]["name"] == attack:
            return AttackResult.from_dict(result)
    return None


def single_result(evaluation: dict | None, attack: str):
    """The :class:`~semprobe.robustness.accuracy.AttackResult` under ``attack`` of an eval.json document's first
    (for a one-checkpoint eval, only) checkpoint, or None (no document, no checkpoint, or no such attack)."""
    label = next(iter((evaluation or {}).get("checkpoints", {})), None)
    return eval_result(evaluation, label, attack) if label is not None else None


def same_images(first: dict, second: dict) -> bool:
    """True when two eval.json documents scored the same images (dataset, split, sample, n and seed agree)."""
    keys = ("dataset", "split", "n", "seed", "sample")
    a, b = (document.get("metadata", {}).get("settings", {}) for document in (first, second))
    return all(key in a and a.get(key) == b.get(key) for key in keys)


def _result_pair(evaluations: list[dict], better: str, baseline: str, attack: str):
    """The two models' results under ``attack`` on the same images: from one document that has both,
    else from two documents that scored the same images; None when no such pair exists."""
    for evaluation in evaluations:
        pair = [eval_result(evaluation, label, attack) for label in (better, baseline)]
        if all(pair):
            return pair
    for first in evaluations:
        ours = eval_result(first, better, attack)
        for second in evaluations:
            theirs = eval_result(second, baseline, attack)
            if ours and theirs and same_images(first, second):
                return [ours, theirs]
    return None


def accuracy_finding(evaluations: list[dict], better: str, baseline: str,
                     attacks: tuple[str, ...] = ("pgd20", "aa")) -> Finding:
    """SCARL Table 1: robust accuracy of ``better`` (SCARL) above ``baseline`` (TRADES), per attack.

    ``evaluations`` are eval.json documents; each attack is read for both checkpoints on
    the same images (one document holding both, or two documents of the same sample), the
    first such pair found (so PGD-20 can come from a larger sample than AutoAttack). Both
    models saw the same images, so the comparison is paired: the difference gets
    Newcombe's paired interval and McNemar's exact test (:func:`semprobe.stats.intervals.paired_comparison`)
    from the per-image outcomes; a document without them falls back to the unpaired
    MOVER interval, and says so.
    """
    details, numbers, verdicts = [], {}, []
    for attack in attacks:
        found = _result_pair(evaluations, better, baseline, attack)
        if found is None:
            details.append(f"{attack}: not evaluated on the same images for both")
            continue
        ours, theirs = found
        paired = bool(ours.per_image) and len(ours.per_image) == len(theirs.per_image)
        if paired:
            comparison = paired_comparison(ours.flags(), theirs.flags())
            difference, low, high = (100 * comparison.difference, 100 * comparison.ci95[0], 100 * comparison.ci95[1])
            how = (f"paired: {comparison.only_first} images robust for {better} only, {comparison.only_second} for "
                   f"{baseline} only; Newcombe's paired interval, McNemar exact p = {comparison.mcnemar_p:.3g}")
            extra = {"mcnemar_p": comparison.mcnemar_p, "only_better": comparison.only_first,
                     "only_baseline": comparison.only_second, "paired": True}
        else:
            difference, low, high = mover_difference(ours.accuracy, ours.ci95, theirs.accuracy, theirs.ci95)
            how = "unpaired Newcombe interval: the outputs keep no per-image outcomes"
            extra = {"paired": False}
        verdicts.append(verdict_from_interval(low, high))
        numbers[attack] = {"n": ours.n, better: ours.accuracy, baseline: theirs.accuracy,
                           "difference": [difference, low, high], **extra}
        details.append(f"{attack} on {ours.n} test images: {better} {ours.accuracy:.1f}% {format_ci(ours.ci95, 1)}, "
                       f"{baseline} {theirs.accuracy:.1f}% {format_ci(theirs.ci95, 1)}; difference "
                       f"{difference:+.1f} points, 95% CI {format_ci((low, high), 1)} ({how})")
    verdict = all_agree(verdicts)
    details.append("verdict rule: holds when every attack's difference CI is above 0, does not hold when every one "
                   "is below, inconclusive otherwise")
    claim = f"{better} is more robust than {baseline} (SCARL Table 1), under {', '.join(attacks)}"
    return Finding(f"{better} vs {baseline} robust accuracy (SCARL Table 1)", claim, verdict, details, numbers)


def _spearman(x, y) -> float:
    """Spearman's rho (:func:`semprobe.stats.similarity.spearman_rows`); 0 when either side is constant."""
    import numpy as np

    from semprobe.stats.similarity import spearman_rows

    rho = spearman_rows(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return 0.0 if np.isnan(rho) else float(rho)


def rank_trend(x, y, n_perm: int = 20000, seed: int = 0) -> tuple[float, float, float]:
    """``(rho, p_falling, p_rising)``: Spearman's rho of y against x and its one-sided permutation p-values.

    p_falling is the share of orderings of y (all m! when m <= 8, else ``n_perm`` random
    ones plus the observed) whose rho is <= the observed one; p_rising the share >= it.
    """
    import itertools

    import numpy as np

    y = list(y)
    observed = _spearman(x, y)
    if len(y) <= 8:
        nulls = [_spearman(x, order) for order in itertools.permutations(y)]
    else:
        rng = np.random.default_rng(seed)
        nulls = [observed] + [_spearman(x, rng.permutation(y)) for _ in range(n_perm)]
    nulls = np.asarray(nulls)
    tolerance = 1e-12
    return (observed, float(np.mean(nulls <= observed + tolerance)), float(np.mean(nulls >= observed - tolerance)))


def alpha_finding(alpha_curve: dict, labels: list[str], matched: str) -> Finding:
    """SPAT Fig. 4: PGD-LS success falls as alpha grows on every model in ``labels``;
    and the alpha at which PGD-LS matches PGD-KL on ``matched`` (the adversarially trained model).

    ``alpha_curve`` is an alpha_curve.json document; each curve is read back as an
    :class:`~semprobe.robustness.alpha_curves.AlphaCurve`."""
    from semprobe.robustness.alpha_curves import AlphaCurve

    records = {curve["label"]: curve for curve in alpha_curve["curves"]}
    details, numbers, verdicts = [], {}, []
    for label in labels:
        curve = AlphaCurve.from_dict(lookup(records, label, "alpha_curve.json"))
        points = sorted(zip(curve.alphas, curve.ls), key=lambda point: point[0])
        (first_alpha, first), (last_alpha, last) = points[0], points[-1]
        rho, p_falling, p_rising = rank_trend([a for a, _ in points], [rate.success_all for _, rate in points])
        difference, low, high = mover_difference(first.success_all, first.ci95("success_all"),
                                                 last.success_all, last.ci95("success_all"))
        verdict = HOLDS if p_falling < 0.05 else OPPOSITE if p_rising < 0.05 else UNCLEAR
        verdicts.append(verdict)
        numbers[label] = {"spearman": rho, "p_falling": p_falling, "success": {a: rate.success_all for a, rate in points},
                          "drop": [difference, low, high]}
        details.append(f"{label}: success {first.success_all:.1f}% at alpha {first_alpha:g} -> "
                       f"{last.success_all:.1f}% at alpha {last_alpha:g} over {len(points)} alphas, "
                       f"{first.n} images; Spearman rho(alpha, success) = {rho:.2f}, one-sided permutation "
                       f"p = {p_falling:.3g}; drop {difference:+.1f} points, 95% CI {format_ci((low, high), 1)} "
                       "(unpaired, so conservative: every alpha attacks the same images from the same start)")
    # the matching alpha as the command computed and recorded it (with its bootstrap interval)
    match = lookup(records, matched, "alpha_curve.json").get("alpha_matching_pgd_kl")
    kl = AlphaCurve.from_dict(records[matched]).kl.success_all
    if match and match.get("alpha") is not None:
        bracket = match.get("bracket")
        numbers["alpha_matching_pgd_kl"] = match["alpha"]
        numbers["alpha_matching_pgd_kl_ci95"] = match.get("ci95")
        interval = ""
        if match.get("ci95"):
            interval = (f", bootstrap 95% CI over images [{match['ci95'][0]:.3g}, {match['ci95'][1]:.3g}]"
                        f" ({match.get('n_boot')} resamples, {100 * (1 - match.get('undefined_share', 0)):.0f}% of "
                        "which match PGD-KL inside the alphas tried)")
        details.append(f"on {matched}, PGD-KL succeeds on {kl:.1f}% of the images; PGD-LS matches it at alpha "
                       f"{match['alpha']:.3g} (linear interpolation between alphas {bracket[0]:g} and {bracket[1]:g})"
                       + interval)
    else:
        numbers["alpha_matching_pgd_kl"] = None
        details.append(f"on {matched}, PGD-KL succeeds on {kl:.1f}% of the images; no alpha in the range tried "
                       "gives PGD-LS that success")
    details.append("success is measured over all evaluated images (1 - robust accuracy), as in the plot")
    details.append("verdict rule: holds on a model when success falls with alpha by a rank-trend test (permutation "
                   "p < 0.05); the finding holds when it holds on every model")
    verdict = all_agree(verdicts)
    claim = (f"PGD-LS attack success falls as the smoothing alpha grows, on natural and adversarially trained models, "
             f"and some alpha matches PGD-KL (SPAT Fig. 4); models here: {', '.join(labels)}")
    return Finding("PGD-LS success falls with alpha", claim, verdict, details, numbers)


def render_summary(title: str, preamble: list[str], findings: list[Finding], appendix: list[str] = ()) -> str:
    """Markdown: a title, the set-up lines, a verdict table, each finding, then ``appendix`` blocks."""
    lines = [f"# {title}", ""] + list(preamble) + ["", "| finding | verdict |", "|---|---|"]
    lines += [f"| {finding.title} | {finding.verdict} |" for finding in findings]
    text = "\n".join(lines) + "\n\n" + "\n".join(finding.to_markdown() for finding in findings)
    if appendix:
        text += "\n" + "\n\n".join(appendix).rstrip() + "\n"
    return text
