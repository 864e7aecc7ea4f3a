"""The trainers' threat model: ``--norm Linf|L2`` for the training attack and the per-epoch PGD."""

from __future__ import annotations

import json

import pytest
import torch

from semprobe import attacks
from semprobe.data import load_dataset
from semprobe.models import create_model
from trainers import methods, validation
from trainers.__main__ import main
from trainers.config import TrainConfig, parse_args
from trainers.resuming import resumed_config

BASE = ["--dataset", "digits", "--arch", "small_cnn", "--max-train-images", "128", "--batch-size", "64",
        "--eval-steps", "2", "--quiet"]
QUICK = [*BASE, "--steps", "2"]


def l2(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norm, computed independently of semprobe."""
    return torch.sqrt((t.reshape(len(t), -1) ** 2).sum(1))


def test_norm_defaults_to_linf_and_parses_any_case(tmp_path):
    config, _ = parse_args(["pgd_at", *QUICK, "--out", str(tmp_path / "a")])
    assert config.norm == "Linf"
    config, _ = parse_args(["pgd_at", *QUICK, "--norm", "l2", "--eps", "1.5", "--out", str(tmp_path / "b")])
    assert (config.norm, config.eps, config.step_size) == ("L2", 1.5, 1.5 / 4)


def test_an_l2_run_trains_and_records_the_norm(tmp_path, monkeypatch):
    """A quick ``--norm L2 --eps 1.0`` run: the training attack and the evaluation both run in L2."""
    seen = []
    real_pgd = attacks.pgd

    def recording_pgd(*args, **kwargs):
        seen.append((kwargs.get("norm", "Linf"), kwargs["eps"]))
        return real_pgd(*args, **kwargs)

    monkeypatch.setattr(attacks, "pgd", recording_pgd)  # the training attack (methods.StepContext.attack)
    monkeypatch.setattr(validation, "pgd", recording_pgd)  # the per-epoch evaluation
    run = tmp_path / "l2"
    assert main(["pgd_at", *QUICK, "--norm", "L2", "--eps", "1.0", "--epochs", "1", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["norm"] == "L2"
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert 0.0 <= record["val_pgd_acc"] <= record["val_clean_acc"]
    assert len(seen) >= 3 and set(seen) == {("L2", 1.0)}  # 2 training batches + the validation chunk


@pytest.mark.parametrize("method", ["pgd_at", "trades", "fgsm"])
def test_the_training_attack_stays_in_the_l2_ball(tmp_path, method):
    """StepContext.attack under L2: outside the L-inf box of the same radius, inside the L2 ball and [0,1]."""
    extra = [] if method == "fgsm" else ["--steps", "5"]
    config, _ = parse_args([method, *BASE, *extra, "--norm", "L2", "--eps", "0.5", "--out", str(tmp_path / "r")])
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=10, in_channels=1).eval()
    x, y = load_dataset("digits", "test").tensors()
    x, y = x[:64], y[:64]
    ctx = methods.StepContext(config=config, network=model, model=model, num_classes=10,
                              generator=torch.Generator().manual_seed(0))
    x_adv = ctx.attack(x, y)
    delta = x_adv - x
    assert (l2(delta) <= 0.5 + 1e-5).all()
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert l2(delta).max() > 0.4  # the attack moved
    # an L-inf attack of radius 0.5 would move single pixels by up to 0.5 and the whole image far beyond
    # 0.5 in L2; L2 steps spread a 0.5 budget over 64 pixels
    assert delta.abs().amax() < 0.5


@pytest.mark.parametrize("value", ["l3", "inf", ""])
def test_a_bad_norm_is_one_line_and_exit_2(tmp_path, capsys, value):
    out = tmp_path / "bad"
    assert main(["pgd_at", *QUICK, "--norm", value, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    message = captured.err.strip()
    assert "\n" not in message and message.startswith("trainers: error: ") and "unknown norm" in message
    assert "Linf or L2" in message and not out.exists()


def test_an_l2_eps_above_one_is_allowed_but_not_under_linf(tmp_path, capsys):
    assert main(["pgd_at", *QUICK, "--eps", "1.5", "--out", str(tmp_path / "linf")]) == 2
    assert "eps must be in [0, 1]" in capsys.readouterr().err
    config, _ = parse_args(["pgd_at", *QUICK, "--norm", "L2", "--eps", "1.5", "--out", str(tmp_path / "l2")])
    assert config.eps == 1.5


def test_a_run_stored_before_norm_existed_resumes_as_linf(tmp_path):
    """config.json of an older run has no ``norm``: it resumes as Linf, and --norm Linf agrees with it."""
    config, given = parse_args(["pgd_at", *QUICK, "--epochs", "2", "--norm", "linf", "--resume", str(tmp_path)])
    stored = {k: v for k, v in TrainConfig(**{**config.to_dict(), "epochs": 1, "resume": None}).to_dict().items()
              if k != "norm"}
    assert resumed_config(stored, config, given).norm == "Linf"
    l2_config, l2_given = parse_args(["pgd_at", *QUICK, "--norm", "L2", "--eps", "0.5", "--resume", str(tmp_path)])
    with pytest.raises(Exception, match="--norm"):
        resumed_config(stored, l2_config, l2_given)
