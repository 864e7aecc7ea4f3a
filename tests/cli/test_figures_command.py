"""`semprobe figures`: every figure the inputs allow, with valid JSON; the rest skipped with a reason."""

import json

import pytest

from semprobe.plots.example_grids import attack_columns, spat_fig2_attacks, spat_fig3_attacks
from semprobe.robustness.run_metrics import accuracy_vs_alpha, accuracy_vs_batch_size, accuracy_vs_epoch


def _run(folder, method, batch_size, pgd_accuracies, alpha=None, eps=0.1):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"method": method, "batch_size": batch_size, "alpha": alpha,
                                                    "eps": eps}))
    (folder / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e + 1, "val_clean_acc": 0.9, "val_pgd_acc": a}) + "\n" for e, a in enumerate(pgd_accuracies)))
    return folder


def test_run_curves(tmp_path):
    run = _run(tmp_path / "a", "trades", 64, [0.3, 0.4])
    curve = accuracy_vs_epoch(run)
    assert [p.x for p in curve.points] == [1, 2] and [p.accuracy for p in curve.points] == pytest.approx([30, 40])
    curves = accuracy_vs_batch_size([run, _run(tmp_path / "b", "trades", 256, [0.2])])
    assert [(p.x, p.accuracy) for p in curves[0].points] == [(64, pytest.approx(40)), (256, pytest.approx(20))]


def test_alpha_sweep_curves(tmp_path):
    runs = [_run(tmp_path / f"s{a}", "spat_madry", 128, [0.5 - a / 4], alpha=a) for a in (0.8, 0.2)]
    runs.append(_run(tmp_path / "plain", "pgd_at", 128, [0.9]))  # no alpha: left out
    curves = {c.label: c for c in accuracy_vs_alpha(runs)}
    assert set(curves) == {"PGD, trained at eps 0.1", "clean, trained at eps 0.1"}
    assert [(p.x, p.accuracy) for p in curves["PGD, trained at eps 0.1"].points] == [
        (0.2, pytest.approx(45.0)), (0.8, pytest.approx(30.0))]


def test_example_columns_stay_in_the_ball(digits_model):
    model, x, y = digits_model
    x, y = x[:4], y[:4]
    columns = attack_columns(model, x, y, {**spat_fig2_attacks(steps=3), **spat_fig3_attacks(steps=3)})
    assert [c.name for c in columns][:2] == ["natural", "CW-inf eps 8/255"] and len(columns) == 7
    assert columns[0].predictions == model(x).argmax(1).tolist()
    for column, eps in zip(columns[1:], (8 / 255, 16 / 255, 32 / 255, 32 / 255, 32 / 255, 32 / 255)):
        assert (column.images - x).abs().max() <= eps + 1e-6
        assert column.images.min() >= 0 and column.images.max() <= 1


@pytest.mark.slow  # end to end: subprocesses, real training or the full attack
def test_figures_from_checkpoints_and_runs(digits_ckpt, tmp_path, run_cli):
    runs = [_run(tmp_path / "r1", "trades", 64, [0.3, 0.4]), _run(tmp_path / "r2", "trades", 128, [0.35]),
            _run(tmp_path / "r3", "spat_madry", 128, [0.3], alpha=0.2), _run(tmp_path / "r4", "spat_madry", 128,
                                                                           [0.32], alpha=0.8)]
    out = tmp_path / "figs"
    code, stdout, err = run_cli(["figures", "--natural", digits_ckpt, "--robust", digits_ckpt]
                                + [a for run in runs for a in ("--runs", run)] + ["--n", 60, "--n-pairs", 60, "--eps", 0.1, "--max-steps", 5,
                                 "--eps-sweep", "0,0.2", "--alphas", "0,1", "--n-boot", 20, "--n-perm", 20,
                                 "--quiet", "--out", out])
    assert code == 0, err
    sweep = json.loads((out / "scarl_fig4b_eps.json").read_text())["curves"][0]["points"]
    assert [p["x"] for p in sweep] == pytest.approx([0.0, 0.1, 0.2])  # the --eps of the models is on the grid
    made = {"scarl_fig1_cca", "scarl_fig2_simmatrix", "scarl_fig4a_epochs", "scarl_fig4b_eps", "scarl_fig4c_steps",
            "scarl_fig4d_batch", "spat_fig4_alpha", "spat_fig2_examples", "spat_fig3_examples", "spat_fig5_alpha_sweep"}
    for name in made:
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0
        assert json.loads((out / f"{name}.json").read_text())["metadata"]["settings"]["n"] == 60
    assert "skipped scarl_fig5_cca: needs --robust and --scarl" in stdout
    assert "skipped the CLIP panels of scarl_fig2_simmatrix: needs --clip" in stdout
    assert not (out / "scarl_fig5_cca.png").exists()


def test_only_makes_the_named_figures(digits_ckpt, tmp_path, run_cli):
    run = _run(tmp_path / "r1", "trades", 64, [0.3, 0.4])
    out = tmp_path / "figs"
    code, stdout, err = run_cli(["figures", "--robust", digits_ckpt, "--runs", run, "--only",
                                 "scarl_fig4a_epochs,spat_fig2_examples,scarl_fig5_cca", "--n", 100, "--n-pairs", 100, "--eps", 0.1,
                                 "--quiet",
                                 "--out", out])
    assert code == 0, err
    assert sorted(p.stem for p in out.glob("*.png")) == ["scarl_fig4a_epochs", "spat_fig2_examples"]
    assert "skipped scarl_fig5_cca: needs --robust and --scarl" in stdout
    assert "spat_fig3_examples" not in stdout and "scarl_fig4b_eps" not in stdout
    settings = json.loads((out / "spat_fig2_examples.json").read_text())["metadata"]["settings"]
    assert settings["only"] == ["scarl_fig4a_epochs", "scarl_fig5_cca", "spat_fig2_examples"]


@pytest.mark.parametrize("args, fragment", [
    ([], "pass checkpoints"),
    (["--runs", "nowhere"], "not a training run"),
    (["--natural", "missing.pt"], "missing.pt"),
    (["--alphas", "0:2:0.5", "--runs", "x"], "alpha"),
    (["--only", "scarl_fig9", "--runs", "x"], "unknown figure(s) scarl_fig9"),
])
def test_bad_input(tmp_path, run_cli, args, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["figures", "--out", tmp_path / "never"] + args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "never").exists()


def test_manifest_names_the_inputs(digits_ckpt, tmp_path, run_cli):
    run = _run(tmp_path / "runs" / "trades", "trades", 64, [0.3, 0.4])
    manifest = tmp_path / "paper.yaml"
    manifest.write_text(f"dataset: digits\neps: 0.1\ncheckpoints:\n  natural: {digits_ckpt}\nruns:\n  - runs/trades\n")
    out = tmp_path / "figs"
    code, stdout, err = run_cli(["figures", "--manifest", manifest, "--n", 40, "--n-pairs", 40, "--max-steps", 2,
                                 "--clip", "clip:ViT-S-32-alt:none",
                                 "--alphas", "0,1", "--n-boot", 0, "--n-perm", 0, "--quiet", "--out", out])
    assert code == 0, err
    assert (out / "scarl_fig1_cca.png").exists() and (out / "scarl_fig4a_epochs.png").exists()
    settings = json.loads((out / "scarl_fig1_cca.json").read_text())["metadata"]["settings"]
    assert settings["eps"] == 0.1 and settings["runs"] == [str(run)]
    reports = json.loads((out / "scarl_fig2_simmatrix.json").read_text())["reports"]["natural"]
    assert set(reports) == {"glove", "clip:ViT-S-32-alt:none"}  # CLIP built with pretrained=None, offline


@pytest.mark.parametrize("text, fragment", [
    ("checkpoints:\n  natural: nowhere.pt\n", "missing files"),
    ("runs:\n  - no_such_run\n", "missing files"),
    ("checkpoints:\n  teacher: a.pt\n", "roles"),
    ("colour: red\n", "keys"),
    ("checkpoints: [\n", "YAML"),
])
def test_bad_manifest(tmp_path, run_cli, text, fragment):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    code, _, err = run_cli(["figures", "--manifest", manifest, "--out", tmp_path / "never"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "never").exists()


def test_figures_from_runs_the_trainers_made(tmp_path, run_cli):
    """Real run folders: two one-epoch spat_madry runs (alpha 0.2, 0.8) on 64 digits, and the
    robust checkpoint of one of them."""
    from trainers.__main__ import main as train

    runs = []
    for alpha in (0.2, 0.8):
        out = tmp_path / f"spat_{alpha}"
        assert train(["spat_madry", "--dataset", "digits", "--arch", "small_cnn", "--alpha", str(alpha),
                      "--max-train-images", "64", "--batch-size", "32", "--eval-steps", "1", "--epochs", "1",
                      "--quiet", "--out", str(out)]) == 0
        runs.append(out)
    out = tmp_path / "figs"
    code, stdout, err = run_cli(["figures", "--robust", runs[0] / "best.pt", "--runs", runs[0], "--runs", runs[1],
                                 "--n", 40, "--n-pairs", 40, "--eps", 0.1, "--eps-sweep", "0,0.1", "--max-steps", 2,
                                 "--alphas", "0,1", "--n-boot", 0, "--n-perm", 0, "--quiet", "--out", out])
    assert code == 0, err
    sweep = json.loads((out / "spat_fig5_alpha_sweep.json").read_text())["curves"]
    assert {tuple(p["x"] for p in c["points"]) for c in sweep} == {(0.2, 0.8)}
    epochs = json.loads((out / "scarl_fig4a_epochs.json").read_text())["curves"]
    assert [c["label"] for c in epochs] == ["spat_0.2: spat_madry (PGD)", "spat_0.8: spat_madry (PGD)"]
    for name in ("spat_fig2_examples", "spat_fig3_examples", "scarl_fig1_cca", "scarl_fig4c_steps"):
        assert (out / f"{name}.png").stat().st_size > 0
    for name in ("spat_fig2_examples", "spat_fig3_examples"):  # the paper shows images the model gets right
        grid = json.loads((out / f"{name}.json").read_text())
        assert grid["columns"][0]["name"] == "natural" and grid["columns"][0]["predictions"] == grid["labels"]
