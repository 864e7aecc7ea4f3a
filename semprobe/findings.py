"""The papers' findings, tested on the JSON that ``semprobe`` commands write.

Each function takes the parsed output of one command and the labels of the checkpoints
to compare, and returns a :class:`Finding`: the paper's claim, a verdict reached by a
stated rule, and the numbers with their uncertainty. :func:`render_summary` writes them
as Markdown (the demo's ``summary.md``). Nothing here computes features or attacks: a
finding is only as good as the command outputs it reads.

The claims:

- SCARL Fig. 1 / Sec. 2: the features of an adversarially trained model correlate more
  with the class word vectors than a natural model's, on adversarial images
  (``cca.json``: held-out first canonical correlation, and the class-relabelling null);
- SCARL Fig. 2: its class-similarity matrix is closer to the word vectors' (RSA,
  ``simmatrix.json``);
- SCARL Table 1: SCARL is more robust than TRADES (``eval.json``);
- SPAT Fig. 4: PGD-LS attack success falls as alpha grows, and some alpha matches
  PGD-KL (``alpha_curve.json``).

A difference of two independent estimates gets a confidence interval by MOVER (Zou &
Donner 2008: "method of variance estimates recovery"), which combines the two
intervals; with Wilson intervals of two proportions it is Newcombe's (1998) method 10.
It ignores that both models saw the same images, so it is conservative for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from semprobe.intervals import mover_difference  # noqa: F401  (re-exported)

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


def _verdict_from_interval(low: float, high: float) -> str:
    """HOLDS when the whole interval of (claimed larger - claimed smaller) is above 0."""
    if low > 0:
        return HOLDS
    if high < 0:
        return OPPOSITE
    return UNCLEAR


def _all_agree(verdicts: list[str]) -> str:
    """HOLDS (or OPPOSITE) when every part agrees on it, UNCLEAR otherwise; UNTESTABLE with no parts."""
    if not verdicts:
        return UNTESTABLE
    return verdicts[0] if verdicts[0] in (HOLDS, OPPOSITE) and len(set(verdicts)) == 1 else UNCLEAR


def _fmt_ci(ci, digits: int = 3) -> str:
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _p(value: float | None) -> str:
    return "not computed" if value is None else f"{value:.3g}"


def _lookup(mapping: dict, label: str, what: str) -> dict:
    if label not in mapping:
        raise KeyError(f"{what} has no entry {label!r}; it has {', '.join(mapping)}")
    return mapping[label]


def _relabel_is_degenerate(held_out: dict) -> bool:
    """True when the word side spans the class labels (rank >= K-1): relabelling cannot change CCA."""
    diagnostics = held_out.get("diagnostics", {})
    distinct = diagnostics.get("n_distinct_y")
    return distinct is not None and diagnostics.get("rank_y", 0) >= distinct - 1


def cca_finding(cca: dict, robust: str, natural: str, column: str = "adversarial",
                semantic: dict | None = None) -> Finding:
    """SCARL Fig. 1: held-out CCA r of ``robust`` above ``natural`` on ``column`` features.

    ``semantic``, optional, is a second ``cca.json`` whose word side has fewer dimensions
    than K-1 (e.g. the top principal components of the word vectors), where the
    class-relabelling null can tell semantics from class separability.
    """
    sources = cca["sources"]
    held = {label: _lookup(sources, label, "cca.json")["columns"][column]["held_out"] for label in (robust, natural)}
    r_rob, r_nat = held[robust]["r"], held[natural]["r"]
    difference, low, high = mover_difference(r_rob, held[robust]["ci"], r_nat, held[natural]["ci"])
    verdict = _verdict_from_interval(low, high)
    pairs = held[robust]["diagnostics"].get("n")
    details = [
        f"held-out r on {column} images: {robust} {r_rob:.3f} {_fmt_ci(held[robust]['ci'])}, "
        f"{natural} {r_nat:.3f} {_fmt_ci(held[natural]['ci'])} (bootstrap 95% CIs, {pairs} held-out pairs)",
        f"difference {difference:+.3f}, 95% CI {_fmt_ci((low, high))}",
    ]
    numbers = {"r": {robust: r_rob, natural: r_nat}, "difference": [difference, low, high]}
    relabel = {label: (held[label].get("relabel") or {}).get("p_value") for label in (robust, natural)}
    numbers["relabel_p"] = relabel
    if _relabel_is_degenerate(held[robust]):
        details.append(
            f"class-relabelling p-value {_p(relabel[robust])} ({robust}) and {_p(relabel[natural])} ({natural}): "
            "the word vectors span the class labels (rank >= K-1), so every relabelling gives the same r and this "
            "CCA measures class separability, not semantics (the null has no power here)")
    else:
        details.append(f"class-relabelling p-value {_p(relabel[robust])} ({robust}), {_p(relabel[natural])} ({natural})")
    if semantic is not None:
        semantic_held = {label: _lookup(semantic["sources"], label, "the semantic cca.json")["columns"][column]["held_out"]
                         for label in (robust, natural)}
        rank = semantic_held[robust]["diagnostics"].get("rank_y")
        p_rob = (semantic_held[robust].get("relabel") or {}).get("p_value")
        p_nat = (semantic_held[natural].get("relabel") or {}).get("p_value")
        numbers["semantic"] = {"rank_y": rank, "r": {robust: semantic_held[robust]["r"], natural: semantic_held[natural]["r"]},
                               "relabel_p": {robust: p_rob, natural: p_nat}}
        details.append(
            f"against the word vectors' top {rank} principal components (fewer than K-1, so relabelling matters): "
            f"held-out r {robust} {semantic_held[robust]['r']:.3f}, {natural} {semantic_held[natural]['r']:.3f}; "
            f"class-relabelling p-value {_p(p_rob)} ({robust}), {_p(p_nat)} ({natural})")
    details.append(DIFFERENCE_RULE)
    claim = (f"on adversarial images, the robust model's features correlate more with their classes' word vectors "
             f"than the natural model's (SCARL Fig. 1); compared here: {robust} vs {natural}")
    return Finding("Robust features correlate more with word vectors (CCA)", claim, verdict, details, numbers)


def rsa_finding(simmatrix: dict, robust: str, natural: str, embedding: str = "glove") -> Finding:
    """SCARL Fig. 2: the RSA of ``robust``'s class-similarity matrix with the word vectors above ``natural``'s."""
    features = simmatrix["features"]
    reports = {label: _lookup(_lookup(features, label, "simmatrix.json")["embeddings"], embedding, label)
               for label in (robust, natural)}
    rsa = {label: reports[label]["rsa"] for label in reports}
    ci = {label: reports[label]["rsa_ci"] for label in reports}
    p = {label: (reports[label].get("relabel") or {}).get("p_value") for label in reports}
    difference, low, high = mover_difference(rsa[robust], ci[robust], rsa[natural], ci[natural])
    verdict = _verdict_from_interval(low, high)
    details = [f"RSA (Spearman, off-diagonal) with {embedding}: {label} {rsa[label]:.3f} {_fmt_ci(ci[label])}, "
               f"class-relabelling p = {_p(p[label])}" for label in (robust, natural)]
    details.append(f"difference {difference:+.3f}, 95% CI {_fmt_ci((low, high))}")
    for label in (robust, natural):
        adversarial = features.get(f"{label} (adversarial)")
        if adversarial and embedding in adversarial["embeddings"]:
            report = adversarial["embeddings"][embedding]
            details.append(f"on adversarial images, {label}: RSA {report['rsa']:.3f} {_fmt_ci(report['rsa_ci'])}, "
                           f"p = {_p((report.get('relabel') or {}).get('p_value'))}")
    details.append(DIFFERENCE_RULE)
    claim = (f"the robust model's class-similarity matrix is closer to the word vectors' than the natural model's "
             f"(SCARL Fig. 2); compared here: {robust} vs {natural}, {embedding}")
    return Finding("Robust class similarities are closer to the word vectors' (RSA)", claim, verdict, details,
                   {"rsa": rsa, "ci": ci, "relabel_p": p, "difference": [difference, low, high]})


def _eval_result(evaluation: dict, label: str, attack: str) -> dict | None:
    for result in _lookup(evaluation["checkpoints"], label, "eval.json")["results"]:
        if result["attack"]["name"] == attack:
            return result
    return None


def accuracy_finding(evaluations: list[dict], better: str, baseline: str,
                     attacks: tuple[str, ...] = ("pgd20", "aa")) -> Finding:
    """SCARL Table 1: robust accuracy of ``better`` (SCARL) above ``baseline`` (TRADES), per attack.

    ``evaluations`` are eval.json documents; each attack is read from the first that has it
    for both checkpoints (so PGD-20 can come from a larger sample than AutoAttack).
    """
    details, numbers, verdicts = [], {}, []
    for attack in attacks:
        found = None
        for evaluation in evaluations:
            pair = [_eval_result(evaluation, label, attack) for label in (better, baseline)]
            if all(pair):
                found = pair
                break
        if found is None:
            details.append(f"{attack}: not evaluated")
            continue
        ours, theirs = found
        difference, low, high = mover_difference(ours["accuracy"], ours["ci95"], theirs["accuracy"], theirs["ci95"])
        verdicts.append(_verdict_from_interval(low, high))
        numbers[attack] = {"n": ours["n"], better: ours["accuracy"], baseline: theirs["accuracy"],
                           "difference": [difference, low, high]}
        details.append(f"{attack} on {ours['n']} test images: {better} {ours['accuracy']:.1f}% {_fmt_ci(ours['ci95'], 1)}, "
                       f"{baseline} {theirs['accuracy']:.1f}% {_fmt_ci(theirs['ci95'], 1)}; difference "
                       f"{difference:+.1f} points, 95% CI {_fmt_ci((low, high), 1)} (Wilson intervals, Newcombe difference)")
    verdict = _all_agree(verdicts)
    details.append("verdict rule: holds when every attack's difference CI is above 0, does not hold when every one "
                   "is below, inconclusive otherwise")
    claim = f"{better} is more robust than {baseline} (SCARL Table 1), under {', '.join(attacks)}"
    return Finding("SCARL vs TRADES robust accuracy", claim, verdict, details, numbers)


def _spearman(x, y) -> float:
    """Spearman's rho: Pearson's correlation of average ranks; 0 when either side is constant."""
    import numpy as np
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((rx ** 2).sum() * (ry ** 2).sum()))
    return 0.0 if denominator == 0 else float((rx * ry).sum() / denominator)


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


def _success_ci(point: dict) -> tuple[float, float]:
    """Success = 100 - robust accuracy, so its interval mirrors the robust accuracy's."""
    low, high = point["robust_accuracy_ci95"]
    return 100 - high, 100 - low


def alpha_finding(alpha_curve: dict, labels: list[str], matched: str) -> Finding:
    """SPAT Fig. 4: PGD-LS success falls as alpha grows on every model in ``labels``;
    and the alpha at which PGD-LS matches PGD-KL on ``matched`` (the adversarially trained model)."""
    curves = {curve["label"]: curve for curve in alpha_curve["curves"]}
    details, numbers, verdicts = [], {}, []
    for label in labels:
        points = sorted(_lookup(curves, label, "alpha_curve.json")["points"], key=lambda p: p["alpha"])
        first, last = points[0], points[-1]
        rho, p_falling, p_rising = rank_trend([p["alpha"] for p in points], [p["success_all"] for p in points])
        difference, low, high = mover_difference(first["success_all"], _success_ci(first),
                                                 last["success_all"], _success_ci(last))
        verdict = HOLDS if p_falling < 0.05 else OPPOSITE if p_rising < 0.05 else UNCLEAR
        verdicts.append(verdict)
        numbers[label] = {"spearman": rho, "p_falling": p_falling, "success": {p["alpha"]: p["success_all"] for p in points},
                          "drop": [difference, low, high]}
        details.append(f"{label}: success {first['success_all']:.1f}% at alpha {first['alpha']:g} -> "
                       f"{last['success_all']:.1f}% at alpha {last['alpha']:g} over {len(points)} alphas, "
                       f"{first['n']} images; Spearman rho(alpha, success) = {rho:.2f}, one-sided permutation "
                       f"p = {p_falling:.3g}; drop {difference:+.1f} points, 95% CI {_fmt_ci((low, high), 1)} "
                       "(unpaired, so conservative: every alpha attacks the same images from the same start)")
    match = _lookup(curves, matched, "alpha_curve.json").get("alpha_matching_pgd_kl")
    kl = curves[matched]["pgd_kl"]["success_all"]
    if match and match.get("alpha") is not None:
        bracket = match.get("bracket")
        numbers["alpha_matching_pgd_kl"] = match["alpha"]
        details.append(f"on {matched}, PGD-KL succeeds on {kl:.1f}% of the images; PGD-LS matches it at alpha "
                       f"{match['alpha']:.3g} (linear interpolation between alphas {bracket[0]:g} and {bracket[1]:g})")
    else:
        numbers["alpha_matching_pgd_kl"] = None
        details.append(f"on {matched}, PGD-KL succeeds on {kl:.1f}% of the images; no alpha in the range tried "
                       "gives PGD-LS that success")
    details.append("verdict rule: holds on a model when success falls with alpha by a rank-trend test (permutation "
                   "p < 0.05); the finding holds when it holds on every model")
    verdict = _all_agree(verdicts)
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
