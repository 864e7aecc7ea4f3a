"""AWP (trainers.awp) against a transcription of the reference code (csdongxian/AWP), and in the trainer.

The reference is transcribed below from its ``utils_awp.py`` (``diff_in_weights``,
``add_into_weights``, ``AdvWeightPerturb.calc_awp`` and ``TradesAWP.calc_awp``) and from the
training steps of its ``train_cifar10.py`` (Madry AT) and ``trades_AWP/train_trades_cifar.py``
(TRADES), written out with plain torch calls. Both sides start from the same weights,
batch and adversarial examples; the perturbed weights and the weights after the update
must agree to float precision. MART and SCARL, which the reference has no AWP code for,
are checked against a second algorithm: the perturbation is gamma ||w|| g / ||g|| per
layer, with g the gradient of the method's adversarial loss computed by autograd.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from semprobe.models import create_model
from semprobe.options import seed_everything
from trainers import awp, loop, losses
from trainers.__main__ import main
from trainers.config import PRESETS, parse_args
from trainers.methods import METHOD_STEPS, StepContext
from trainers.network import TrainingNetwork

RUN = ["--dataset", "digits", "--arch", "small_cnn", "--max-train-images", "128", "--batch-size", "64",
       "--eval-steps", "2", "--quiet"]
QUICK = [*RUN, "--steps", "2"]
PERTURBED = ["conv1.weight", "conv2.weight", "conv3.weight", "conv4.weight", "fc.weight", "linear.weight"]


# --- the reference, transcribed -------------------------------------------------------------------
def reference_diff_in_weights(model, proxy):
    diff_dict = OrderedDict()
    for (old_k, old_w), (_, new_w) in zip(model.state_dict().items(), proxy.state_dict().items()):
        if len(old_w.size()) <= 1:
            continue
        if "weight" in old_k:
            diff_w = new_w - old_w
            diff_dict[old_k] = old_w.norm() / (diff_w.norm() + 1e-20) * diff_w
    return diff_dict


def reference_add_into_weights(model, diff, coeff):
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in diff:
                param.add_(coeff * diff[name])


def reference_step(method, model, x, x_adv, y, gamma, beta, lr):
    """One training step of the reference with AWP: (weights while perturbed, weights after)."""
    proxy = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    proxy_optim = torch.optim.SGD(proxy.parameters(), lr=lr if method == "trades" else 0.01)
    model.train()
    # calc_awp
    proxy.load_state_dict(model.state_dict())
    proxy.train()
    if method == "trades":
        loss_natural = F.cross_entropy(proxy(x), y)
        loss_robust = F.kl_div(F.log_softmax(proxy(x_adv), dim=1), F.softmax(proxy(x), dim=1),
                               reduction="batchmean")
        loss = -1.0 * (loss_natural + beta * loss_robust)
    else:
        loss = -F.cross_entropy(proxy(x_adv), y)
    proxy_optim.zero_grad()
    loss.backward()
    proxy_optim.step()
    diff = reference_diff_in_weights(model, proxy)
    reference_add_into_weights(model, diff, 1.0 * gamma)  # perturb
    perturbed = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer.zero_grad()
    if method == "trades":
        logits_adv = model(x_adv)
        loss_robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(model(x), dim=1), reduction="batchmean")
        loss = F.cross_entropy(model(x), y) + beta * loss_robust
    else:
        loss = F.cross_entropy(model(x_adv), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    reference_add_into_weights(model, diff, -1.0 * gamma)  # restore
    return perturbed, {k: v.detach().clone() for k, v in model.named_parameters()}


# --- semprobe's side ------------------------------------------------------------------------------
def batch(n=32, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def fresh_model():
    seed_everything(0)
    return create_model("small_cnn", num_classes=10, in_channels=1)


def semprobe_step(tmp_path, argv, model, x, y):
    """One update as the trainer's loop runs it; (x', weights while perturbed, weights after, config)."""
    config, _ = parse_args([*argv, *QUICK, "--out", str(tmp_path / "run")])
    ctx = StepContext(config=config, network=TrainingNetwork(model), model=model, num_classes=10,
                      generator=torch.Generator().manual_seed(3))
    perturbation = awp.WeightPerturbation(model, config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    model.train()
    with perturbation.applied(ctx, x, y, epoch=0):
        x_adv = ctx.crafted.clone()
        perturbed = {k: v.detach().clone() for k, v in model.named_parameters()}
        result = METHOD_STEPS[config.method](ctx, x, y, 0.0)
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
    assert ctx.crafted is None
    return x_adv, perturbed, {k: v.detach().clone() for k, v in model.named_parameters()}, config


def assert_close(a, b, atol=2e-6):
    assert list(a) == list(b)
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=1e-5, atol=atol), (name, (a[name] - b[name]).abs().max())


@pytest.mark.parametrize("method, gamma", [("pgd_at", "0.01"), ("trades", "0.005")])
def test_one_awp_step_matches_the_reference_code(tmp_path, method, gamma):
    x, y = batch()
    start = fresh_model().state_dict()
    model = fresh_model()
    x_adv, perturbed, after, config = semprobe_step(tmp_path, [method, "--awp-gamma", gamma], model, x, y)
    reference = fresh_model()
    assert all(torch.equal(v, start[k]) for k, v in reference.state_dict().items())
    ref_perturbed, ref_after = reference_step(method, reference, x, x_adv, y, float(gamma), config.beta, config.lr)
    assert_close(perturbed, ref_perturbed)
    assert_close(after, ref_after)
    # the perturbation moved exactly the conv and linear weights, each by gamma times its norm
    for name, weight in start.items():
        if name not in perturbed:
            continue
        moved = (perturbed[name] - weight).norm()
        if name in PERTURBED:
            assert moved.item() == pytest.approx(float(gamma) * weight.norm().item(), rel=1e-4)
        else:
            assert moved.item() == 0.0, name
    # and the update differs from the one without AWP (the test can see the perturbation)
    plain = fresh_model()
    plain_config, _ = parse_args([method, *QUICK, "--out", str(tmp_path / "plain")])
    plain_optimizer = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    ctx = StepContext(config=plain_config, network=TrainingNetwork(plain), model=plain, num_classes=10,
                      crafted=x_adv)
    plain.train()
    plain_result = METHOD_STEPS[method](ctx, x, y, 0.0)
    plain_optimizer.zero_grad()
    plain_result.loss.backward()
    plain_optimizer.step()
    assert not torch.allclose(dict(plain.named_parameters())["conv1.weight"], after["conv1.weight"], atol=1e-6)


def adversarial_loss_by_hand(method, model, x, x_adv, y, beta):
    """The adversarial loss each method's AWP increases, written out from the loss formulas."""
    logits_adv, logits_nat = model(x_adv), model(x)
    if method == "mart":
        return losses.boosted_cross_entropy(logits_adv, y).mean() + beta * losses.mart_kl(logits_adv, logits_nat, y).mean()
    kl = (F.softmax(logits_nat, 1) * (F.log_softmax(logits_nat, 1) - F.log_softmax(logits_adv, 1))).sum(1).mean()
    return F.cross_entropy(logits_adv, y) + beta * kl  # SCARL eq. 12 as L_adv


@pytest.mark.parametrize("argv", [["mart"], ["scarl", "--embedding", "random"]])
def test_the_perturbation_is_the_normalized_gradient_of_the_methods_adversarial_loss(tmp_path, argv):
    x, y = batch(seed=2)
    gamma = 0.02
    config, _ = parse_args([*argv, *QUICK, "--awp-gamma", str(gamma), "--out", str(tmp_path / "run")])
    model = fresh_model()
    model.train()
    x_adv = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))).clamp(0, 1)
    directions = awp.WeightPerturbation(model, config).directions(x, x_adv, y)
    awp.add_to_weights(model, directions, gamma)
    perturbed = {k: v.detach() for k, v in model.named_parameters()}
    start = fresh_model()
    start.train()
    loss = adversarial_loss_by_hand(argv[0], start, x, x_adv, y, config.beta)
    params = dict(start.named_parameters())
    grads = dict(zip(PERTURBED, torch.autograd.grad(loss, [params[name] for name in PERTURBED])))
    for name in PERTURBED:
        expected = params[name] + gamma * params[name].norm() * grads[name] / grads[name].norm()
        assert torch.allclose(perturbed[name], expected.detach(), rtol=1e-4, atol=1e-5), name


def test_the_proxy_leaves_the_models_batchnorm_statistics_alone(tmp_path):
    config, _ = parse_args(["trades", *QUICK, "--awp-gamma", "0.01", "--out", str(tmp_path / "run")])
    model = fresh_model()
    model.train()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    weights = {k: v.clone() for k, v in model.named_parameters()}
    x, y = batch()
    directions = awp.WeightPerturbation(model, config).directions(x, x.clamp(0, 1), y)
    assert list(directions) == PERTURBED
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())
    assert all(torch.equal(v, weights[k]) for k, v in model.named_parameters())
    assert awp.proxy_lr(config) == config.lr  # TradesAWP's proxy uses the training lr


def test_warm_up_epochs_train_exactly_as_without_awp_and_awp_epochs_differ(tmp_path):
    plain = loop.train(*parse_args(["pgd_at", *QUICK, "--epochs", "1", "--out", str(tmp_path / "plain")]))
    warm = loop.train(*parse_args(["pgd_at", *QUICK, "--epochs", "1", "--awp-gamma", "0.01", "--awp-warmup", "1",
                                   "--out", str(tmp_path / "warm")]))
    active = loop.train(*parse_args(["pgd_at", *QUICK, "--epochs", "1", "--awp-gamma", "0.01",
                                     "--out", str(tmp_path / "active")]))
    states = [torch.load(r.run_dir / "last.pt", weights_only=True)["model"] for r in (plain, warm, active)]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not torch.equal(states[0]["conv1.weight"], states[2]["conv1.weight"])


def test_a_resumed_awp_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    argv = ["trades", *QUICK, "--awp-gamma", "0.01"]
    loop.train(*parse_args([*argv, "--epochs", "2", "--out", str(tmp_path / "whole")]))
    loop.train(*parse_args([*argv, "--epochs", "1", "--out", str(tmp_path / "split")]))
    loop.train(*parse_args([*argv, "--epochs", "2", "--resume", str(tmp_path / "split")]))
    whole, split = (torch.load(tmp_path / run / "last.pt", weights_only=True)["model"]
                    for run in ("whole", "split"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)


@pytest.mark.parametrize("argv, message", [
    (["natural", "--awp-gamma", "0.01"], "--awp-gamma applies to pgd_at, trades, mart, scarl, spat_madry"),
    (["fgsm", "--awp-gamma", "0.01"], "not to fgsm"),
    (["tla", "--awp-warmup", "2"], "not to tla"),
    (["pgd_at", "--awp-gamma", "-0.01"], "--awp-gamma must be a finite number >= 0, got -0.01"),
    (["pgd_at", "--awp-gamma", "nan"], "--awp-gamma must be a finite number >= 0, got nan"),
    (["pgd_at", "--awp-gamma", "0.01", "--awp-warmup", "-1"], "--awp-warmup must be >= 0, got -1"),
    (["trades", "--awp-warmup", "3"], "--awp-warmup needs --awp-gamma"),
    (["scarl", "--base", "natural", "--awp-gamma", "0.01"], "not scarl with --base natural"),
])
def test_bad_awp_options_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main([*argv, *RUN, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not out.exists()


def test_the_awp_presets_carry_the_reference_settings(tmp_path):
    config, _ = parse_args(["trades", "--dataset", "cifar10", "--preset", "trades-awp-cifar10",
                            "--out", str(tmp_path / "run")])
    assert (config.arch, config.epochs, config.milestones) == ("wrn_34_10", 200, [100, 150])
    assert (config.awp_gamma, config.awp_warmup, config.beta) == (0.005, 9, 6.0)
    assert config.eps == pytest.approx(8 / 255) and config.step_size == pytest.approx(2 / 255)
    scarl, _ = parse_args(["scarl", "--dataset", "cifar10", "--preset", "scarl-awp-cifar10", "--arch",
                           "preact_resnet18", "--out", str(tmp_path / "scarl")])
    assert (scarl.arch, scarl.awp_gamma, scarl.lambda1, scarl.lambda2) == ("preact_resnet18", 0.005, 1.0, 1.0)
    assert {"trades-awp-cifar10", "scarl-awp-cifar10"} <= set(PRESETS)


def test_help_lists_the_awp_options_and_presets(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--awp-gamma" in text and "--awp-warmup" in text
    assert "trades-awp-cifar10" in text and "scarl-awp-cifar10" in text
