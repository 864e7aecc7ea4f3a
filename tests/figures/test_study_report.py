"""figures/study_report.py: the report's tables from synthetic command outputs, paired where it must be."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from semprobe.stats.intervals import paired_comparison, wilson_interval

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "figures" / "study_report.py"


@pytest.fixture()
def report():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("semprobe_study_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]
    sys.path.remove(str(SCRIPT.parent))


def write_eval(results: Path, name: str, flags: dict[str, str], n_label: int = 100) -> None:
    """An eval.json of the shape `semprobe eval` writes, for one checkpoint FILE name.pt."""
    rows = []
    for attack, per_image in flags.items():
        correct = per_image.count("1")
        low, high = wilson_interval(correct, len(per_image))
        rows.append({"attack": {"name": attack}, "n": len(per_image), "correct": correct,
                     "accuracy": 100 * correct / len(per_image), "ci95": [100 * low, 100 * high],
                     "per_class": [], "seconds": 0.0, "per_image": per_image})
    folder = results / name
    folder.mkdir(parents=True)
    document = {"metadata": {"settings": {"dataset": "fashion-mnist", "split": "test", "n": n_label, "seed": 0,
                                          "sample": "all"}},
                "checkpoints": {name.split("_", 1)[1]: {"results": rows}}}
    (folder / "eval.json").write_text(json.dumps(document))
    (folder / "study-job.json").write_text(json.dumps({"command": f"semprobe eval ... {name}"}))


def test_report_tables_targets_and_paired_comparisons(report, tmp_path):
    study = tmp_path / "study"
    results = study / "results"
    scarl = "1" * 70 + "1" * 10 + "0" * 2 + "0" * 18   # 80 robust
    trades = "1" * 70 + "0" * 10 + "1" * 2 + "0" * 18  # 72 robust
    write_eval(results, "eval_scarl", {"natural": "1" * 85 + "0" * 15, "pgd20": scarl})
    write_eval(results, "eval_trades", {"natural": "1" * 90 + "0" * 10, "pgd20": trades})
    write_eval(results, "eval_natural", {"natural": "1" * 92 + "0" * 8, "pgd20": "0" * 100})
    write_eval(results, "eval_pgd_at", {"natural": "1" * 78 + "0" * 22, "pgd20": "1" * 70 + "0" * 30})
    text = report.write_report(study).read_text()
    assert "| natural | 92.0 [" in text and "| met |" in text.split("| natural | 92.0")[1].splitlines()[0]
    scarl_row = next(line for line in text.splitlines() if line.startswith("| scarl | 85.0"))
    assert scarl_row.endswith("| met |")  # >= 80% clean and >= 68% PGD-20
    pgd_at_row = next(line for line in text.splitlines() if line.startswith("| pgd_at | 78.0"))
    assert pgd_at_row.endswith("| short |")  # 78% clean
    expected = paired_comparison([c == "1" for c in scarl], [c == "1" for c in trades])
    low, high = 100 * expected.ci95[0], 100 * expected.ci95[1]
    row = next(line for line in text.splitlines() if line.startswith("| scarl vs trades | pgd20"))
    assert f"+8.0 [{low:+.1f}, {high:+.1f}]" in row and f"{expected.mcnemar_p:.3g}" in row
    # the verdict names the claim it judges (judged on the attacks both have) and its rule
    assert low > 0 and "| | claim: scarl better than trades; verdict: **holds** |" in text
    assert "The verdict rule: holds when every attack's difference CI is above 0" in text
    assert "| mart vs spat_mart" not in text and "| spat_mart vs mart | - | | | | not evaluated yet |" in text
    assert "## SCARL Table 3" in text and "Not computed yet" in text
    assert "| natural | main | all | - | not trained yet |" in text
    # nothing exported: every group is still to train, and the summary says so with its counts
    counts = {group: sum(run.group == group for run in report.RUNS) for group in report.GROUPS}
    still = next(line for line in text.splitlines() if line.startswith("- **Still to train**"))
    assert still.startswith("- **Still to train**: " + ", ".join(f"{g} {n} of {n} runs" for g, n in counts.items()))
    (study / "models").mkdir()
    (study / "models" / "natural.json").write_text("{}")
    (study / "logs" / "natural").mkdir(parents=True)
    (study / "logs" / "natural" / "metrics.jsonl").write_text("")
    assert report.untrained_by_group(study, report.RUNS)["main"] == (counts["main"] - 1, counts["main"])
    assert "`semprobe eval ... eval_scarl`" in text


def paired_cells(first: str, second: str) -> str:
    """The report's difference and McNemar cells for two per-image outcome strings, computed independently."""
    expected = paired_comparison([c == "1" for c in first], [c == "1" for c in second])
    return (f"{100 * expected.difference:+.1f} [{100 * expected.ci95[0]:+.1f}, {100 * expected.ci95[1]:+.1f}] | "
            f"{expected.mcnemar_p:.3g}")


def write_pair(results: Path, names: tuple[str, str], robust: tuple[str, str], clean=(80, 81)) -> None:
    """Two eval.json of the same 100 images: ``robust`` their PGD-20 outcomes, ``clean`` their clean counts."""
    for name, flags, correct in zip(names, robust, clean):
        write_eval(results, f"eval_{name}", {"natural": "1" * correct + "0" * (100 - correct), "pgd20": flags})


def test_awp_table_compares_each_awp_run_with_the_same_method_without_it(report, tmp_path):
    results = tmp_path / "study" / "results"
    with_awp = "1" * 60 + "1" * 12 + "0" * 28   # 72 robust
    without = "1" * 60 + "0" * 12 + "1" * 3 + "0" * 25  # 63 robust, on the same images
    write_pair(results, ("pgd_at_awp_20k", "pgd_at_20k"), (with_awp, without))
    awp = report.StudyRun("trades_awp_20k", "awp", "trades", ("--awp-gamma", "0.005"), train_images=20_000)
    runs = [run for run in report.RUNS if run.group == "awp"] + [awp]
    lines = report.awp_table(results, runs)
    rows = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ") and "_20k" in line}
    assert set(rows) == {"pgd_at_awp_20k", "trades_awp_20k"}  # the baseline is no row of its own
    assert paired_cells(with_awp, without).startswith("+9.0 [")
    assert paired_cells(with_awp, without) in rows["pgd_at_awp_20k"]
    assert "not evaluated yet" in rows["trades_awp_20k"] and "--awp-gamma 0.01" in rows["pgd_at_awp_20k"]


def test_table7_pairs_each_base_with_its_semantic_terms_and_the_batch_table(report, tmp_path):
    results = tmp_path / "study" / "results"
    with_terms = "1" * 50 + "1" * 9 + "0" * 41   # 59 robust
    base = "1" * 50 + "0" * 9 + "1" * 4 + "0" * 37  # 54 robust, on the same images
    write_pair(results, ("scarl_base_pgd_at", "pgd_at_20k"), (with_terms, base))
    write_eval(results, "eval_scarl_10k_b256", {"natural": "1" * 77 + "0" * 23, "pgd20": "1" * 61 + "0" * 39})
    lines = report.semantic_help_table(results, report.RUNS)
    rows = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| scarl")}
    assert set(rows) == {"scarl_base_pgd_at", "scarl_20k"}
    cells = paired_cells(with_terms, base)
    assert cells.startswith("+5.0 [") and cells in rows["scarl_base_pgd_at"]
    assert "not evaluated yet" in rows["scarl_20k"]
    batch = report.batch_table(results, report.RUNS)
    row = next(line for line in batch if line.startswith("| scarl_10k_b256 |"))
    assert row.startswith("| scarl_10k_b256 | --batch-size 256 | 77.0 [") and "| 61.0 [" in row
    assert row.endswith("| - | - | - |")  # batch 64, its pair, is not evaluated yet
    assert sum(line.startswith("| pgd_at_10k_b") for line in batch) == 4


def test_batch_sizes_pair_with_the_smallest_and_fig4d_claims_reach_the_summary(report, tmp_path):
    results = tmp_path / "study" / "results"
    small = "1" * 60 + "1" * 10 + "0" * 30   # 70 robust at batch 64
    large = "1" * 60 + "0" * 10 + "1" * 2 + "0" * 28  # 62 robust at batch 512, on the same images
    write_pair(results, ("pgd_at_10k_b512", "pgd_at_10k_b64"), (large, small))
    write_pair(results, ("scarl_10k_b512", "scarl_10k_b64"), (small, large))  # the larger batch the better
    write_eval(results, "eval_scarl_10k_b128", {"natural": "1" * 80 + "0" * 20, "pgd20": large[:99] + "1"})
    table = report.batch_table(results, report.RUNS)
    rows = {line.split(" | ")[0][2:]: line for line in table if line.startswith("| ") and "_10k_b" in line}
    assert set(rows) == {f"{m}_10k_b{b}" for m in ("pgd_at", "scarl") for b in (64, 128, 256, 512)}
    assert paired_cells(large, small).startswith("-8.0 [")
    assert rows["pgd_at_10k_b512"].endswith(f"| {paired_cells(large, small)} | holds |")
    assert rows["scarl_10k_b512"].endswith(f"| {paired_cells(small, large)} | does not hold |")
    assert rows["scarl_10k_b128"].endswith("| inconclusive |")  # one image apart from batch 64
    assert rows["pgd_at_10k_b64"].endswith("| - | - | - |") and "not evaluated yet" in rows["pgd_at_10k_b256"]
    assert report.batch_reference(next(r for r in report.RUNS if r.name == "scarl_10k_b256"), report.RUNS).name == "scarl_10k_b64"
    lines = report.summary_section(results, [])
    holds = next(line for line in lines if line.startswith("- **Holds**"))
    opposite = next(line for line in lines if line.startswith("- **Does not hold**"))
    assert "pgd_at less robust at batch 512 than at 64 (SCARL Fig. 4 d, paired)" in holds
    assert "scarl less robust at batch 512 than at 64 (SCARL Fig. 4 d, paired)" in opposite


def test_figures_section_embeds_drawn_figures_with_their_command(report, tmp_path):
    results = tmp_path / "study" / "results"
    (results / "figures").mkdir(parents=True)
    (results / "figures" / "scarl_fig4b_eps.png").write_bytes(b"\x89PNG")
    (results / "figures" / "study-job.json").write_text(json.dumps({"command": "semprobe figures --robust x"}))
    text = "\n".join(report.figures_section(results))
    assert "![SCARL Fig. 4 b: PGD-10 accuracy vs eps](results/figures/scarl_fig4b_eps.png)" in text
    assert "Command: `semprobe figures --robust x`" in text
    assert "(`scarl_fig4c_steps`): not drawn yet." in text and "(`scarl_fig4d_batch`): not drawn yet." in text
    from semprobe.paper.figures import FIGURE_NAMES

    assert all(f"`{name}`" in text for name in FIGURE_NAMES)  # every paper figure has its place


def test_report_of_a_missing_study_folder_is_one_line_and_exit_2(tmp_path):
    import subprocess

    result = subprocess.run([sys.executable, str(SCRIPT), "--study-dir", str(tmp_path / "none")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no study folder" in result.stderr


def _epochs(pgd, lrs):
    return [{"epoch": i + 1, "lr": lr, "val_clean_acc": 0.8, "val_pgd_acc": v}
            for i, (v, lr) in enumerate(zip(pgd, lrs))]


def test_convergence_note_judges_the_low_lr_phase(report):
    lrs = [0.1] * 6 + [0.01, 0.001]
    note = report.convergence_note
    # a jump at the decay, then flat: converged (the epochs before the decay do not count)
    assert note("pgd_at", _epochs([.69, .73, .74, .76, .75, .77, .793, .790], lrs), 7) is None
    fell = note("trades", _epochs([.66, .72, .71, .73, .72, .746, .716, .704], lrs), 6)
    assert fell.startswith("trades: validation PGD-10 accuracy fell from 74.6% at epoch 6")
    assert "decay at epoch 7" in fell and "overfitting" not in fell  # _epochs logs no training accuracy
    overfit = _epochs([.66, .72, .71, .73, .72, .746, .716, .704], lrs)
    for record, train_acc in zip(overfit, [.70, .77, .79, .80, .81, .815, .834, .84]):
        record["train_acc"] = train_acc
    assert "while training accuracy kept rising (81.5% -> 84.0%): the pattern of robust overfitting" in \
        note("trades", overfit, 6)
    for record, weight in zip(overfit, [.01, .04, .1, .2, .39, .61, .84, .97]):
        record["train_lambda1"] = weight  # SCARL logs its ramped semantic weight
    assert "SCARL's ramped weight of L_info and L_struc grew from 0.61 to 0.97" in note("scarl", overfit, 6)
    overfit[-1]["train_acc"] = 0.81  # training accuracy fell too: not the overfitting pattern
    assert "overfitting" not in note("trades", overfit, 6)
    rose = note("mart", _epochs([.6, .62, .64, .66, .68, .70, .72, .75], lrs), 8)
    assert "still rose over epochs 7-8 (72.0% -> 75.0%)" in rose
    # natural is judged on clean accuracy; no decay: the last three epochs
    natural = [{"epoch": i + 1, "lr": 0.1, "val_clean_acc": v, "val_pgd_acc": 0.0} for i, v in
               enumerate([.80, .85, .90, .905, .902])]
    assert note("natural", natural, 4) is None


def test_summary_sorts_each_claim_by_its_verdict_and_names_the_targets(report, tmp_path):
    results = tmp_path / "study" / "results"
    write_eval(results, "eval_scarl", {"natural": "1" * 85 + "0" * 15, "pgd20": "1" * 80 + "0" * 20,
                                       "cw100": "1" * 79 + "0" * 21})
    write_eval(results, "eval_trades", {"natural": "1" * 90 + "0" * 10, "pgd20": "0" * 30 + "1" * 50 + "0" * 20,
                                        "cw100": "0" * 30 + "1" * 49 + "0" * 21})
    write_eval(results, "eval_spat_madry", {"natural": "1" * 80 + "0" * 20, "pgd20": "1" * 70 + "0" * 30,
                                            "cw100": "1" * 69 + "0" * 31})
    write_eval(results, "eval_pgd_at", {"natural": "1" * 80 + "0" * 20, "pgd20": "1" * 71 + "0" * 29,
                                        "cw100": "1" * 69 + "0" * 31})
    lines = report.summary_section(results, ["natural", "scarl", "trades", "pgd_at", "spat_madry"])
    text = "\n".join(lines)
    holds = next(line for line in lines if line.startswith("- **Holds**"))
    assert "scarl more robust than trades (paired)" in holds  # +30 points on both attacks, paired
    unclear = next(line for line in lines if line.startswith("- **Cannot be told"))
    assert "spat_madry more robust than pgd_at (paired)" in unclear  # equal clean and robust accuracy
    waiting = next(line for line in lines if line.startswith("- **Not computed yet**"))
    assert "spat_mart more robust than mart" in waiting and "claims C1 a and b" in waiting
    targets = next(line for line in lines if line.startswith("- **Targets**"))
    assert "met by scarl, pgd_at, spat_madry; short: trades." in targets  # trades: 50% under PGD-20
    assert "natural" not in targets.split("met by")[1]  # not evaluated: neither met nor short
    assert text.count("- **") == 5


def test_table3_pairs_each_adaptive_attack_with_pgd_ce_on_the_same_images(report, tmp_path):
    results = tmp_path / "results"
    ce = "1" * 70 + "0" * 30
    kl = "1" * 70 + "1" * 6 + "0" * 24      # right on 6 more images: weaker than CE
    info = "1" * 60 + "0" * 10 + "1" * 2 + "0" * 28  # right on 10 fewer, 2 more: stronger than CE
    write_eval(results, "table3_scarl", {"pgd-ce": ce, "pgd-kl": kl, "pgd-info": info})
    text = "\n".join(report.table3_section(results))
    assert "| pgd-ce | 70.0 [" in text and "| pgd-ce | 70.0" in text.split("| pgd-kl")[0]
    assert f"| {paired_cells(kl, ce)} |" in text.split("| pgd-kl")[1].splitlines()[0]
    assert f"| {paired_cells(info, ce)} |" in text.split("| pgd-info")[1].splitlines()[0]
    assert paired_comparison([c == "1" for c in info], [c == "1" for c in ce]).ci95[1] < 0
    assert "Here: **does not hold**: pgd-info is stronger." in text

    others = tmp_path / "others"
    write_eval(others, "table3_scarl", {"pgd-ce": ce, "pgd-kl": kl})
    assert "Here: **holds**." in "\n".join(report.table3_section(others))
    holds = report.summary_section(others, [])[2]
    assert holds.startswith("- **Holds**:") and "SCARL withstands adaptive attacks (Table 3)" in holds
    assert "SCARL withstands adaptive attacks (Table 3)" in report.summary_section(results, [])[3]  # does not hold


def test_table3_is_inconclusive_when_square_alone_beats_pgd(report, tmp_path):
    """No adaptive gradient attack beats PGD-CE, but a black-box one beats PGD-20: the gradients mislead."""
    results = tmp_path / "results"
    ce, kl = "1" * 70 + "0" * 30, "1" * 70 + "1" * 6 + "0" * 24
    write_eval(results, "table3_scarl", {"pgd-ce": ce, "pgd-kl": kl})
    pgd = "1" * 70 + "0" * 30
    square = "1" * 58 + "0" * 12 + "1" * 1 + "0" * 29   # breaks 12 images PGD-20 left, spares 1 it broke
    write_eval(results, "square_scarl", {"pgd20": pgd, report.STRONG_SQUARE: square})
    expected = paired_comparison([c == "1" for c in square], [c == "1" for c in pgd])
    assert expected.ci95[1] < 0  # Square stronger, by the independent computation
    text = "\n".join(report.table3_section(results))
    low, high = 100 * expected.ci95[0], 100 * expected.ci95[1]
    assert (f"Here: **inconclusive**: no adaptive attack is stronger than PGD-CE, but Square alone is "
            f"{-100 * expected.difference:.1f} [{-high:.1f}, {-low:.1f}] points stronger than PGD-20 on the same "
            "100 images") in text
    summary = report.summary_section(results, [])
    assert "SCARL withstands adaptive attacks (Table 3)" in summary[4]  # cannot be told
    assert "SCARL withstands" not in summary[2]

    # Square no stronger than PGD-20 (one image each way): the verdict stays "holds"
    even = tmp_path / "even"
    write_eval(even, "table3_scarl", {"pgd-ce": ce, "pgd-kl": kl})
    write_eval(even, "square_scarl", {"pgd20": pgd, report.STRONG_SQUARE: "1" * 69 + "0" + "1" + "0" * 29})
    assert "Here: **holds**." in "\n".join(report.table3_section(even))
    # a Square eval still running (no study-job.json) does not count
    (results / "square_scarl" / "study-job.json").unlink()
    assert "Here: **holds**." in "\n".join(report.table3_section(results))


def test_autoattack_flags_come_from_the_logs_of_finished_aa_analyses(report, tmp_path):
    results = tmp_path / "results"
    (results / "logs").mkdir(parents=True)
    flag = ("Square Attack has decreased the robust accuracy of 3.60%. This might indicate that the robustness "
            "evaluation using AutoAttack is unreliable. See flags_doc.md for details.")
    randomized = 'it seems to be a randomized defense! Please use version="rand". See flags_doc.md for details.'
    second = flag.replace("3.60%", "0.94%")
    (results / "logs" / "aa_scarl.log").write_text(
        f"# analyse: semprobe eval ...\n{flag}\nother line\n{randomized}\n{second}\n{randomized}\n")
    (results / "logs" / "aa_trades.log").write_text("# analyse: semprobe eval ...\n")
    (results / "logs" / "aa_mart.log").write_text(f"{flag}\n")  # still running: no study-job.json
    pgd, aa = "1" * 70 + "0" * 30, "1" * 60 + "0" * 40  # AutoAttack breaks 10 images PGD-20 left
    write_eval(results, "aa_scarl", {"pgd20": pgd, "aa": aa})
    (results / "aa_trades").mkdir()
    (results / "aa_trades" / "study-job.json").write_text(json.dumps({"command": "semprobe eval"}))
    lines = report.autoattack_checks(results)
    assert (f"- scarl: AutoAttack 60.0% vs PGD-20 70.0% on the same 100 images, difference "
            f"{paired_cells(aa, pgd).replace(' | ', ' points (McNemar p = ')}); AutoAttack's flags: Square lowered "
            "the robust accuracy left by APGD-CE, APGD-T and FAB-T by 3.60%, 0.94% in 2 of its evaluation batches; "
            "it seems to be a randomized defense! Please use version=\"rand\"." in lines)
    assert ("- trades: no AutoAttack and PGD-20 pair on the same images; AutoAttack's flags: none raised" in lines
            and not any(line.startswith("- mart") for line in lines))
    assert report.autoattack_checks(tmp_path / "nothing") == []


def test_autoattack_flags_come_from_eval_json_when_semprobe_recorded_them(report, tmp_path):
    results = tmp_path / "results"
    pgd, aa = "1" * 70 + "0" * 30, "1" * 60 + "0" * 40
    write_eval(results, "aa_tla", {"pgd20": pgd, "aa": aa})
    document = json.loads((results / "aa_tla" / "eval.json").read_text())
    aa_record = document["checkpoints"]["tla"]["results"][1]
    aa_record["attack"]["kind"] = "autoattack"
    aa_record["warnings"] = ["images 0-49: Square Attack has decreased the robust accuracy of 2.00%. This might "
                             "indicate that the robustness evaluation using AutoAttack is unreliable. See flags_doc.md "
                             "for details."]
    (results / "aa_tla" / "eval.json").write_text(json.dumps(document))
    (results / "logs").mkdir()
    (results / "logs" / "aa_tla.log").write_text("it seems to be a dynamic defense! See flags_doc.md for details.\n")
    (line,) = [line for line in report.autoattack_checks(results) if line.startswith("- tla")]
    assert line.endswith("AutoAttack's flags: Square lowered the robust accuracy left by APGD-CE, APGD-T and FAB-T "
                         "by 2.00% in 1 of its evaluation batches")  # the log's line is not read
    aa_record["warnings"] = []  # recorded, none raised
    (results / "aa_tla" / "eval.json").write_text(json.dumps(document))
    (line,) = [line for line in report.autoattack_checks(results) if line.startswith("- tla")]
    assert line.endswith("AutoAttack's flags: none raised")


def test_a_spat_pair_is_judged_under_autoattack_once_both_models_have_it(report, tmp_path):
    results = tmp_path / "results"
    write_pair(results, ("spat_madry", "pgd_at"), ("1" * 75 + "0" * 25, "1" * 70 + "0" * 30), clean=(85, 84))
    spat = next(f for f in report.comparison_findings(results) if f[:2] == ("spat_madry", "pgd_at"))
    assert spat[2] == ("natural", "pgd20", "cw100")  # no AutoAttack eval yet: not asked for
    write_eval(results, "aa_spat_madry", {"pgd20": "1" * 75 + "0" * 25, "aa": "1" * 60 + "0" * 40})
    spat = next(f for f in report.comparison_findings(results) if f[:2] == ("spat_madry", "pgd_at"))
    assert spat[2] == ("natural", "pgd20", "cw100")  # one of the two is not enough
    aa_pgd_at = "1" * 60 + "0" * 5 + "1" * 5 + "0" * 30  # 65 robust; spat_madry keeps 5 more on the same images
    write_eval(results, "aa_pgd_at", {"pgd20": "1" * 70 + "0" * 30, "aa": aa_pgd_at})
    spat = next(f for f in report.comparison_findings(results) if f[:2] == ("spat_madry", "pgd_at"))
    assert spat[2] == ("natural", "pgd20", "aa", "cw100")
    row = next(line for line in report.comparisons(results) if line.startswith("| spat_madry vs pgd_at | aa |"))
    assert paired_cells("1" * 60 + "0" * 40, aa_pgd_at) in row


def test_strong_square_is_paired_with_pgd20_and_combined_with_autoattack(report, tmp_path):
    results = tmp_path / "results"
    clean, pgd = "1" * 85 + "0" * 15, "1" * 72 + "0" * 28
    square = "1" * 60 + "0" * 5 + "1" * 5 + "0" * 30   # 65 robust: beats PGD-20 without gradients
    aa = "1" * 63 + "0" * 37                          # 63 robust; with Square: 60 of the same images survive both
    write_eval(results, "aa_scarl", {"natural": clean, "pgd20": pgd, "aa": aa})
    write_eval(results, "square_scarl", {"natural": clean, "pgd20": pgd, report.STRONG_SQUARE: square})
    document = json.loads((results / "square_scarl" / "eval.json").read_text())
    document["checkpoints"]["scarl"]["results"][2]["attack"].update(queries=20000, restarts=2)
    (results / "square_scarl" / "eval.json").write_text(json.dumps(document))
    line = report.square_check(results, "scarl")
    low, high = wilson_interval(60, 100)
    assert line == (f"- scarl: Square alone (20,000 queries x 2 restarts) 65.0% vs PGD-20 72.0% on the same 100 "
                    f"images, difference {paired_cells(square, pgd).replace(' | ', ' points (McNemar p = ')}); "
                    f"AutoAttack and this Square together (robust when neither breaks the image) 60.0% "
                    f"[{100 * low:.1f}, {100 * high:.1f}]")
    assert line in report.autoattack_checks(results)
    write_eval(results, "square_trades", {"natural": "1" * 80 + "0" * 20, "pgd20": pgd, report.STRONG_SQUARE: square})
    (results / "square_trades" / "study-job.json").unlink()  # still running
    assert report.square_check(results, "trades") is None and report.square_check(results, "mart") is None


def test_the_readme_block_is_rewritten_between_its_markers_only(report, tmp_path):
    results = tmp_path / "results"
    write_eval(results, "eval_scarl", {"natural": "1" * 85 + "0" * 15, "pgd20": "1" * 72 + "0" * 28})
    write_eval(results, "aa_scarl", {"pgd20": "1" * 72 + "0" * 28, "aa": "1" * 63 + "0" * 37})
    block = report.readme_block(results, ["scarl", "trades"])
    low, high = wilson_interval(63, 100)
    scarl = next(line for line in block if line.startswith("| scarl |"))
    assert scarl.endswith(f"| {63.0:.1f} [{100 * low:.1f}, {100 * high:.1f}] |") and "| - | - |" in scarl
    assert "| trades | not evaluated yet |" in "\n".join(block)
    assert any(line.startswith("- **Not computed yet**:") for line in block)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{report.README_BEGIN}\nold table\n{report.README_END}\nafter\n")
    assert report.update_readme(readme, block)
    once = readme.read_text()
    assert "old table" not in once and once.startswith("# title\n\nbefore\n") and once.endswith(
        f"{report.README_END}\nafter\n") and "\n".join(block) in once
    assert report.update_readme(readme, block) and readme.read_text() == once  # idempotent
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not report.update_readme(plain, block) and plain.read_text() == "no markers\n"


def test_cells_round_halves_up_as_the_decimal_reads(report):
    assert f"{71.55:.1f}" == "71.5"  # the binary float is a hair below the half
    assert report._one_decimal(100 * 7155 / 10000) == "71.6" and report._one_decimal(71.54) == "71.5"
    assert report._one_decimal(0.0) == "0.0" and report._one_decimal(100.0) == "100.0"


def test_ablation_rows_judge_the_full_recipe_and_the_summary_lists_each_claim(report, tmp_path):
    results = tmp_path / "study" / "results"
    full = "1" * 60 + "1" * 12 + "0" * 28            # 72 robust
    no_struc = "1" * 60 + "0" * 12 + "1" * 1 + "0" * 27  # 61 robust, on the same images
    write_pair(results, ("scarl_20k", "scarl_no_struc"), (full, no_struc))
    write_eval(results, "eval_scarl_random", {"natural": "1" * 80 + "0" * 20, "pgd20": full[:99] + "1"})
    table = report.ablation_table(results, [run for run in report.RUNS if run.group == "ablation"])
    rows = {line.split(" | ")[0][2:]: line for line in table if line.startswith("| scarl")}
    assert paired_cells(no_struc, full).startswith("-11.0 [")
    assert rows["scarl_no_struc"].endswith(f"| {paired_cells(no_struc, full)} | holds |")
    assert rows["scarl_random"].endswith("| inconclusive |")  # one image apart
    assert rows["scarl_20k"].endswith("| - | - | - |") and rows["scarl_infonce"].endswith("not evaluated yet | | |")
    write_pair(results, ("scarl_base_pgd_at", "pgd_at_20k"), (no_struc, full))  # the semantic terms hurt here
    lines = report.summary_section(results, [])
    holds = next(line for line in lines if line.startswith("- **Holds**"))
    opposite = next(line for line in lines if line.startswith("- **Does not hold**"))
    unclear = next(line for line in lines if line.startswith("- **Cannot be told"))
    assert "scarl_20k more robust than scarl_no_struc (--no-struc; Table 4, paired)" in holds
    assert "scarl_20k more robust than scarl_random (--embedding random; Table 5, paired)" in unclear
    assert "scarl_base_pgd_at more robust than pgd_at_20k (Table 7, paired)" in opposite
    assert "scarl_onehot" not in "\n".join(lines)  # a claim waits for its eval in the tables


def test_grid_table_pairs_each_alpha_with_alpha_0_and_judges_fig5_at_one_eps(report, tmp_path):
    results = tmp_path / "study" / "results"
    grid = [run for run in report.RUNS if run.group == "grid"]
    madry_clean, spat_clean = "1" * 80 + "0" * 20, "1" * 90 + "0" * 10  # every alpha > 0: +10 clean, paired
    madry_pgd, spat_pgd = "1" * 60 + "0" * 40, "1" * 80 + "0" * 20
    for run in grid:
        madry = run.options[-1] == "0"
        write_eval(results, f"eval_{run.name}", {"natural": madry_clean if madry else spat_clean,
                                                 "pgd20": madry_pgd})
    lines = report.grid_table(results, grid)
    row = next(line for line in lines if line.startswith("| 0.15 | 0.2 |"))
    assert paired_cells(spat_clean, madry_clean).split(" | ")[0] in row
    text = "\n".join(lines)
    assert "| SPAT Fig. 5: alpha > 0 raises clean accuracy | holds |" in text
    assert report.GRID_PEAK_CLAIM not in text  # not every model scored at eps 0.1 yet
    waiting = next(line for line in report.summary_section(results, []) if line.startswith("- **Not computed"))
    assert report.GRID_PEAK_CLAIM in waiting
    for run in grid:
        if run.eps != report.GRID_EVAL_EPS:  # alpha 0.2 beats alpha 0 at eps 0.1 whatever its training eps
            write_eval(results, report.grid_eval_name(run.name),
                       {"pgd20": spat_pgd if run.options[-1] == "0.2" else madry_pgd})
    text = "\n".join(report.grid_table(results, grid))
    row = next(line for line in text.splitlines() if line.startswith("| 0.15 | 0.2 |"))
    cells = row.split(" | ")
    assert cells[4].startswith("80.0 [")  # PGD-20 at eps 0.1
    assert cells[5] == paired_cells(spat_clean, madry_clean).split(" | ")[0]
    assert cells[6] == paired_cells(spat_pgd, madry_pgd).split(" | ")[0] + " |"
    # at eps 0.1 itself alpha 0.2 is no better (its own eval): the two larger eps disagree
    assert f"| {report.GRID_PEAK_CLAIM} | inconclusive |" in text
    assert "(the smallest eps: reported, not judged)" in text
    study = tmp_path / "study"
    figure = report.grid_figure(study, grid)
    assert figure == report.GRID_FIGURE.with_suffix(".png") and (study / figure).stat().st_size > 0
    curves = json.loads((study / figure).with_suffix(".json").read_text())["curves"]
    by_label = {c["label"]: [p["accuracy"] for p in c["points"]] for c in curves}
    assert by_label["clean, trained at eps 0.15"] == [80.0, 90.0, 90.0, 90.0]  # alpha 0, 0.1, 0.2, 0.4
    assert by_label["PGD-20 at eps 0.1, trained at eps 0.15"] == [60.0, 60.0, 80.0, 60.0]  # its eps-0.1 evals
    assert "![SPAT Fig. 5" in "\n".join(report.grid_table(results, grid, figure))
    assert report.grid_figure(tmp_path / "empty", grid) is None


def test_batch_figure_draws_test_accuracy_per_method_against_batch_size(report, tmp_path):
    study = tmp_path / "study"
    results = study / "results"
    assert report.batch_figure(study, report.RUNS) is None  # nothing evaluated yet: no figure, no folder
    assert not (study / "report").exists()
    write_pair(results, ("pgd_at_10k_b512", "pgd_at_10k_b64"), ("1" * 62 + "0" * 38, "1" * 70 + "0" * 30))
    write_eval(results, "eval_scarl_10k_b128", {"natural": "1" * 83 + "0" * 17, "pgd20": "1" * 66 + "0" * 34})
    figure = report.batch_figure(study, report.RUNS)
    assert figure == report.BATCH_FIGURE.with_suffix(".png") and (study / figure).stat().st_size > 0
    curves = json.loads((study / figure).with_suffix(".json").read_text())["curves"]
    points = {c["label"]: [(p["x"], p["accuracy"]) for p in c["points"]] for c in curves}
    assert points == {"pgd_at (clean)": [(64, 81.0), (512, 80.0)], "scarl (clean)": [(128, 83.0)],
                      "pgd_at (PGD-20)": [(64, 70.0), (512, 62.0)], "scarl (PGD-20)": [(128, 66.0)]}
    low, high = wilson_interval(62, 100)
    assert curves[2]["points"][1]["ci95"] == pytest.approx([100 * low, 100 * high])
    text = "\n".join(report.batch_table(results, report.RUNS, figure))
    assert "![SCARL Fig. 4 d on the test split" in text and "(report/scarl_fig4d_test.png)" in text


def test_main_table_says_how_far_the_stronger_attacks_go_below_pgd20(report, tmp_path):
    results = tmp_path / "study" / "results"
    lines = report.main_table(results, ["pgd_at", "trades"])
    assert "no main model has PGD-100 or CW-100 yet" in lines[2]
    write_eval(results, "eval_pgd_at", {"pgd20": "1" * 70 + "0" * 30, "pgd100": "1" * 69 + "0" * 31,
                                        "cw100": "1" * 68 + "0" * 32})  # 2 points below PGD-20
    write_eval(results, "eval_trades", {"pgd20": "1" * 60 + "0" * 40, "cw100": "1" * 57 + "0" * 43})  # 3 below
    lines = report.main_table(results, ["pgd_at", "trades"])
    assert "at most 3.0 points below PGD-20 (trades)" in lines[2]
