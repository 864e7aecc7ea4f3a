"""Training runs on a few hundred digits with the small CNN: every method, checkpoints, resume, NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from semprobe import attacks
from semprobe.models.checkpoint import load_checkpoint
from semprobe.cli import main as semprobe_main
from semprobe.data import load_dataset
from semprobe.models import ProjectionHeads, create_model
from semprobe.options import seed_everything
from trainers import loop, methods
from trainers.__main__ import main
from trainers.config import PRESETS, parse_args

QUICK = ["--dataset", "digits", "--arch", "small_cnn", "--max-train-images", "128", "--batch-size", "64",
         "--eval-steps", "2", "--quiet"]
METHOD_OPTIONS = {
    "spat_madry": ["--alpha", "0.2"],
    "spat_trades": ["--alpha", "0.1"],
    "spat_mart": ["--alpha", "0.3"],
    "scarl": ["--embedding", "random"],
}
EXPECTED_TERMS = {
    "natural": {"ce"}, "fgsm": {"ce_adv"}, "pgd_at": {"ce_adv"}, "spat_madry": {"ce_adv"},
    "trades": {"ce", "kl"}, "spat_trades": {"ce", "kl"}, "mart": {"bce", "mart_kl"}, "spat_mart": {"bce", "mart_kl"},
    "tla": {"ce_adv", "triplet", "triplet_class"},
    "scarl": {"ce_adv", "kl", "info", "struc", "struc_distance", "struc_angle", "lambda1", "lambda2"},
}


def argv_for(method: str, out, *extra: str) -> list[str]:
    """A quick run of ``method``: 128 digits, 2 batches, 2-step attacks (``--steps`` is not fgsm's)."""
    steps = [] if method in ("natural", "fgsm") else ["--steps", "2"]
    return [method, *QUICK, *steps, *METHOD_OPTIONS.get(method, []), "--out", str(out), *extra]


def initial_weights() -> dict[str, torch.Tensor]:
    seed_everything(0)
    return create_model("small_cnn", num_classes=10, in_channels=1).state_dict()


@pytest.mark.parametrize("method", sorted(EXPECTED_TERMS))
def test_one_epoch_of_every_method_trains_and_writes_a_run(tmp_path, method):
    run = tmp_path / method
    result = loop.train(*parse_args(argv_for(method, run, "--epochs", "1")))
    assert result.best_epoch == 1
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.json", "last.pt", "metrics.jsonl"]
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    terms = {key[len("train_"):] for key in record if key.startswith("train_")} - {"acc", "loss", "time_s"}
    assert terms == EXPECTED_TERMS[method]
    for key in ("epoch", "lr", "train_loss", "train_acc", "val_clean_acc", "val_pgd_acc", "train_time_s",
                "eval_time_s"):
        assert key in record
    assert all(np.isfinite(v) for v in record.values())

    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint.epoch == 1 and checkpoint.config["method"] == method
    assert checkpoint.optimizer_state is not None and checkpoint.scheduler_state is not None
    before = initial_weights()
    after = checkpoint.model.state_dict()
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert "conv1.weight" in changed and "linear.weight" in changed
    assert (checkpoint.heads is not None) == (method == "scarl")


def test_scarl_checkpoints_carry_heads_word_vectors_tau_and_c(tmp_path, capsys):
    run = tmp_path / "scarl"
    loop.train(*parse_args(argv_for("scarl", run, "--epochs", "1", "--embedding", "glove", "--tau", "0.2")))
    for name in ("last.pt", "best.pt"):
        checkpoint = load_checkpoint(run / name)
        assert checkpoint.heads is not None and checkpoint.heads.config["out_dim"] == 64
        assert checkpoint.heads.config["image_dim"] == checkpoint.model.feature_dim
        assert checkpoint.word_vectors.provider == "glove" and checkpoint.word_vectors.vectors.shape == (10, 50)
        assert checkpoint.config["tau"] == 0.2 and checkpoint.config["c"] == 128.0  # c: the training-set size
    x, y = load_dataset("digits", "val").tensors()
    adaptive = attacks.info(checkpoint.heads, torch.from_numpy(checkpoint.word_vectors.vectors.copy()),
                            checkpoint.config["tau"], checkpoint.config["c"])
    x_adv = attacks.pgd(checkpoint.model, x, y, eps=0.1, step_size=0.05, steps=2, loss=adaptive)
    assert 0 < (x_adv - x).abs().max() <= 0.1 + 1e-6  # the adaptive attack (SCARL Table 3) runs on it

    with pytest.raises(SystemExit) as exit_info:
        semprobe_main(["info", "--ckpt", str(run / "best.pt"), "--json"])
    assert exit_info.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["heads"]["word_dim"] == 50 and summary["word_embedding"] == {"name": "glove", "dim": 50}


def test_learned_nn_embedding_trains_and_is_saved_as_the_word_vectors(tmp_path):
    run = tmp_path / "nn"
    loop.train(*parse_args(argv_for("scarl", run, "--epochs", "1", "--embedding", "nn", "--nn-dim", "12")))
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint.word_vectors.provider == "nn" and checkpoint.word_vectors.vectors.shape == (10, 12)
    assert checkpoint.heads.config["word_dim"] == 12
    seed_everything(0)
    create_model("small_cnn", num_classes=10, in_channels=1)
    start = torch.nn.Embedding(10, 12).weight.detach().numpy()  # drawn right after the model, as the trainer does
    assert not np.allclose(start, checkpoint.word_vectors.vectors)


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, train_interrupted):
    argv = ["scarl", *QUICK, "--steps", "2", "--epochs", "3", "--milestones", "2", "--embedding", "nn", "--nn-dim", "8"]
    loop.train(*parse_args(argv + ["--out", str(tmp_path / "whole")]))
    train_interrupted(argv + ["--out", str(tmp_path / "resumed")], epoch=1)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt").epoch == 1
    assert main(argv + ["--resume", str(tmp_path / "resumed")]) == 0

    whole, resumed = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert resumed.epoch == 3
    for a, b in ((whole.model, resumed.model), (whole.heads, resumed.heads)):
        state_a, state_b = a.state_dict(), b.state_dict()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert np.array_equal(whole.word_vectors.vectors, resumed.word_vectors.vectors)
    centres = [torch.load(tmp_path / run / "last.pt", weights_only=True)["resume"]["word_centres"]
               for run in ("whole", "resumed")]
    assert torch.equal(*centres)
    lines = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
             for run in ("whole", "resumed")]
    strip = lambda records: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in records]  # noqa: E731
    assert strip(lines[0]) == strip(lines[1]) and [r["epoch"] for r in lines[1]] == [1, 2, 3]


def test_resume_can_extend_a_finished_run(tmp_path):
    argv = ["pgd_at", *QUICK, "--steps", "2", "--milestones", "5", "--out", str(tmp_path / "run")]
    loop.train(*parse_args(argv + ["--epochs", "1"]))
    result = loop.train(*parse_args(argv[:-2] + ["--epochs", "2", "--resume", str(tmp_path / "run")]))
    assert [r["epoch"] for r in result.history] == [2]
    assert load_checkpoint(tmp_path / "run" / "last.pt").config["epochs"] == 2


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    good_step = methods.METHOD_STEPS["pgd_at"]

    def poisoned(ctx, x, y, progress):
        result = good_step(ctx, x, y, progress)
        if progress >= 1.0:  # second epoch
            result.loss = result.loss * float("nan")
        return result

    monkeypatch.setitem(methods.METHOD_STEPS, "pgd_at", poisoned)
    run = tmp_path / "run"
    assert main(argv_for("pgd_at", run, "--epochs", "3")) == 1
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and message.startswith("trainers: error: the loss became non-finite at epoch 2")
    assert "last.pt keeps epoch 1" in message
    assert load_checkpoint(run / "last.pt").epoch == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_eval_test_adds_test_accuracies(tmp_path):
    result = loop.train(*parse_args(argv_for("natural", tmp_path / "run", "--epochs", "1", "--eval-test")))
    record = result.history[0]
    assert 0.0 <= record["test_clean_acc"] <= 1.0 and 0.0 <= record["test_pgd_acc"] <= record["test_clean_acc"]


def test_presets_fill_in_the_papers_settings_and_yield_to_options(tmp_path):
    out = ["--dataset", "digits", "--arch", "small_cnn", "--out", str(tmp_path / "x")]
    scarl, _ = parse_args(["scarl", *out, "--preset", "scarl-tinyimagenet"])
    assert (scarl.epochs, scarl.milestones, scarl.weight_decay, scarl.beta) == (60, [50, 55], 5e-4, 6.0)
    assert (scarl.eps, scarl.step_size, scarl.steps, scarl.random_start) == (8 / 255, 2 / 255, 10, "normal")
    assert scarl.ramp_epochs == 60 and scarl.lambda1 == scarl.lambda2 == 1.0
    spat, _ = parse_args(["spat_mart", *out, "--preset", "spat-cifar10", "--epochs", "7"])
    assert (spat.epochs, spat.weight_decay, spat.alpha, spat.beta, spat.step_size) == (7, 7e-4, 0.3, 5.0, 2 / 255)
    assert parse_args(["spat_mart", *out, "--preset", "spat-cifar100"])[0].alpha == 0.2
    assert parse_args(["spat_trades", *out, "--preset", "spat-cifar100", "--alpha", "0.4"])[0].alpha == 0.4
    fgsm, _ = parse_args(["fgsm", *out, "--preset", "scarl-cifar10"])
    assert (fgsm.steps, fgsm.step_size) == (1, pytest.approx(1.25 * 8 / 255))
    assert set(PRESETS) == {"scarl-cifar10", "scarl-cifar100", "scarl-tinyimagenet", "spat-cifar10", "spat-cifar100",
                            "trades-awp-cifar10", "scarl-awp-cifar10", "spat-rst-cifar10"}


@pytest.mark.parametrize(
    "options, terms",
    [
        (["--no-info"], {"ce_adv", "kl", "struc", "struc_distance", "struc_angle", "lambda2"}),
        (["--no-struc", "--info", "infonce"], {"ce_adv", "kl", "info", "lambda1"}),
        (["--no-info", "--no-struc"], {"ce_adv", "kl"}),
        (["--base", "natural"], {"ce", "info", "struc", "struc_distance", "struc_angle", "lambda1", "lambda2"}),
        (["--base", "pgd_at"], {"ce_adv", "info", "struc", "struc_distance", "struc_angle", "lambda1", "lambda2"}),
    ],
)
def test_scarl_ablations(tmp_path, options, terms):
    run = tmp_path / "run"
    (record,) = loop.train(*parse_args(argv_for("scarl", run, "--epochs", "1", *options))).history
    assert {key[len("train_"):] for key in record if key.startswith("train_")} - {"acc", "loss", "time_s"} == terms
    checkpoint = load_checkpoint(run / "last.pt")
    state = torch.load(run / "last.pt", weights_only=True)["resume"]
    assert (state["word_centres"] is None) == ("--no-struc" in options)
    if "--no-info" in options:  # nothing trains g_t without L_info
        seed_everything(0)
        create_model("small_cnn", num_classes=10, in_channels=1)
        start = ProjectionHeads(128, 50).word.fc1.weight
        assert torch.equal(start, checkpoint.heads.word.fc1.weight)


@pytest.mark.parametrize(
    ("method", "extra", "selection", "best_epoch"),
    [
        ("natural", [], "val_clean_acc", 2),
        ("scarl", ["--base", "natural", "--embedding", "random"], "val_clean_acc", 2),
        ("pgd_at", ["--steps", "2"], "val_pgd_acc", 1),
    ],
)
def test_best_checkpoint_is_chosen_by_clean_accuracy_for_runs_without_an_attack(
    tmp_path, monkeypatch, method, extra, selection, best_epoch
):
    """Epoch 1 is the more robust, epoch 2 the more accurate: natural runs keep epoch 2, robust ones epoch 1."""
    scripted = iter([{"clean_acc": 0.5, "pgd_acc": 0.3}, {"clean_acc": 0.8, "pgd_acc": 0.1}])
    monkeypatch.setattr(loop, "evaluate", lambda *args, **kwargs: next(scripted))
    run = tmp_path / method
    result = loop.train(*parse_args([method, *QUICK, *extra, "--epochs", "2", "--out", str(run)]))
    assert (result.selection, result.best_epoch) == (selection, best_epoch)
    best = load_checkpoint(run / "best.pt")
    assert best.epoch == best_epoch
    assert best.metrics["selection"] == selection and best.metrics["best_epoch"] == best_epoch
