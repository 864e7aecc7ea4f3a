"""`semprobe eval`: attack names, the Table 1 row, intervals, sweeps and bad input."""

import csv
import json

import pytest
import torch

from semprobe.attacks.specs import parse_attack, parse_attack_list
from semprobe.models.checkpoint import save_checkpoint
from semprobe.cli import main
from semprobe.robustness.curves import accuracy_vs_steps
from semprobe.errors import ConfigError
from semprobe.robustness.accuracy import evaluate, wilson_interval
from semprobe.models import ProjectionHeads
from semprobe.words import class_vectors

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def scarl_like_ckpt(digits_model, tmp_path_factory):
    model, _, _ = digits_model
    words = class_vectors("random:16:0", DIGITS)
    torch.manual_seed(0)
    heads = ProjectionHeads(image_dim=model.feature_dim, word_dim=16, hidden_dim=32, out_dim=8).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "scarl.pt", model, dataset="digits", classes=DIGITS,
                           heads=heads, word_vectors=words, config={"tau": 0.1, "c": 1437.0})


def test_attack_names():
    assert parse_attack("pgd100").steps == 100 and parse_attack("pgd").steps == 20
    assert parse_attack("cw").steps == 30 and parse_attack("cw100").loss == "cw"
    assert parse_attack("pgd-kl").loss == "kl" and parse_attack("pgd-info50").steps == 50
    spec = parse_attack("pgd-ls:0.2:10")
    assert (spec.loss, spec.alpha, spec.steps) == ("ls", 0.2, 10)
    assert parse_attack("aa").kind == "autoattack" and parse_attack("square").autoattack_attacks == ("square",)
    assert parse_attack("pgd-info").needs_heads
    square = parse_attack("square20000x3")
    assert (square.autoattack_attacks, square.queries, square.restarts) == (("square",), 20000, 3)
    assert {k: parse_attack("square").describe(0.1, None)[k] for k in ("queries", "restarts")} == {
        "queries": 5000, "restarts": 1}
    assert parse_attack("squarex2").describe(0.1, None)["restarts"] == 2
    for bad, fragment in [("pgd0", "steps"), ("deepfool", "known attacks"), ("pgd-ls:1.5", "alpha"),
                          ("square0", "1 to 100,000 queries"), ("square100001", "1 to 100,000 queries"),
                          ("square10x11", "1 to 10 restarts"), ("square10x", "known attacks")]:
        with pytest.raises(ConfigError, match=fragment):
            parse_attack(bad)
    with pytest.raises(ConfigError, match="twice"):
        parse_attack_list("pgd20,pgd20")


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 50)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(50, 50)[1] == pytest.approx(1.0)


def test_evaluate_orders_attacks_and_reports_per_class(digits_model):
    model, x, y = digits_model
    x, y = x[:120], y[:120]
    specs = parse_attack_list("natural,fgsm,pgd10")
    natural, fgsm, pgd = evaluate(model, x, y, specs, eps=0.1, batch_size=50, seed=0)
    assert natural.n == 120 and pgd.accuracy <= fgsm.accuracy <= natural.accuracy
    assert natural.ci95[0] <= natural.accuracy <= natural.ci95[1]
    assert len(pgd.per_class) == 10
    counts = torch.bincount(y, minlength=10)
    assert sum(a / 100 * c for a, c in zip(pgd.per_class, counts.tolist()) if a is not None) == pytest.approx(pgd.correct)


def test_steps_curve_equals_separate_pgd_runs(digits_model):
    model, x, y = digits_model
    x, y = x[:100], y[:100]
    curve = accuracy_vs_steps(model, x, y, [3, 8], eps=0.1, step_size=0.025, batch_size=40, seed=4)
    for point in curve.points:
        (separate,) = evaluate(model, x, y, [parse_attack(f"pgd{int(point.x)}")], eps=0.1, step_size=0.025,
                               batch_size=40, seed=4)
        assert point.accuracy == separate.accuracy


def test_eval_command_writes_the_table(digits_ckpt, tmp_path, capsys):
    out = tmp_path / "eval"
    code, stdout, err = run_cli(["eval", "--ckpt", str(digits_ckpt), "--attacks", "natural,fgsm,pgd10", "--eps", "0.1",
                                 "--n", "80", "--sweep-eps", "0,0.1", "--sweep-steps", "1,4", "--out", str(out)], capsys)
    assert code == 0, err
    assert "natural" in stdout and "pgd10" in stdout
    report = json.loads((out / "eval.json").read_text())
    results = report["checkpoints"]["digits"]["results"]
    assert [r["attack"]["name"] for r in results] == ["natural", "fgsm", "pgd10"]
    assert results[2]["accuracy"] <= results[1]["accuracy"] <= results[0]["accuracy"]
    assert report["metadata"]["settings"]["n"] == 80 and report["checkpoints"]["digits"]["sha256"]
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert len(rows) == 3 and rows[0]["attack"] == "natural"
    assert "accuracy per class" in (out / "eval.md").read_text()
    for stem in ("accuracy_vs_eps", "accuracy_vs_steps"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").stat().st_size > 0
    curve = json.loads((out / "accuracy_vs_eps.json").read_text())["curves"][0]
    assert curve["points"][0]["accuracy"] == results[0]["accuracy"]  # eps 0 is clean accuracy

    code, _, err = run_cli(["eval", "--ckpt", str(digits_ckpt), "--attacks", "natural", "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err


def test_adaptive_attacks_of_table3(scarl_like_ckpt, tmp_path, capsys):
    code, stdout, err = run_cli(["eval", "--ckpt", str(scarl_like_ckpt), "--attacks", "pgd-ce5,pgd-kl5,pgd-info5",
                                 "--eps", "0.1", "--n", "40", "--out", str(tmp_path / "t3")], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "t3" / "eval.json").read_text())["checkpoints"]["scarl"]["results"]
    assert results[2]["attack"]["loss"] == "info" and results[2]["attack"]["steps"] == 5


@pytest.mark.parametrize("extra, fragment", [
    (["--eps", "-0.1"], "eps"),
    (["--eps", "2"], "eps"),
    (["--attacks", "pgd0"], "steps"),
    (["--attacks", "natural,deepfool"], "known attacks"),
    (["--attacks", "pgd-info"], "heads"),
    (["--n", "100000"], "larger than"),
    (["--sweep-steps", "0,5"], "sweep-steps"),
])
def test_bad_input_is_one_line_and_writes_nothing(digits_ckpt, tmp_path, capsys, extra, fragment):
    out = tmp_path / "never"
    code, _, err = run_cli(["eval", "--ckpt", str(digits_ckpt), "--out", str(out)] + extra, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not out.exists() or not any(out.iterdir())
