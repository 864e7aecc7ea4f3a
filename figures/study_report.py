"""``figures/study/REPORT.md``: the study's tables and verdicts, from what its analyses wrote.

``python figures/study_report.py`` reads ``figures/study/results/*/`` (the JSON of the
``semprobe`` commands that ``figures/study.py analyse`` ran), ``models/*.json`` and
``logs/*/metrics.jsonl``, and writes one Markdown page. Every section says which command
made its numbers; a section whose analyses have not run yet says so instead, so the
report can be written at any stage of the study.

Sections: the training runs (schedules, chosen epoch, whether validation PGD accuracy is
flat over the last epochs, the targets); SCARL Table 1 / SPAT Tables 1-2 (every main
model on the full test split); SCARL vs TRADES and each method with and without SPAT,
compared paired on the same images (McNemar's exact test, Newcombe's paired interval), with
each AutoAttack run against PGD-20 on its images and AutoAttack's own reliability flags;
SCARL Table 3, each adaptive attack paired with PGD-CE; the ablations of Tables 4, 5, 7
against their own reference, Table 7's base losses with and without the semantic terms and
AWP against the same method without it, each row with the verdict on its paper's claim
(:func:`paired_claim`); the SPAT Fig. 5 grid, each alpha paired with alpha 0, and its two
claims (:mod:`semprobe.paper.alpha_grid`); SCARL Fig. 4 d's batch sizes; the findings of
``semprobe.paper.findings`` (C1 a and b, RSA, PGD-LS vs alpha); every figure drawn by
``semprobe figures``; and what does not apply on this data.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from study import GROUPS, RUNS, STUDY, StudyRun  # noqa: E402
from study_analyses import GRID_EVAL_EPS, STRONG_SQUARE, grid_eval_name  # noqa: E402

MAIN_ATTACKS = ("natural", "fgsm", "pgd20", "pgd100", "cw100")
SPAT_PAIRS = (("spat_madry", "pgd_at"), ("spat_trades", "trades"), ("spat_mart", "mart"))
ABLATION_REFERENCE = "scarl_20k"
TABLE3_REFERENCE = "pgd-ce"  # SCARL Table 3's adaptive attacks are read against PGD on the cross-entropy
TARGETS = {"natural": {"natural": 91.0}, "robust": {"natural": 80.0, "pgd20": 68.0}}
SEMANTIC_HELP_PAIRS = (("scarl_base_pgd_at", "pgd_at_20k"), ("scarl_20k", "trades_20k"))
FIGURE_ANALYSES = (
    ("figures", (("scarl_fig1_cca", "SCARL Fig. 1: CCA of features and word vectors"),
                 ("scarl_fig5_cca", "SCARL Fig. 5: CCA, PGD-AT vs SCARL"),
                 ("scarl_fig2_simmatrix", "SCARL Fig. 2: class similarity of features and of word vectors"),
                 ("scarl_fig4a_epochs", "SCARL Fig. 4 a: validation PGD-10 accuracy per epoch"),
                 ("scarl_fig4b_eps", "SCARL Fig. 4 b: PGD-10 accuracy vs eps"),
                 ("scarl_fig4c_steps", "SCARL Fig. 4 c: PGD accuracy vs steps"),
                 ("spat_fig4_alpha", "SPAT Fig. 4: PGD-LS success vs alpha"),
                 ("spat_fig2_examples", "SPAT Fig. 2: CW-inf adversarial examples of PGD-AT at the paper's eps "
                                        "8, 16 and 32/255 (not the study's 0.1)"),
                 ("spat_fig3_examples", "SPAT Fig. 3: PGD-CE vs PGD-LS examples of PGD-AT at the paper's eps "
                                        "32/255 (not the study's 0.1)"))),
    ("figures_batch", (("scarl_fig4d_batch", "SCARL Fig. 4 d: accuracy vs batch size"),)),
    ("figures_grid", (("spat_fig5_alpha_sweep", "SPAT Fig. 5: accuracy vs training alpha, per eps"),)),
)
FLAT_EPOCHS, FLAT_POINTS = 3, 1.0  # converged: validation PGD accuracy within 1 point over the last 3 epochs


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _result(document: dict | None, attack: str):
    """The :class:`~semprobe.robustness.accuracy.AttackResult` of the single checkpoint of an eval.json
    document under ``attack``, or None."""
    from semprobe.paper.findings import single_result

    return single_result(document, attack)


def _one_decimal(value: float) -> str:
    """``value`` to one decimal, halves rounded up as written in decimal (71.55 -> 71.6, as eval.md's 71.55
    reads; ``f"{71.55:.1f}"`` gives 71.5, the binary float being a hair below the half)."""
    return str(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _cell(result) -> str:
    if result is None:
        return "-"
    return f"{_one_decimal(result.accuracy)} [{_one_decimal(result.ci95[0])}, {_one_decimal(result.ci95[1])}]"


def _option(run: StudyRun, flag: str) -> str:
    """The value ``run`` gives ``flag``."""
    return run.options[run.options.index(flag) + 1]


def _clean_and_pgd(results: Path, run: StudyRun) -> str:
    """Two table cells: ``run``'s clean and PGD-20 accuracy on the test split, or ``-`` before its eval ran."""
    document = _read(results / f"eval_{run.name}" / "eval.json")
    return f"{_cell(_result(document, 'natural'))} | {_cell(_result(document, 'pgd20'))}"


def _command(results: Path, name: str) -> str:
    record = _read(results / name / "study-job.json")
    return f"`{record['command']}`" if record else "(not run yet)"


def _overfitting(epochs: list[dict], chosen_epoch: int) -> str:
    """The clause naming robust overfitting (Rice et al., 2020) when training accuracy kept rising from the
    chosen epoch to the last while the validation accuracy fell; empty when the log cannot show it."""
    at = {e["epoch"]: e.get("train_acc") for e in epochs}
    start, end = at.get(chosen_epoch), epochs[-1].get("train_acc")
    if start is None or end is None or end <= start:
        return ""
    clause = (f", while training accuracy kept rising ({100 * start:.1f}% -> {100 * end:.1f}%): the pattern of "
              "robust overfitting (Rice et al., 2020), which choosing best.pt on validation guards against")
    ramp = {e["epoch"]: e.get("train_lambda1") for e in epochs}
    low, high = ramp.get(chosen_epoch), epochs[-1].get("train_lambda1")
    if low is not None and high is not None and high > low:
        clause += (f"; over the same epochs SCARL's ramped weight of L_info and L_struc grew from {low:.2f} to "
                   f"{high:.2f}, which may add to the fall")
    return clause


def convergence_note(name: str, epochs: list[dict], chosen_epoch: int) -> str | None:
    """One sentence on a run whose selection accuracy is not flat over its low-lr phase (the epochs from the
    first lr decay on; the last FLAT_EPOCHS epochs when the lr never decays): still rising, fallen from its
    chosen epoch, or moving within the validation noise; None when flat."""
    key = "val_clean_acc" if name == "natural" else "val_pgd_acc"
    label = "clean" if key == "val_clean_acc" else "PGD-10"
    values = {e["epoch"]: 100 * e[key] for e in epochs}
    decays = [b["epoch"] for a, b in zip(epochs, epochs[1:]) if b.get("lr", 0) < a.get("lr", 0)]
    phase = [e for e in epochs if decays and e["epoch"] >= decays[0]]
    if len(phase) < 2:
        phase = epochs[-FLAT_EPOCHS:]
    tail, last = [100 * e[key] for e in phase], epochs[-1]["epoch"]
    if len(tail) < 2 or max(tail) - min(tail) < FLAT_POINTS:
        return None
    span = f"epochs {phase[0]['epoch']}-{last}"
    if tail[-1] > tail[0] + FLAT_POINTS:
        return (f"{name}: validation {label} accuracy still rose over {span} ({tail[0]:.1f}% -> {tail[-1]:.1f}%); "
                "more epochs may add to it.")
    best = values[chosen_epoch]
    if tail[-1] < best - FLAT_POINTS:
        after = [d for d in decays if chosen_epoch < d <= last]
        why = f", after the lr decay at epoch {after[0]}" if after else ""
        return (f"{name}: validation {label} accuracy fell from {best:.1f}% at epoch {chosen_epoch} (the chosen "
                f"checkpoint) to {tail[-1]:.1f}% at epoch {last}{why}{_overfitting(epochs, chosen_epoch)}; "
                f"best.pt keeps epoch {chosen_epoch}.")
    return (f"{name}: validation {label} accuracy moved by {max(tail) - min(tail):.1f} points over {span}, within "
            "the noise of 1,000 validation images (a 95% interval of about +-2.6 points) but above the "
            f"{FLAT_POINTS:g}-point rule.")


def is_trained(study: Path, run: StudyRun) -> bool:
    """True when ``run`` has been exported: its model record and training log are in the study folder."""
    return (study / "models" / f"{run.name}.json").is_file() and (study / "logs" / run.name / "metrics.jsonl").is_file()


def untrained_by_group(study: Path, runs: list[StudyRun]) -> dict[str, tuple[int, int]]:
    """Group -> (runs not trained yet, runs), for the groups that still have some to train."""
    counts: dict[str, tuple[int, int]] = {}
    for run in runs:
        missing, total = counts.get(run.group, (0, 0))
        counts[run.group] = (missing + (not is_trained(study, run)), total + 1)
    return {group: count for group, count in counts.items() if count[0]}


def training_section(study: Path, runs: list[StudyRun]) -> list[str]:
    """A row per run: epochs, chosen epoch and its validation accuracies, convergence, time."""
    lines = ["## Training", "",
             "SGD (momentum 0.9, weight decay 5e-4, batch 128), lr 0.1 decayed x0.1 at 75% and 90% of the epochs, "
             "eps 0.1, training attacks of 10 steps of eps/4; validation on 1,000 held-out training images with "
             f"PGD-10. *Flat* means the accuracy that picks best.pt (clean for natural, PGD-10 otherwise) moved less "
             f"than {FLAT_POINTS:g} point over the epochs after the first lr decay (the last {FLAT_EPOCHS} when the "
             "lr never decays).", "",
             "| run | group | training images | epochs | chosen epoch | val clean % | val PGD-10 % | flat | hours |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for run in runs:
        if not is_trained(study, run):
            lines.append(f"| {run.name} | {run.group} | {run.train_images or 'all'} | - | not trained yet | | | | |")
            continue
        record = _read(study / "models" / f"{run.name}.json")
        metrics = study / "logs" / run.name / "metrics.jsonl"
        epochs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        chosen = next(e for e in epochs if e["epoch"] == record["best_epoch"])
        tail = [e["val_pgd_acc"] for e in epochs[-FLAT_EPOCHS:]]
        note = convergence_note(run.name, epochs, chosen["epoch"])
        flat = "no" if note else "yes"
        notes += [f"- {note}"] if note else []
        hours = sum(e.get("train_time_s", 0) + e.get("eval_time_s", 0) for e in epochs) / 3600
        lines.append(f"| {run.name} | {run.group} | {run.train_images or 'all'} | {len(epochs)} | {chosen['epoch']} | "
                     f"{100 * chosen['val_clean_acc']:.1f} | {100 * chosen['val_pgd_acc']:.1f} | {flat} | "
                     f"{hours:.1f} |")
    if notes:
        lines += ["", "Runs that are not flat (their curves: SCARL Fig. 4 a below, and `logs/NAME/metrics.jsonl`):",
                  ""] + notes
    return lines + [""]


def meets_targets(name: str, document: dict) -> bool:
    """True when the eval.json ``document`` of main model ``name`` reaches the issue's targets."""
    targets = TARGETS["natural" if name == "natural" else "robust"]
    found = {attack: _result(document, attack) for attack in targets}
    return all(found[attack] is not None and found[attack].accuracy >= floor for attack, floor in targets.items())


def _stronger_attack_gap(results: Path, names: list[str]) -> str:
    """How far PGD-100 and CW-100 take the models ``names`` below PGD-20 at most, in words."""
    gaps = []
    for name in names:
        document = _read(results / f"eval_{name}" / "eval.json")
        pgd = _result(document, "pgd20")
        stronger = [r for r in (_result(document, a) for a in ("pgd100", "cw100")) if r is not None]
        if pgd is not None and stronger:
            gaps.append((pgd.accuracy - min(r.accuracy for r in stronger), name))
    if not gaps:
        return "no main model has PGD-100 or CW-100 yet"
    gap, name = max(gaps)
    return f"PGD-100 and CW-100 take the main models at most {gap:.1f} points below PGD-20 ({name})"


def main_table(results: Path, names: list[str]) -> list[str]:
    """SCARL Table 1 / SPAT Tables 1-2: accuracy % [95% CI] on the whole test split, with the targets."""
    lines = ["## Robust accuracy on the full test split (SCARL Table 1, SPAT Tables 1-2)", "",
             "Accuracy % with 95% Wilson intervals on the 10,000 test images at eps 0.1 (an image counts when it and "
             "its attacked version are both right). Targets: natural >= 91% clean; every robust method >= 80% "
             "clean and >= 68% PGD-20. The main models get all five attacks; the models of the other groups get "
             "clean and PGD-20 on the same 10,000 images, the accuracy their tables pair (the stronger attacks on "
             f"each would cost CPU-hours; {_stronger_attack_gap(results, names)}).", "",
             "| model | " + " | ".join(MAIN_ATTACKS) + " | target |", "|---" * (len(MAIN_ATTACKS) + 2) + "|"]
    for name in names:
        document = _read(results / f"eval_{name}" / "eval.json")
        cells = {attack: _result(document, attack) for attack in MAIN_ATTACKS}
        if document is None:
            lines.append(f"| {name} | " + " | ".join("-" for _ in MAIN_ATTACKS) + " | not evaluated yet |")
            continue
        met = meets_targets(name, document)
        lines.append(f"| {name} | " + " | ".join(_cell(cells[a]) for a in MAIN_ATTACKS) + f" | "
                     f"{'met' if met else 'short'} |")
    ran = [name for name in names if (results / f"eval_{name}" / "study-job.json").is_file()]
    commands = "; ".join(_command(results, f"eval_{name}") for name in ran) or "none run yet"
    return lines + ["", f"Commands: {commands}" + (f" (not run yet: {', '.join(n for n in names if n not in ran)})"
                                                    if len(ran) < len(names) else ""), ""]


def _labelled(document: dict, label: str) -> dict:
    """An eval.json whose single checkpoint is relabelled ``label`` (the commands label a file by its name)."""
    return {**document, "checkpoints": {label: next(iter(document["checkpoints"].values()))}}


def comparison_findings(results: Path) -> list[tuple[str, str, tuple[str, ...], object]]:
    """``(first, second, attacks, finding or None)`` for SCARL vs TRADES and each method with vs without SPAT:
    the paired :func:`~semprobe.paper.findings.accuracy_finding` of their evals (None until both have one)."""
    from semprobe.paper.findings import accuracy_finding

    found = []
    for first, second in [("scarl", "trades"), *SPAT_PAIRS]:
        documents = []
        for prefix in ("eval_", "aa_"):
            for name in (first, second):
                document = _read(results / f"{prefix}{name}" / "eval.json")
                if document is not None:
                    documents.append(_labelled(document, name))
        autoattacked = all((results / f"aa_{name}" / "eval.json").is_file() for name in (first, second))
        # SCARL's claim is judged under AutoAttack; a SPAT pair is once both models have their AutoAttack eval
        attacks = (("pgd20", "aa", "cw100") if first == "scarl"
                   else ("natural", "pgd20", "aa", "cw100") if autoattacked else ("natural", "pgd20", "cw100"))
        finding = accuracy_finding(documents, first, second, attacks=attacks) if documents else None
        found.append((first, second, attacks, finding if finding is not None and finding.numbers else None))
    return found


def comparisons(results: Path) -> list[str]:
    """SCARL vs TRADES (PGD-20 on the full split, AutoAttack on 500) and each method with vs without SPAT."""
    lines = ["## Paired comparisons (SCARL Table 1's claim; SPAT Tables 1-2: each method with and without SPAT)",
             "", "Each pair is scored on the same test images, so the difference gets Newcombe's paired interval "
             "and McNemar's exact test.", "",
             "| comparison | attack | n | first % | second % | difference, points [95% CI] | McNemar p |",
             "|---|---|---|---|---|---|---|"]
    rule = None
    for first, second, attacks, finding in comparison_findings(results):
        if finding is None:
            lines.append(f"| {first} vs {second} | - | | | | not evaluated yet | |")
            continue
        for attack in attacks:
            numbers = finding.numbers.get(attack)
            if numbers is None:
                lines.append(f"| {first} vs {second} | {attack} | | | | not evaluated on both yet | |")
                continue
            difference, low, high = numbers["difference"]
            p = f"{numbers['mcnemar_p']:.3g}" if numbers.get("paired") else "unpaired"
            lines.append(f"| {first} vs {second} | {attack} | {numbers['n']} | {_one_decimal(numbers[first])} | "
                         f"{_one_decimal(numbers[second])} | {difference:+.1f} [{low:+.1f}, {high:+.1f}] | {p} |")
        lines.append(f"| | claim: {first} better than {second}; verdict: **{finding.verdict}** | | | | | |")
        rule = next((line for line in finding.details if line.startswith("verdict rule:")), None)
    if rule:
        lines += ["", f"The verdict rule: {rule.removeprefix('verdict rule: ')}."]
    return lines + [""] + autoattack_checks(results)


AUTOATTACK_FLAG = "See flags_doc.md for details."  # the end of every reliability flag AutoAttack raises
SQUARE_FLAG = re.compile(r"Square Attack has decreased the robust accuracy of ([0-9.]+%)")


def _against_pgd(label: str, attack, pgd) -> str:
    """``attack`` against PGD-20 on the same images: both accuracies and the paired difference."""
    from semprobe.stats.intervals import paired_comparison

    c = paired_comparison(attack.flags(), pgd.flags())
    return (f"{label} {attack.accuracy:.1f}% vs PGD-20 {pgd.accuracy:.1f}% on the same {attack.n} images, difference "
            f"{100 * c.difference:+.1f} [{100 * c.ci95[0]:+.1f}, {100 * c.ci95[1]:+.1f}] points "
            f"(McNemar p = {c.mcnemar_p:.3g})")


def _autoattack_gap(folder: Path) -> str:
    """AutoAttack against PGD-20 in one ``aa_*`` eval, on the same images: both accuracies and the paired
    difference (a gap of several points says PGD-20 misses adversarial examples that exist)."""
    document = _read(folder / "eval.json")
    aa, pgd = _result(document, "aa"), _result(document, "pgd20")
    if aa is None or pgd is None or not (aa.per_image and pgd.per_image):
        return "no AutoAttack and PGD-20 pair on the same images"
    return _against_pgd("AutoAttack", aa, pgd)


def _square_and_pgd(results: Path, model: str):
    """``(eval.json, Square's result, PGD-20's result)`` of the finished ``square_MODEL`` eval, or None."""
    document = _read(results / f"square_{model}" / "eval.json")
    square, pgd = _result(document, STRONG_SQUARE), _result(document, "pgd20")
    if square is None or pgd is None or _read(results / f"square_{model}" / "study-job.json") is None:
        return None
    return document, square, pgd


def misled_gradients(results: Path, model: str):
    """The paired comparison of Square alone with PGD-20 on the same images (``square_MODEL``) when Square, which
    uses no gradients, is the stronger attack (difference CI below 0): a sign that the model's gradients mislead
    gradient attacks (Athalye et al., 2018). None when it is not, or before the eval has run."""
    from semprobe.stats.intervals import paired_comparison

    found = _square_and_pgd(results, model)
    if found is None or not (found[1].per_image and found[2].per_image):
        return None
    comparison = paired_comparison(found[1].flags(), found[2].flags())
    return comparison if comparison.ci95[1] < 0 else None


def square_check(results: Path, model: str) -> str | None:
    """The ``square_MODEL`` eval (Square alone, more queries and restarts than AutoAttack gives it) against
    PGD-20 on the same images, paired, and with AutoAttack: an image counts as robust when neither breaks it
    (when ``aa_MODEL`` scored the same images). None until it has run."""
    from semprobe.stats.intervals import wilson_interval

    found = _square_and_pgd(results, model)
    if found is None:
        return None
    document, square, pgd = found
    label = f"Square alone ({square.attack['queries']:,} queries x {square.attack['restarts']} restarts)"
    line = f"- {model}: {_against_pgd(label, square, pgd)}"
    autoattacked = _read(results / f"aa_{model}" / "eval.json")
    aa, clean = _result(autoattacked, "aa"), _result(autoattacked, "natural")
    same = clean is not None and clean.per_image == (_result(document, "natural") or clean).per_image
    if aa is not None and same and len(aa.per_image) == len(square.per_image):
        both = sum(a and b for a, b in zip(aa.flags(), square.flags()))
        low, high = wilson_interval(both, aa.n)
        line += (f"; AutoAttack and this Square together (robust when neither breaks the image) "
                 f"{100 * both / aa.n:.1f}% [{100 * low:.1f}, {100 * high:.1f}]")
    return line


CHUNK_PREFIX = re.compile(r"^images \d+-\d+: ")  # how semprobe eval prefixes each chunk's warning


def _autoattack_flags(results: Path, name: str) -> list[str]:
    """The reliability flags AutoAttack raised in the ``name`` analysis: as its eval.json records them (semprobe
    eval keeps them with the result), or, for an eval made before it did, as its committed log caught them."""
    document = _read(results / name / "eval.json") or {"checkpoints": {}}
    records = [r for checkpoint in document["checkpoints"].values() for r in checkpoint["results"]
               if r["attack"].get("kind") == "autoattack" and "warnings" in r]
    if records:
        return [CHUNK_PREFIX.sub("", w) for r in records for w in r["warnings"]]
    log = results / "logs" / f"{name}.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    return [line.strip() for line in text.splitlines() if AUTOATTACK_FLAG in line]


def autoattack_checks(results: Path) -> list[str]:
    """AutoAttack's own reliability flags (its ``checks``: Square beating the white-box attacks, zero
    gradients, probability outputs...) of each finished ``aa_*`` analysis. AutoAttack checks each batch it
    is given, so a flag's percentage is of one evaluation batch."""
    lines = []
    folders = {p.parent.name for p in results.glob("aa_*/study-job.json")}  # finished analyses only
    for name in sorted(folders):
        flags = _autoattack_flags(results, name)
        model = name.removeprefix("aa_")
        square = [m.group(1) for m in map(SQUARE_FLAG.search, flags) if m]
        others = dict.fromkeys(f.removesuffix(AUTOATTACK_FLAG).strip() for f in flags if not SQUARE_FLAG.search(f))
        said = ([f"Square lowered the robust accuracy left by APGD-CE, APGD-T and FAB-T by {', '.join(square)} in "
                 f"{len(square)} of its evaluation batches"] if square else []) + list(others)
        lines += [f"- {model}: {_autoattack_gap(results / name)}; "
                  f"AutoAttack's flags: {'; '.join(said) if said else 'none raised'}"]
    squares = [line for model in sorted({p.parent.name.removeprefix("square_")
                                          for p in results.glob("square_*/study-job.json")})
               if (line := square_check(results, model))]
    if squares:
        lines += ["", "Square alone with more queries and restarts than AutoAttack gives it (what AutoAttack's "
                  "flag advises), against PGD-20 on the same images: a black-box attack that beats a white-box one "
                  "says the model's gradients mislead PGD.", "", *squares]
    if not lines:
        return []
    return ["AutoAttack against PGD-20 on the same images (paired), and AutoAttack's own checks (Croce & Hein's "
            "flags, per evaluation batch, from `results/aa_NAME/eval.json` or, for evals made before semprobe recorded "
            "them there, `results/logs/aa_NAME.log`). A large gap, or "
            "Square, a black-box attack, succeeding where APGD and FAB failed, is a sign of gradient masking: "
            "the AutoAttack accuracy, which counts Square's successes, stays an honest upper bound, but PGD-based "
            "numbers of that model may overstate its robustness.", "", *lines, ""]


TABLE3_CLAIM = "SCARL withstands adaptive attacks (Table 3)"


def table3_outcome(document: dict) -> tuple[list[str], list[str]]:
    """SCARL Table 3 from its eval.json: a table row per attack, with its paired difference to PGD-CE on the
    same images, and the attacks whose difference CI lies below 0 (stronger than PGD-CE)."""
    from semprobe.stats.intervals import paired_comparison

    attacks = [r["attack"]["name"] for r in next(iter(document["checkpoints"].values()))["results"]]
    reference = _result(document, TABLE3_REFERENCE)
    rows, stronger = [], []
    for attack in attacks:
        result = _result(document, attack)
        versus = "- | -"
        if reference is not None and attack != TABLE3_REFERENCE and result.per_image and reference.per_image:
            comparison = paired_comparison(result.flags(), reference.flags())
            versus = _paired_cells(comparison)
            if comparison.ci95[1] < 0:
                stronger.append(attack)
        rows.append(f"| {attack} | {_cell(result)} | {versus} |")
    return rows, stronger


def table3_verdict(results: Path, stronger: list[str]) -> tuple[str, str]:
    """SCARL Table 3's verdict by the rule :func:`table3_section` states, and the reason that follows it, given the
    adaptive attacks stronger than PGD-CE (:func:`table3_outcome`)."""
    from semprobe.paper.findings import HOLDS, OPPOSITE, UNCLEAR

    if stronger:
        return OPPOSITE, f": {', '.join(stronger)} is stronger."
    misled = misled_gradients(results, "scarl")
    if misled is not None:
        low, high = 100 * misled.ci95[0], 100 * misled.ci95[1]
        return UNCLEAR, (f": no adaptive attack is stronger than PGD-CE, but Square alone is "
                         f"{-100 * misled.difference:.1f} [{-high:.1f}, {-low:.1f}] points stronger than PGD-20 on "
                         f"the same {misled.n} images (see the Square check above).")
    return HOLDS, (". All three are gradient attacks: AutoAttack and Square against PGD-20 (under the paired "
                   "comparisons) say whether this model's gradients can be trusted.")


def table3_section(results: Path) -> list[str]:
    """SCARL Table 3: the SCARL model under PGD on CE, on the TRADES KL and on L_info through its heads,
    each paired with PGD-CE on the same images, and the claim's verdict."""
    document = _read(results / "table3_scarl" / "eval.json")
    lines = ["## SCARL Table 3: adaptive attacks on the SCARL model", ""]
    if document is None:
        return lines + ["Not computed yet.", ""]
    rows, stronger = table3_outcome(document)
    verdict, reason = table3_verdict(results, stronger)
    lines += [f"| attack | accuracy % [95% CI] | difference to {TABLE3_REFERENCE}, points [95% CI] | McNemar p |",
              "|---|---|---|---|", *rows]
    lines += ["", "Each attack on the same images, so its difference to PGD on the cross-entropy is paired. The "
              "paper's claim: SCARL 'can still defend against the adaptive attack', one with white-box access to "
              "its word-embedding heads (PGD-Info) or its TRADES objective (PGD-KL). Rule: does not hold when such "
              "an attack is stronger than PGD-CE (its difference CI below 0); inconclusive when none is but Square "
              "alone (`square_scarl`), a black-box attack, is stronger than PGD-20 on its images, for then the "
              "gradients all three attacks follow mislead them and their failing shows no defence; holds "
              f"otherwise. Here: **{verdict}**{reason}"]
    return lines + ["", f"Command: {_command(results, 'table3_scarl')}", ""]


def paired_claim(results: Path, run: StudyRun, reference_name: str, run_better: bool):
    """``(comparison, verdict)`` of ``run``'s PGD-20 outcomes against ``reference_name``'s on the same test images,
    for the claim that ``run`` is the more robust (``run_better``) or the less robust; None before both are
    evaluated. The verdict follows the paired 95% interval of the difference (holds when it lies on the claimed
    side of 0, does not hold when on the other, inconclusive otherwise)."""
    from semprobe.paper.findings import verdict_from_interval
    from semprobe.stats.intervals import paired_comparison

    pgd = _result(_read(results / f"eval_{run.name}" / "eval.json"), "pgd20")
    reference = _result(_read(results / f"eval_{reference_name}" / "eval.json"), "pgd20")
    if pgd is None or reference is None or run.name == reference_name or not (pgd.per_image and reference.per_image):
        return None
    c = paired_comparison(pgd.flags(), reference.flags())
    low, high = c.ci95
    return c, verdict_from_interval(low, high) if run_better else verdict_from_interval(-high, -low)


def _paired_row(results: Path, run: StudyRun, reference_name: str, run_better: bool) -> str:
    """A table row: the run's clean and PGD-20 accuracy, its PGD-20 difference to ``reference_name``'s on the
    same test images (Newcombe's paired interval, McNemar's exact test) and the verdict of :func:`paired_claim`."""
    document = _read(results / f"eval_{run.name}" / "eval.json")
    clean, pgd = _result(document, "natural"), _result(document, "pgd20")
    options = " ".join(run.options) or run.method
    if pgd is None:
        return f"| {run.name} | {options} | - | - | not evaluated yet | | |"
    claimed = paired_claim(results, run, reference_name, run_better)
    versus = "- | - | -"
    if claimed is not None:
        c, verdict = claimed
        versus = f"{_paired_cells(c)} | {verdict}"
    return f"| {run.name} | {options} | {_cell(clean)} | {_cell(pgd)} | {versus} |"


def _paired_cells(c) -> str:
    """The two table cells of a :class:`~semprobe.stats.intervals.PairedComparison`: the difference in points
    with Newcombe's paired interval, and McNemar's exact p."""
    return f"{_difference_cell(c)} | {c.mcnemar_p:.3g}"


def _difference_cell(c) -> str:
    """A :class:`~semprobe.stats.intervals.PairedComparison`'s difference in points with its paired interval."""
    return f"{100 * c.difference:+.1f} [{100 * c.ci95[0]:+.1f}, {100 * c.ci95[1]:+.1f}]"


ABLATION_TABLES = {"--no-info": "Table 4", "--no-struc": "Table 4", "--info": "Table 4", "--embedding": "Table 5"}


def paired_claims(results: Path, runs: list[StudyRun]) -> list[tuple[str, str | None]]:
    """``(claim, verdict or None before its evals)`` for every paired claim of the ablation tables: the full
    recipe more robust than each variant of Tables 4 and 5, each base with the semantic terms more robust than
    the base alone (Table 7), each AWP run more robust than the same method without AWP."""
    claims = []
    for run in runs:
        table = next((ABLATION_TABLES[flag] for flag in run.options if flag in ABLATION_TABLES), None)
        if run.group == "ablation" and table:
            found = paired_claim(results, run, ABLATION_REFERENCE, run_better=False)
            claims.append((f"{ABLATION_REFERENCE} more robust than {run.name} ({' '.join(run.options)}; {table}, "
                           "paired)", found and found[1]))
    by_name = {run.name: run for run in runs}
    for with_terms, base in SEMANTIC_HELP_PAIRS:
        if with_terms in by_name and base in by_name:
            found = paired_claim(results, by_name[with_terms], base, run_better=True)
            claims.append((f"{with_terms} more robust than {base} (Table 7, paired)", found and found[1]))
    for run in runs:
        if "--awp-gamma" in run.options:
            base = awp_baseline(run)
            found = paired_claim(results, run, base, run_better=True)
            claims.append((f"{run.name} more robust than {base} (paired)", found and found[1]))
    return claims


def awp_baseline(run: StudyRun) -> str:
    """The run an AWP run (``X_awp_20k``) is compared with: the same method without AWP (``X_20k``)."""
    return run.name.replace("_awp", "")


PAIRED_HEADER = "| run | options | clean % | PGD-20 % | PGD-20 difference to {} [95% CI] | McNemar p | {} |"


def ablation_table(results: Path, runs: list[StudyRun]) -> list[str]:
    """SCARL Tables 4, 5, 7 on 20,000 training images: clean and PGD-20, the difference to the full recipe, and
    the verdict on the claim that the full recipe is the more robust."""
    lines = ["## SCARL ablations (Tables 4, 5, 7; 20,000 training images)", "",
             f"Each variant against `{ABLATION_REFERENCE}` (the full recipe on the same images), paired. The papers "
             "claim the full recipe is the more robust: each loss term helps, L_info beats InfoNCE (Table 4), and "
             "the stronger the word vectors' semantics, the more robust the model (Table 5). The verdict holds "
             "when the difference's interval lies below 0, does not hold when above, inconclusive otherwise.", "",
             PAIRED_HEADER.format("the full recipe", "verdict: the full recipe more robust"),
             "|---|---|---|---|---|---|---|"]
    return lines + [_paired_row(results, run, ABLATION_REFERENCE, run_better=False) for run in runs] + [""]


def semantic_help_table(results: Path, runs: list[StudyRun]) -> list[str]:
    """SCARL Table 7 on Fashion-MNIST: each base loss with SCARL's semantic terms against the same base without
    them, on the same 20,000 training images (PGD-20 on the full test split instead of the paper's FGSM and
    AutoAttack)."""
    by_name = {run.name: run for run in runs}
    lines = ["## SCARL Table 7: a base loss with and without the semantic terms (20,000 training images)", "",
             "SCARL's L_info and L_struc added to Madry AT and to TRADES, each against the same base alone, "
             "paired on the same test images (PGD-20 on the full split instead of the paper's FGSM and AutoAttack). "
             "The verdict holds when the difference's interval lies above 0.", "",
             PAIRED_HEADER.format("the base alone", "verdict: the semantic terms help"),
             "|---|---|---|---|---|---|---|"]
    for with_terms, base in SEMANTIC_HELP_PAIRS:
        if with_terms in by_name and base in by_name:
            lines.append(_paired_row(results, by_name[with_terms], base, run_better=True))
    return lines + [""]


def _batch_size(run: StudyRun) -> int:
    return int(_option(run, "--batch-size"))


def batch_reference(run: StudyRun, runs: list[StudyRun]) -> StudyRun:
    """The batch-group run of ``run``'s method with the smallest batch size: the one each size is paired with."""
    return min((other for other in runs if other.group == "batch" and other.method == run.method), key=_batch_size)


def batch_claims(results: Path, runs: list[StudyRun]) -> list[tuple[str, str | None]]:
    """SCARL Fig. 4 d's claim, ``(claim, verdict or None before both evals)`` per method of the batch group:
    robust accuracy at the largest batch is below that at the smallest (paired PGD-20 on the test split)."""
    claims = []
    for method in dict.fromkeys(run.method for run in runs if run.group == "batch"):
        same = [run for run in runs if run.group == "batch" and run.method == method]
        largest, smallest = max(same, key=_batch_size), min(same, key=_batch_size)
        found = paired_claim(results, largest, smallest.name, run_better=False)
        claims.append((f"{method} less robust at batch {_batch_size(largest)} than at {_batch_size(smallest)} "
                       "(SCARL Fig. 4 d, paired)", found and found[1]))
    return claims


def batch_table(results: Path, runs: list[StudyRun], figure: Path | None = None) -> list[str]:
    """SCARL Fig. 4 d on the test split: clean and PGD-20 accuracy of each method per training batch size, each
    size paired with the smallest of the same method, and the verdict on the claim that the larger batch is the
    less robust; ``figure`` (:func:`batch_figure`) after the table."""
    lines = ["## SCARL Fig. 4 d: batch size (10,000 training images)", "",
             "The same learning rate and epochs at every batch size, so a larger batch takes fewer steps (as in the "
             "paper). This table is the chosen checkpoint on the full test split, each batch size against the "
             "smallest of the same method on the same images, paired. The paper finds adversarial training loses robustness as the batch grows, "
             "and L_info no gain from a larger batch (its negatives are the 10 class words whatever the batch); "
             "the verdict holds when the difference's interval lies below 0, does not hold when above, "
             "inconclusive otherwise. The figure after it draws the same clean and PGD-20 accuracies with their "
             "Wilson intervals; the one under Figures, the last epoch's validation accuracy from the training logs.",
             "",
             PAIRED_HEADER.format("the smallest batch", "verdict: the smaller batch more robust"),
             "|---|---|---|---|---|---|---|"]
    rows = [_paired_row(results, run, batch_reference(run, runs).name, run_better=False)
            for run in runs if run.group == "batch"]
    caption = "SCARL Fig. 4 d on the test split: clean and PGD-20 accuracy vs batch size"
    return lines + rows + [""] + figure_lines(figure, caption)


def figures_section(results: Path) -> list[str]:
    """Every figure the study's ``semprobe figures`` analyses drew, with the command that drew it."""
    lines = ["## Figures", "",
             "Drawn by `semprobe figures` from the committed models and training logs; each PNG has a PDF and the "
             "JSON of its numbers beside it.", ""]
    for analysis, figures in FIGURE_ANALYSES:
        lines.append(f"Command: {_command(results, analysis)}")
        lines.append("")
        for name, caption in figures:
            png = results / analysis / f"{name}.png"
            if png.is_file():
                lines += [f"**{caption}** (`{name}`)", "", f"![{caption}](results/{analysis}/{name}.png)", ""]
            else:
                lines += [f"**{caption}** (`{name}`): not drawn yet.", ""]
    return lines


def not_applicable_section() -> list[str]:
    return ["## What does not apply here", "",
            "- SCARL Table 8 (GloVe trained on Twitter, Common Crawl, Wikipedia+Gigaword) and the CLIP row of "
            "Table 5: only GloVe 6B-50d is available offline, and no CLIP weights are; Table 5 is covered by GloVe "
            "against the learned (nn), random and one-hot embeddings. `--embedding clip:MODEL:WEIGHTS` and "
            "`--embedding glove:FILE` train them where the files exist.",
            "- AutoAttack and FGSM in Table 7: the table uses PGD-20 on the full test split; AutoAttack runs on the "
            "SCARL-vs-TRADES models (the comparisons above).", ""]


def awp_table(results: Path, runs: list[StudyRun]) -> list[str]:
    """SCARL Table 6's AWP baselines on Fashion-MNIST: each run with AWP (name ``X_awp_20k``) against the same
    method without it (``X_20k``), trained on the same 20,000 images."""
    lines = ["## AWP (SCARL Table 6's baselines; 20,000 training images)", "",
             "Each run with AWP against the same method without it on the same images, paired. The verdict holds "
             "when the difference's interval lies above 0.", "",
             PAIRED_HEADER.format("no AWP", "verdict: AWP helps"), "|---|---|---|---|---|---|---|"]
    for run in runs:
        if "--awp-gamma" in run.options:
            lines.append(_paired_row(results, run, awp_baseline(run), run_better=True))
    return lines + [""]


def alpha_grid(results: Path, runs: list[StudyRun], at_eval_eps: bool = False) -> dict[tuple[float, float], dict]:
    """The grid runs' evals, keyed by ``(training eps, alpha)`` as :mod:`semprobe.paper.alpha_grid` reads them:
    each at its training eps, or with ``at_eval_eps`` all at :data:`GRID_EVAL_EPS` (SPAT Fig. 5's protocol)."""
    grid = {}
    for run in runs:
        if run.group != "grid":
            continue
        name = grid_eval_name(run.name) if at_eval_eps and run.eps != GRID_EVAL_EPS else f"eval_{run.name}"
        document = _read(results / name / "eval.json")
        if document is not None:
            grid[(float(run.eps), float(_option(run, "--alpha")))] = document
    return grid


GRID_PEAK_CLAIM = f"SPAT Fig. 5: some alpha > 0 is more robust at the larger eps (PGD-20 at eps {GRID_EVAL_EPS})"


def grid_findings(results: Path, runs: list[StudyRun]) -> list:
    """SPAT Fig. 5's two claims on the grid's test-split evals (:mod:`semprobe.paper.alpha_grid`): the clean gain
    from the evals at the training eps, the robust peak once every grid model is scored at :data:`GRID_EVAL_EPS`
    (the paper's protocol); [] before any eval."""
    from dataclasses import replace

    from semprobe.paper.alpha_grid import clean_gain_finding, robust_peak_finding

    grid = alpha_grid(results, runs)
    if not grid:
        return []
    found = [clean_gain_finding(grid)]
    at_eval_eps = alpha_grid(results, runs, at_eval_eps=True)
    if len(at_eval_eps) == sum(run.group == "grid" for run in runs):
        found.append(replace(robust_peak_finding(at_eval_eps), title=GRID_PEAK_CLAIM))
    return found


GRID_FIGURE = Path("report", "spat_fig5_test")  # under the study folder: .png and the .json of its curves


def draw_curves(study: Path, stem: Path, curves: list, title: str) -> Path | None:
    """``curves`` drawn by :func:`semprobe.plots.curves.curves_figure` to ``study/stem`` (.png, and .json of the
    curves); the PNG's path relative to ``study``, or None when there is no curve to draw."""
    from semprobe.plots import pyplot
    from semprobe.plots.curves import curves_figure

    if not curves:
        return None
    figure = curves_figure(curves, title=title)
    target = study / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target.with_suffix(".png"), dpi=150, bbox_inches="tight")
    pyplot().close(figure)
    target.with_suffix(".json").write_text(json.dumps({"curves": [c.to_dict() for c in curves]}, indent=1) + "\n")
    return stem.with_suffix(".png")


def grid_figure(study: Path, runs: list[StudyRun]) -> Path | None:
    """SPAT Fig. 5 from the grid's test evaluations (clean, and PGD-20 at :data:`GRID_EVAL_EPS`, each with its
    Wilson interval, against alpha, a colour per training eps), by :func:`draw_curves` to :data:`GRID_FIGURE`."""
    from semprobe.paper.alpha_grid import grid_curves

    results = study / "results"
    curves = (grid_curves(alpha_grid(results, runs), "natural", "clean")
              + grid_curves(alpha_grid(results, runs, at_eval_eps=True), "pgd20", f"PGD-20 at eps {GRID_EVAL_EPS}"))
    return draw_curves(study, GRID_FIGURE, curves, f"SPAT Fig. 5 on the test split (PGD-20 at eps {GRID_EVAL_EPS})")


BATCH_FIGURE = Path("report", "scarl_fig4d_test")


def batch_curves(results: Path, runs: list[StudyRun]) -> list:
    """SCARL Fig. 4 d on the test split: per method of the batch group, clean and PGD-20 accuracy (%) against
    the training batch size, each point with its Wilson interval; runs not evaluated yet are left out."""
    from semprobe.robustness.curves import Curve, CurvePoint

    batch = sorted((run for run in runs if run.group == "batch"), key=_batch_size)
    evals = {run.name: _read(results / f"eval_{run.name}" / "eval.json") for run in batch}
    curves = []
    for attack, metric in (("natural", "clean"), ("pgd20", "PGD-20")):
        for method in dict.fromkeys(run.method for run in batch):
            points = [CurvePoint.of_result(_batch_size(run), result) for run in batch if run.method == method
                      and (result := _result(evals[run.name], attack)) is not None]
            if points:
                curves.append(Curve(f"{method} ({metric})", "batch size",
                                    {"metric": metric, "method": method, "interval": "Wilson 95%"}, points))
    return curves


def batch_figure(study: Path, runs: list[StudyRun]) -> Path | None:
    """:func:`batch_curves` drawn by :func:`draw_curves` to :data:`BATCH_FIGURE`."""
    return draw_curves(study, BATCH_FIGURE, batch_curves(study / "results", runs),
                       "SCARL Fig. 4 d on the test split (PGD-20 at eps 0.1)")


def figure_lines(figure: Path | None, caption: str) -> list[str]:
    """The report's lines that embed a figure drawn by :func:`draw_curves` (none when it was not drawn)."""
    if figure is None:
        return []
    return [f"**{caption}** (`{figure.stem}`)", "", f"![{caption}]({figure.as_posix()})", ""]


def grid_table(results: Path, runs: list[StudyRun], figure: Path | None = None) -> list[str]:
    """SPAT Fig. 5: spat_madry's clean accuracy and PGD-20 accuracy (at its training eps and at
    :data:`GRID_EVAL_EPS`), per alpha and eps, each against alpha 0 at the same eps (paired), and the findings
    of :func:`grid_findings`."""
    lines = ["## SPAT Fig. 5: spat_madry over alpha and eps (10,000 training images)", "",
             "This table is the chosen checkpoint on the full test split: clean, PGD-20 at the training eps, and "
             f"PGD-20 at eps {GRID_EVAL_EPS} (the paper scores every grid model at one eps, 8/255), each alpha "
             "against alpha 0 (Madry AT) at the same training eps on the same images (paired 95% intervals). The "
             f"figure after it draws the same clean and PGD-20 (eps {GRID_EVAL_EPS}) accuracies with their Wilson "
             "intervals; the one under Figures, the last epoch's validation accuracy (PGD-10 at the training eps) "
             "from the training logs.", "",
             f"| eps | alpha | clean % | PGD-20 % at the training eps | PGD-20 % at eps {GRID_EVAL_EPS} | "
             f"clean difference to alpha 0 | PGD-20 at eps {GRID_EVAL_EPS}: difference to alpha 0 |",
             "|---|---|---|---|---|---|---|"]
    grid, at_eval_eps = alpha_grid(results, runs), alpha_grid(results, runs, at_eval_eps=True)
    for run in runs:
        key = (float(run.eps), float(_option(run, "--alpha")))
        madry = (key[0], 0.0)
        clean = pgd = "-"
        if key[1] > 0 and key in grid and madry in grid:
            clean = _difference(_result(grid[key], "natural"), _result(grid[madry], "natural"))
        if key[1] > 0 and key in at_eval_eps and madry in at_eval_eps:
            pgd = _difference(_result(at_eval_eps[key], "pgd20"), _result(at_eval_eps[madry], "pgd20"))
        scored = _cell(_result(at_eval_eps.get(key), "pgd20"))
        lines.append(f"| {run.eps} | {_option(run, '--alpha')} | {_clean_and_pgd(results, run)} | {scored} | "
                     f"{clean} | {pgd} |")
    findings = grid_findings(results, runs)
    if findings:
        lines += ["", "| finding | verdict |", "|---|---|"] + [f"| {f.title} | {f.verdict} |" for f in findings]
        lines += [""] + [f.to_markdown() for f in findings]
    if figure is None:
        return lines + [""]
    gap = [""] if lines[-1].strip() and not lines[-1].endswith("\n") else []
    caption = f"SPAT Fig. 5 on the test split: clean and PGD-20 (eps {GRID_EVAL_EPS}) accuracy vs alpha"
    return lines + gap + figure_lines(figure, caption)


def _difference(result, reference) -> str:
    """One cell: ``result`` minus ``reference`` on the same images, points with the paired 95% interval."""
    from semprobe.stats.intervals import paired_comparison

    if result is None or reference is None or not result.per_image or len(result.per_image) != len(reference.per_image):
        return "-"
    return _difference_cell(paired_comparison(result.flags(), reference.flags()))


def claim_findings(results: Path) -> list:
    """The findings of :mod:`semprobe.paper.findings` on the study's cca, cca_semantic, simmatrix and alpha_curve
    outputs: claim C1 a and b for PGD-AT vs natural (SCARL Fig. 1-2) and for SCARL vs PGD-AT (Fig. 5), the RSA,
    and PGD-LS success vs alpha (SPAT Fig. 4)."""
    from dataclasses import replace

    from semprobe.paper.findings import alpha_finding, rsa_finding, semantics_finding, separability_finding

    cca, semantic = _read(results / "cca" / "cca.json"), _read(results / "cca_semantic" / "cca.json")
    sim, alpha = _read(results / "simmatrix" / "simmatrix.json"), _read(results / "alpha_curve" / "alpha_curve.json")
    findings = []
    for robust, natural, prefix in (("pgd_at", "natural", ""), ("scarl", "pgd_at", "Fig. 5, SCARL vs PGD-AT: ")):
        if cca is not None:
            found = separability_finding(cca, robust, natural)
            findings.append(replace(found, title=prefix + found.title))
        if semantic is not None and sim is not None:
            found = semantics_finding(semantic, sim, robust, natural)
            findings.append(replace(found, title=prefix + found.title))
    if sim is not None:
        findings.append(rsa_finding(sim, "pgd_at", "natural"))
    if alpha is not None:
        findings.append(alpha_finding(alpha, ["natural", "pgd_at"], "pgd_at"))
    return findings


def findings_section(results: Path) -> list[str]:
    """The claim findings, a verdict table and each with its numbers and rule."""
    findings = claim_findings(results)
    lines = ["## Findings (SCARL Fig. 1, 2, 5; SPAT Fig. 4)", ""]
    if not findings:
        return lines + ["Not computed yet: the cca, cca_semantic, simmatrix and alpha_curve analyses.", ""]
    lines += ["| finding | verdict |", "|---|---|"] + [f"| {f.title} | {f.verdict} |" for f in findings] + [""]
    return lines + [f.to_markdown() for f in findings]


def summary_section(results: Path, main: list[str],
                    untrained: dict[str, tuple[int, int]] | None = None, runs: list[StudyRun] = RUNS) -> list[str]:
    """What holds, what does not and what cannot be told, each claim once with its verdict, and the targets;
    with ``untrained`` (:func:`untrained_by_group`), the runs still to train, whose tables wait for them.
    Claims of ``runs`` still to evaluate are left to the tables (the "still to train" line counts them)."""
    from semprobe.paper.findings import HOLDS, OPPOSITE, UNCLEAR, UNTESTABLE

    verdicts = {HOLDS: [], OPPOSITE: [], UNCLEAR: [], UNTESTABLE: []}
    waiting = []
    for first, second, _, finding in comparison_findings(results):
        label = f"{first} more robust than {second} (paired)"
        if finding is None:
            waiting.append(label)
        else:
            verdicts[finding.verdict].append(label)
    table3 = _read(results / "table3_scarl" / "eval.json")
    if table3 is None:
        waiting.append(TABLE3_CLAIM)
    else:
        verdicts[table3_verdict(results, table3_outcome(table3)[1])[0]].append(TABLE3_CLAIM)
    findings, grid = claim_findings(results), grid_findings(results, runs)
    for finding in findings + grid:
        verdicts[finding.verdict].append(finding.title)
    if not findings:
        waiting.append("claims C1 a and b, the RSA and PGD-LS vs alpha")
    if grid and not any(f.title == GRID_PEAK_CLAIM for f in grid):
        waiting.append(GRID_PEAK_CLAIM)
    for claim, verdict in paired_claims(results, runs) + batch_claims(results, runs):
        if verdict is not None:
            verdicts[verdict].append(claim)
    met, short = [], []
    for name in main:
        document = _read(results / f"eval_{name}" / "eval.json")
        if document is None:
            continue
        (met if meets_targets(name, document) else short).append(name)
    still = ", ".join(f"{group} {left} of {total} runs" for group, (left, total) in (untrained or {}).items())
    lines = ["## Summary", "",
             f"- **Holds**: {'; '.join(verdicts[HOLDS]) or 'nothing yet'}.",
             f"- **Does not hold**: {'; '.join(verdicts[OPPOSITE]) or 'nothing yet'}.",
             f"- **Cannot be told on this data** (inconclusive or untestable): "
             f"{'; '.join(verdicts[UNCLEAR] + verdicts[UNTESTABLE]) or 'nothing yet'}.",
             f"- **Not computed yet**: {'; '.join(waiting) or 'nothing'}.",
             f"- **Targets** (natural >= 91% clean; robust >= 80% clean and >= 68% PGD-20, full test split): met by "
             f"{', '.join(met) or 'none yet'}; short: {', '.join(short) or 'none'}.",
             *([f"- **Still to train**: {still} (their rows below read 'not trained yet'; "
                "`python figures/study.py list` says where each stands)."] if untrained else []),
             "", "Each verdict follows the rule written under it below; the sections give the numbers.", ""]
    return lines


README_BEGIN = "<!-- study-report:begin (written by python figures/study_report.py) -->"
README_END = "<!-- study-report:end -->"
README_ATTACKS = ("natural", "pgd20", "pgd100", "cw100")


def readme_block(results: Path, main: list[str]) -> list[str]:
    """What README.md shows of the report: the main table (AutoAttack where it ran) and the summary's verdicts."""
    header = ["clean %", "PGD-20 %", "PGD-100 %", "CW-100 %", "AutoAttack % (500 images)"]
    lines = ["On the whole test split at eps 0.1 (95% Wilson intervals; AutoAttack on a seeded sample of 500):", "",
             "| model | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for name in main:
        document = _read(results / f"eval_{name}" / "eval.json")
        if document is None:
            lines.append(f"| {name} | " + " | ".join("not evaluated yet" if i == 0 else "" for i in range(len(header)))
                         + " |")
            continue
        cells = [_cell(_result(document, attack)) for attack in README_ATTACKS]
        cells.append(_cell(_result(_read(results / f"aa_{name}" / "eval.json"), "aa")))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    summary = summary_section(results, main, untrained_by_group(results.parent, RUNS))
    verdicts = [line for line in summary if line.startswith("- **")]
    return lines + ["", "What the numbers say (each verdict by the rule written beside it in the report):", "",
                    *verdicts]


def update_readme(readme: Path, block: list[str]) -> bool:
    """Replace README's study block (between its markers) with ``block``; False when it has no markers."""
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        return False
    readme.write_text(text[:begin + len(README_BEGIN)] + "\n" + "\n".join(block) + "\n" + text[end:])
    return True


def write_report(study: Path = STUDY) -> Path:
    results = study / "results"
    by_group = {group: [run for run in RUNS if run.group == group] for group in GROUPS}
    sections = [
        ["# The study: SCARL and SPAT on well-trained Fashion-MNIST models", "",
         "Made by `python figures/study_report.py` from the outputs of `python figures/study.py` (every command is "
         "named with its section). A check of the papers' claims on another dataset with a small CNN, not a "
         "reproduction of their CIFAR numbers.", ""],
        summary_section(results, [run.name for run in by_group["main"]], untrained_by_group(study, RUNS), RUNS),
        training_section(study, RUNS),
        main_table(results, [run.name for run in by_group["main"]]),
        comparisons(results),
        table3_section(results),
        ablation_table(results, by_group["ablation"]),
        semantic_help_table(results, RUNS),
        grid_table(results, by_group["grid"], grid_figure(study, by_group["grid"])),
        batch_table(results, by_group["batch"], batch_figure(study, by_group["batch"])),
        awp_table(results, by_group["awp"]),
        findings_section(results),
        figures_section(results),
        not_applicable_section(),
    ]
    path = study / "REPORT.md"
    path.write_text("\n".join(line for section in sections for line in section).rstrip() + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study-dir", type=Path, default=STUDY, help="the study folder (default figures/study)")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md",
                        help="the README whose study block (between its markers) gets the main table and verdicts "
                             "(default the repository's)")
    args = parser.parse_args(argv)
    if not args.study_dir.is_dir():
        parser.exit(2, f"study_report: error: no study folder {args.study_dir}\n")
    print(f"wrote {write_report(args.study_dir.resolve())}")
    main_runs = [run.name for run in RUNS if run.group == "main"]
    if args.readme.is_file() and update_readme(args.readme, readme_block(args.study_dir.resolve() / "results",
                                                                         main_runs)):
        print(f"updated the study block of {args.readme}")
    else:
        print(f"left {args.readme} alone: it has no study block ({README_BEGIN} ... {README_END})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
