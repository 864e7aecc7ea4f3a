"""The L2 threat model: projection, one PGD-L2 step by hand, random start, budgets, CLI, AutoAttack."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from semprobe import attacks
from semprobe.attacks.specs import parse_attack, parse_attack_list
from semprobe.attacks.autoattack import autoattack
from semprobe.errors import ConfigError
from semprobe.robustness.accuracy import evaluate
from semprobe.models import ProjectionHeads, create_model
from semprobe.options import parse_eps, parse_norm

EPS = 0.5


def l2(t):
    """Per-example L2 norm, computed independently of semprobe (sqrt of the sum of squares)."""
    return torch.sqrt((t.reshape(len(t), -1) ** 2).sum(1))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=4, in_channels=1).eval()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.1
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    heads = ProjectionHeads(image_dim=model.feature_dim, word_dim=5, hidden_dim=16, out_dim=8).eval()
    words = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    return model, x, y, heads, words


def test_l2_projection_by_hand():
    delta = torch.zeros(3, 2, 2)
    delta[0, 0, 0], delta[0, 1, 1] = 3.0, 4.0  # norm 5: outside a ball of radius 1
    delta[1, 0, 1] = 0.6  # norm 0.6: inside
    # delta[2] = 0: inside
    projected = attacks.project_l2(delta, 1.0)
    expected = delta.clone()
    expected[0] = delta[0] / 5.0  # onto the sphere, same direction
    torch.testing.assert_close(projected, expected)
    assert torch.equal(projected[1], delta[1]) and torch.equal(projected[2], delta[2])  # unchanged, bit for bit
    assert l2(projected)[0].item() == pytest.approx(1.0)
    random = torch.randn(50, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert (l2(attacks.project_l2(random, 2.0)) <= 2.0 + 1e-5).all()


def test_one_pgd_l2_step_by_hand_on_a_linear_model():
    # logits = x.flatten() @ W.T: the gradient of CE w.r.t. x is analytic, (softmax - onehot) @ W.
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3, bias=False)).eval()
    weight = linear[1].weight.detach()
    x = torch.full((2, 3, 2, 2), 0.5)
    x[1] += 0.1 * torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 2])
    probs = torch.softmax(x.flatten(1) @ weight.T, dim=1)
    grad = ((probs - F.one_hot(y, 3).float()) @ weight).reshape(x.shape)
    direction = grad / l2(grad).view(-1, 1, 1, 1)
    for step_size, eps in ((0.05, 1.0), (0.8, 0.3)):  # a step inside the ball, and one projected back
        moved = step_size * direction
        if step_size > eps:
            moved = moved * eps / step_size
        expected = (x + moved).clamp(0, 1)
        got = attacks.pgd(linear, x, y, eps=eps, step_size=step_size, steps=1, random_start_kind="none", norm="L2")
        torch.testing.assert_close(got, expected)
        assert (l2(got - x) <= eps + 1e-5).all()
    fgm = attacks.fgsm(linear, x, y, eps=0.2, norm="L2")
    torch.testing.assert_close(fgm, (x + 0.2 * direction).clamp(0, 1))


def test_l2_random_start_lies_inside_the_ball_and_covers_the_radii():
    x = torch.full((400, 1, 4, 4), 0.5)  # centre of [0,1]: clipping never touches a 0.3 ball
    start = attacks.random_start(x, 0.3, "uniform", torch.Generator().manual_seed(0), norm="L2")
    radii = l2(start - x)
    assert (radii <= 0.3 + 1e-6).all()
    # uniform in a 16-dimensional ball: P(r <= 0.3 * q) = q^16, so radii spread below the sphere
    assert (radii < 0.29).float().mean() > 0.3
    assert (radii < 0.3 * 0.9).any() and radii.max() > 0.3 * 0.95
    # the mean radius of a uniform d-ball is d/(d+1) * eps
    assert radii.mean().item() == pytest.approx(0.3 * 16 / 17, rel=0.02)
    # directions are not axis-aligned corners (an L-inf start would sit at norm ~ 0.3*sqrt(16/3) > 0.3)
    linf_start = attacks.random_start(x, 0.3, "uniform", torch.Generator().manual_seed(0))
    assert l2(linf_start - x).mean() > 0.3
    normal = attacks.random_start(x, 1e-4, "normal", torch.Generator().manual_seed(0), norm="L2")
    assert (l2(normal - x) <= 1e-4 + 1e-7).all()


@pytest.mark.parametrize("start", ["uniform", "normal", "none"])
def test_pgd_l2_stays_in_the_ball_and_pixel_range_for_every_loss(tiny, start):
    model, x, y, heads, words = tiny
    losses = [attacks.ce(), attacks.ls(0.5), attacks.kl(), attacks.cw(), attacks.info(heads, words, tau=0.1, c=100.0)]
    for loss in losses:
        x_adv = attacks.pgd(model, x, y, eps=EPS, step_size=0.2, steps=5, loss=loss, random_start_kind=start,
                            restarts=2, generator=torch.Generator().manual_seed(0), norm="L2")
        assert (l2(x_adv - x) <= EPS + 1e-5).all(), loss.name
        assert x_adv.min() >= 0 and x_adv.max() <= 1, loss.name
        assert (x_adv != x).any(), loss.name
        # an L2 attack is not an L-inf one: some pixel moves by more than eps / sqrt(d)
        assert (x_adv - x).abs().max() > EPS / math.sqrt(x[0].numel()), loss.name


def test_linf_stays_the_default(tiny):
    model, x, y, _, _ = tiny
    run = lambda **kw: attacks.pgd(model, x, y, eps=0.1, step_size=0.03, steps=3,
                                   generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(run(), run(norm="Linf")) and torch.equal(run(), run(norm="linf"))
    assert not torch.equal(run(), run(norm="L2"))


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_pgd_l2_lowers_accuracy_on_the_digits_model(digits_model):
    model, x, y = digits_model
    clean = accuracy(model, x, y)
    fgm = attacks.fgsm(model, x, y, eps=1.0, norm="L2")
    x_adv = attacks.pgd(model, x, y, eps=1.0, step_size=0.25, steps=20, generator=torch.Generator().manual_seed(0),
                        norm="L2")
    assert (l2(x_adv - x) <= 1.0 + 1e-5).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    robust = accuracy(model, x_adv, y)
    assert robust < clean - 0.2
    assert robust <= accuracy(model, fgm, y) <= clean
    larger = attacks.pgd(model, x, y, eps=2.0, step_size=0.5, steps=20, generator=torch.Generator().manual_seed(0),
                         norm="L2")
    assert accuracy(model, larger, y) <= robust


def test_norm_and_eps_parsing():
    assert parse_norm("l2") == "L2" and parse_norm("LINF") == "Linf"
    with pytest.raises(ConfigError, match="unknown norm"):
        parse_norm("l1")
    assert parse_eps("3", norm="L2") == 3.0 and parse_eps("8/255", norm="L2") == pytest.approx(8 / 255)
    with pytest.raises(ConfigError, match="eps"):
        parse_eps("3")  # L-inf radius above 1
    with pytest.raises(ConfigError, match="eps"):
        parse_eps("-0.5", norm="L2")
    with pytest.raises(ConfigError, match="eps"):
        attacks.pgd(torch.nn.Linear(2, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), eps=-1.0,
                    step_size=0.1, steps=1, norm="L2")
    with pytest.raises(ConfigError, match="norm"):
        attacks.pgd(torch.nn.Linear(2, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), eps=0.1,
                    step_size=0.1, steps=1, norm="L3")


def test_attack_specs_carry_and_record_the_norm(digits_model):
    model, x, y = digits_model
    x, y = x[:60], y[:60]
    assert parse_attack("pgd20").norm == "Linf" and parse_attack("cw", norm="l2").norm == "L2"
    specs = parse_attack_list("natural,fgsm,pgd10,pgd-ls:0.5:10", norm="L2")
    assert all(s.norm == "L2" for s in specs)
    results = evaluate(model, x, y, specs, eps=1.0, batch_size=30, seed=0)
    assert all(r.attack["norm"] == "L2" for r in results)
    assert results[2].accuracy < results[0].accuracy
    linf = evaluate(model, x, y, [parse_attack("pgd10")], eps=0.1, batch_size=30, seed=0)
    assert linf[0].attack["norm"] == "Linf"


def test_autoattack_l2_single_component_runs(digits_model):
    model, x, y = digits_model
    x, y = x[:8], y[:8]
    x_aa = autoattack(model, x, y, eps=1.0, attacks=["apgd-ce"], seed=0, norm="L2")
    assert (l2(x_aa - x) <= 1.0 + 1e-4).all() and x_aa.min() >= 0 and x_aa.max() <= 1
    assert accuracy(model, x_aa, y) <= accuracy(model, x, y)
    # an L2 ball of radius 1 lets single pixels move further than an L-inf ball of 1/8 would
    assert (x_aa - x).abs().max() > 1.0 / 8


def test_eval_cli_with_l2_records_the_norm(digits_ckpt, tmp_path, run_cli):
    out = tmp_path / "e"
    code, stdout, err = run_cli(["eval", "--ckpt", digits_ckpt, "--attacks", "natural,pgd5", "--norm", "L2",
                                 "--eps", "1.5", "--n", "40", "--sweep-eps", "0,1.5", "--out", out])
    assert code == 0, err
    report = json.loads((out / "eval.json").read_text())
    settings = report["metadata"]["settings"]
    assert settings["norm"] == "L2" and settings["eps"] == 1.5
    results = report["checkpoints"]["digits"]["results"]
    assert [r["attack"]["norm"] for r in results] == ["L2", "L2"]
    assert results[1]["accuracy"] <= results[0]["accuracy"]
    curve = json.loads((out / "accuracy_vs_eps.json").read_text())["curves"][0]
    assert curve["fixed"]["norm"] == "L2"


@pytest.mark.parametrize("extra, fragment", [
    (["--norm", "l3"], "unknown norm"),
    (["--norm", "L2", "--eps", "-1"], "eps"),
])
def test_bad_norm_is_one_line_and_exit_2(digits_ckpt, tmp_path, run_cli, extra, fragment):
    out = tmp_path / "bad"
    code, stdout, err = run_cli(["eval", "--ckpt", digits_ckpt, "--attacks", "pgd5", "--n", "10", "--out", out, *extra])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err
    assert not out.exists()


def test_alpha_curve_l2_shares_one_l2_start_and_records_the_norm(digits_model, digits_ckpt, tmp_path, run_cli):
    from semprobe.robustness.alpha_curves import alpha_curve

    model, x, y = digits_model
    x, y = x[:80], y[:80]
    curve = alpha_curve(model, x, y, [0.0, 1.0], eps=1.0, step_size=0.25, steps=5, batch_size=40, seed=0, norm="L2")
    assert curve.settings["norm"] == "L2"
    # alpha 0 is PGD-CE from the same start: identical outcomes
    assert (curve.ls[0].per_image == curve.ce.per_image).all()
    separate = attacks.pgd(model, x, y, eps=1.0, step_size=0.25, steps=5, norm="L2",
                           generator=torch.Generator().manual_seed(0))
    assert curve.ce.robust < curve.ce.n_correct  # the L2 attack fools some images
    assert abs(accuracy(model, separate, y) * len(y) - curve.ce.robust) <= 0.15 * len(y)
    out = tmp_path / "alpha"
    code, _, err = run_cli(["alpha-curve", "--ckpt", digits_ckpt, "--alphas", "0,1", "--norm", "l2", "--eps", "1",
                            "--steps", "3", "--n", "30", "--quiet", "--out", out])
    assert code == 0, err
    report = json.loads((out / "alpha_curve.json").read_text())
    assert report["metadata"]["settings"]["norm"] == "L2" and report["curves"][0]["settings"]["norm"] == "L2"


def test_simmatrix_and_cca_adversarial_features_under_l2(digits_ckpt, tmp_path, run_cli):
    fast = ["--n-boot", "20", "--n-perm", "20", "--quiet"]
    out = tmp_path / "sim"
    code, _, err = run_cli(["simmatrix", "--ckpt", digits_ckpt, "--embedding", "random:16:0", "--adversarial",
                            "--attack", "pgd", "--steps", "3", "--norm", "L2", "--eps", "1.0", "--n", "100",
                            "--out", out] + fast)
    assert code == 0, err
    document = json.loads((out / "simmatrix.json").read_text())
    assert document["metadata"]["settings"]["attack"]["norm"] == "L2"
    out = tmp_path / "cca"
    code, _, err = run_cli(["cca", "--ckpt", digits_ckpt, "--embedding", "random:16:0", "--attack", "fgsm",
                            "--norm", "L2", "--eps", "1.0", "--n-pairs", "100", "--out", out] + fast)
    assert code == 0, err
    document = json.loads((out / "cca.json").read_text())
    assert document["metadata"]["settings"]["attack"]["norm"] == "L2"
    bad = tmp_path / "bad"
    code, _, err = run_cli(["simmatrix", "--ckpt", digits_ckpt, "--norm", "L7", "--out", bad] + fast)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unknown norm" in err
    assert not bad.exists()
