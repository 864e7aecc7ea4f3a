"""PGD family and FGSM: constraints, ls(0) == ce, restarts, mode handling, accuracy order."""

import pytest
import torch
import torch.nn.functional as F

from semprobe import attacks, losses
from semprobe.errors import ConfigError
from semprobe.models import ProjectionHeads, create_model

EPS = 0.1


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=4, in_channels=1).eval()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    heads = ProjectionHeads(image_dim=model.feature_dim, word_dim=5, hidden_dim=16, out_dim=8).eval()
    words = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    return model, x, y, heads, words


def all_losses(heads, words):
    return [attacks.ce(), attacks.ls(0.5), attacks.ls(1.0), attacks.ls(0.3, "torch"), attacks.kl(),
            attacks.cw(), attacks.info(heads, words, tau=0.1, c=100.0)]


@pytest.mark.parametrize("start", ["uniform", "normal", "none"])
def test_pgd_stays_in_the_ball_and_in_pixel_range_for_every_loss(tiny, start):
    model, x, y, heads, words = tiny
    for loss in all_losses(heads, words):
        x_adv = attacks.pgd(model, x, y, eps=EPS, step_size=0.04, steps=5, loss=loss, random_start_kind=start,
                            restarts=2, generator=torch.Generator().manual_seed(0))
        assert x_adv.shape == x.shape and not x_adv.requires_grad
        assert (x_adv - x).abs().max() <= EPS + 1e-6, loss.name
        assert x_adv.min() >= 0 and x_adv.max() <= 1, loss.name
        assert (x_adv != x).any(), loss.name


def test_ls_zero_equals_ce_step_for_step(tiny):
    model, x, y, _, _ = tiny
    for steps in range(1, 6):
        runs = [attacks.pgd(model, x, y, eps=EPS, step_size=0.02, steps=steps, loss=loss,
                            generator=torch.Generator().manual_seed(7)) for loss in (attacks.ce(), attacks.ls(0.0))]
        assert torch.equal(runs[0], runs[1]), steps


def test_same_seed_same_result_and_different_seed_differs(tiny):
    model, x, y, _, _ = tiny
    run = lambda seed: attacks.pgd(model, x, y, eps=EPS, step_size=0.02, steps=3,
                                   generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_one_pgd_step_by_hand(tiny):
    model, x, y, _, _ = tiny
    x_req = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_req), y, reduction="sum"), x_req)
    expected = torch.clamp(torch.clamp(x + 0.03 * grad.sign(), x - EPS, x + EPS), 0, 1)
    got = attacks.pgd(model, x, y, eps=EPS, step_size=0.03, steps=1, random_start_kind="none")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(attacks.fgsm(model, x, y, eps=0.03), torch.clamp(x + 0.03 * grad.sign(), 0, 1))


def test_kl_attack_computes_the_natural_prediction_once(tiny):
    model, x, y, _, _ = tiny
    calls = []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    try:
        attacks.pgd(model, x, y, eps=EPS, step_size=0.02, steps=4, loss=attacks.kl())
    finally:
        handle.remove()
    assert len(calls) == 1 + 4


def test_model_is_in_eval_mode_during_the_attack_and_mode_is_restored(tiny):
    model, x, y, _, _ = tiny
    seen = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    try:
        model.train()
        attacks.pgd(model, x, y, eps=EPS, step_size=0.02, steps=2)
        assert model.training and seen and not any(seen)
        seen.clear()
        model.eval()
        attacks.pgd(model, x, y, eps=EPS, step_size=0.02, steps=2, train_mode=True)
        assert not model.training and all(seen)
    finally:
        handle.remove()
        model.eval()


def test_restarts_keep_the_fooling_or_highest_loss_iterate(digits_model):
    model, x, y = digits_model
    x, y = x[:64], y[:64]
    kwargs = dict(eps=0.08, step_size=0.02, steps=3, loss=attacks.cw(kappa=0.0))
    first = attacks.pgd(model, x, y, generator=torch.Generator().manual_seed(5), **kwargs)
    best = attacks.pgd(model, x, y, restarts=4, generator=torch.Generator().manual_seed(5), **kwargs)
    with torch.no_grad():
        fooled_first, fooled_best = model(first).argmax(1) != y, model(best).argmax(1) != y
        loss_first = losses.cw_margin(model(first), y, 0.0)
        loss_best = losses.cw_margin(model(best), y, 0.0)
    assert (fooled_best | ~fooled_first).all()  # never lose a fooling iterate
    neither = ~fooled_first & ~fooled_best
    assert (loss_best[neither] >= loss_first[neither] - 1e-6).all()
    assert fooled_best.sum() >= fooled_first.sum()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_accuracy_order_on_a_trained_small_cnn(digits_model):
    model, x, y = digits_model
    eps = 0.1
    clean = accuracy(model, x, y)
    fgsm = accuracy(model, attacks.fgsm(model, x, y, eps=eps), y)
    by_steps = {steps: accuracy(model, attacks.pgd(model, x, y, eps=eps, step_size=eps / 4, steps=steps,
                                                   generator=torch.Generator().manual_seed(0)), y)
                for steps in (5, 20, 50)}
    assert clean > 0.8
    assert by_steps[20] <= fgsm <= clean
    noise = 2 / len(y) ** 0.5 * 0.5  # two binomial standard errors at p = 0.5
    assert by_steps[20] <= by_steps[5] + noise and by_steps[50] <= by_steps[20] + noise


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(eps=-0.1, step_size=0.01, steps=1), "eps"),
    (dict(eps=1.5, step_size=0.01, steps=1), "eps"),
    (dict(eps=0.1, step_size=0.01, steps=0), "steps"),
    (dict(eps=0.1, step_size=0.0, steps=1), "step size"),
    (dict(eps=0.1, step_size=0.01, steps=1, restarts=0), "restarts"),
    (dict(eps=0.1, step_size=0.01, steps=1, random_start_kind="gauss"), "random start"),
    (dict(eps=0.1, step_size=0.01, steps=1, loss="hinge"), "unknown PGD loss"),
])
def test_bad_budgets_are_refused(tiny, kwargs, fragment):
    model, x, y, _, _ = tiny
    with pytest.raises(ConfigError, match=fragment):
        attacks.pgd(model, x, y, **kwargs)


def test_alpha_outside_unit_interval_is_refused():
    with pytest.raises(ConfigError, match="alpha"):
        attacks.ls(1.2)
    assert attacks.resolve_loss("ls:0.25") == attacks.ls(0.25)
