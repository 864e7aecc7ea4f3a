"""PGD-LS alpha curves: alpha 0 is PGD-CE, success falls with alpha, matching-alpha interpolation, CLI."""

import json

import pytest

from semprobe.robustness.alpha_curves import alpha_curve, matching_alpha
from semprobe.cli import main

# PGD-LS success may rise by at most this many percentage points from one alpha to the next
# (sampling noise of a few hundred images on a briefly trained model).
MONOTONE_TOLERANCE = 3.0


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_alpha_zero_is_pgd_ce_and_success_falls_with_alpha(digits_model):
    model, x, y = digits_model
    alphas = [0.0, 0.1, 0.3, 0.6, 1.0]
    curve = alpha_curve(model, x[:200], y[:200], alphas, eps=0.1, step_size=0.01, steps=10, batch_size=64, seed=0)
    assert curve.ls[0].robust == curve.ce.robust
    success = [r.success_correct for r in curve.ls]
    for before, after in zip(success, success[1:]):
        assert after <= before + MONOTONE_TOLERANCE
    assert success[-1] < success[0]
    assert curve.ce.n == 200 and 0 < curve.ce.n_correct <= 200
    assert curve.ce.success_all == pytest.approx(100 - curve.ce.robust_accuracy)


def test_matching_alpha_interpolates_a_synthetic_curve():
    assert matching_alpha([0.0, 0.5, 1.0], [40.0, 60.0, 80.0], 50.0) == {"alpha": 0.25, "bracket": [0.0, 0.5]}
    assert matching_alpha([1.0, 0.0, 0.5], [80.0, 40.0, 60.0], 70.0)["alpha"] == pytest.approx(0.75)
    assert matching_alpha([0.0, 0.5], [40.0, 60.0], 60.0)["alpha"] == 0.5
    missing = matching_alpha([0.0, 1.0], [40.0, 45.0], 90.0)
    assert missing["alpha"] is None and "below" in missing["reason"]


def test_alpha_curve_command(digits_ckpt, tmp_path, capsys):
    out = tmp_path / "alpha"
    code, stdout, err = run_cli(["alpha-curve", "--ckpt", str(digits_ckpt), "--alphas", "0:1:0.5", "--alphas", "1e-3",
                                 "--eps", "0.1", "--steps", "5", "--n", "60", "--out", str(out)], capsys)
    assert code == 0, err
    assert "alpha matching PGD-KL" in stdout
    report = json.loads((out / "alpha_curve.json").read_text())
    curve = report["curves"][0]
    assert [p["alpha"] for p in curve["points"]] == [0.0, 0.001, 0.5, 1.0]
    assert "success_correct" in report["success_definitions"] and "alpha_matching_pgd_kl" in curve
    assert (out / "alpha_curve.png").stat().st_size > 0 and (out / "alpha_curve.pdf").stat().st_size > 0


@pytest.mark.parametrize("extra, fragment", [
    (["--alphas", "0,1.5"], "alpha must be in [0, 1]"),
    (["--alphas", ""], "empty"),
    (["--alphas", "0:1:0"], "step"),
    (["--eps", "-1"], "eps"),
    (["--n", "999999"], "larger than"),
])
def test_bad_input(digits_ckpt, tmp_path, capsys, extra, fragment):
    out = tmp_path / "never"
    code, _, err = run_cli(["alpha-curve", "--ckpt", str(digits_ckpt), "--out", str(out)] + extra, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not out.exists() or not any(out.iterdir())
