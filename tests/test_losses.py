"""Each loss formula against an independent computation on small tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from semprobe import losses

LOGITS = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -2.0], [1.0, 1.0, 1.0, 1.0]])
LABELS = torch.tensor([0, 3, 1])


def test_spat_targets_match_eq9_by_hand():
    targets = losses.smoothed_targets(torch.tensor([2]), 4, 0.3)
    assert targets.tolist()[0] == pytest.approx([0.1, 0.1, 0.7, 0.1])
    many = losses.smoothed_targets(torch.arange(5), 5, 0.37)
    torch.testing.assert_close(many.sum(1), torch.ones(5))


def test_torch_parametrization_matches_torch_label_smoothing():
    alpha = 0.25
    targets = losses.smoothed_targets(LABELS, 4, alpha, parametrization="torch")
    assert targets[0].tolist() == pytest.approx([0.75 + 0.0625, 0.0625, 0.0625, 0.0625])
    expected = F.cross_entropy(LOGITS, LABELS, label_smoothing=alpha, reduction="none")
    torch.testing.assert_close(losses.soft_cross_entropy(LOGITS, targets), expected)


def test_alpha_zero_is_cross_entropy_and_alpha_one_ignores_the_true_class():
    zero = losses.soft_cross_entropy(LOGITS, losses.smoothed_targets(LABELS, 4, 0.0))
    torch.testing.assert_close(zero, losses.cross_entropy(LOGITS, LABELS))
    one = losses.soft_cross_entropy(LOGITS, losses.smoothed_targets(LABELS, 4, 1.0))
    log_p = F.log_softmax(LOGITS, 1)
    by_hand = torch.stack([-sum(log_p[i, k] for k in range(4) if k != LABELS[i]) / 3 for i in range(3)])
    torch.testing.assert_close(one, by_hand)


def test_kl_is_kl_of_natural_from_adversarial():
    natural = torch.tensor([[1.0, 0.0, -1.0]])
    adversarial = torch.tensor([[0.0, 2.0, 0.0]])
    p, q = torch.softmax(natural, 1)[0], torch.softmax(adversarial, 1)[0]
    by_hand = sum(p[k] * math.log(p[k] / q[k]) for k in range(3))
    got = losses.kl_from_natural(adversarial, torch.softmax(natural, 1))
    assert got.item() == pytest.approx(float(by_hand), rel=1e-6)
    reverse = sum(q[k] * math.log(q[k] / p[k]) for k in range(3))
    assert got.item() != pytest.approx(float(reverse), rel=1e-3)


def test_cw_margin_by_hand():
    got = losses.cw_margin(LOGITS, LABELS, kappa=50.0)
    # image 0: z_y=2, best other 0.5 -> -(2-0.5+50); image 1: z_y=-2, best other 3 -> -(-5+50)
    expected = torch.tensor([-51.5, -45.0, -50.0])
    torch.testing.assert_close(got, expected)
    assert losses.cw_margin(LOGITS, LABELS, kappa=0.0)[1].item() == 0.0  # misclassified: flat at 0


def test_info_h_and_loss_by_hand():
    torch.manual_seed(0)
    images = F.normalize(torch.randn(3, 5), dim=1)
    words = F.normalize(torch.randn(4, 5), dim=1)
    tau, c = 0.2, 50.0

    def h(s, t):
        e = math.exp(float(s @ t) / tau)
        return e / (e + c)

    sim = images @ words.T
    torch.testing.assert_close(losses.info_bound_h(sim, tau, c)[1, 2], torch.tensor(h(images[1], words[2])))
    got = losses.info_loss(images, words, LABELS, tau, c)
    for i in range(3):
        expected = -(math.log(h(images[i], words[LABELS[i]]))
                     + sum(math.log(1 - h(images[i], words[k])) for k in range(4) if k != LABELS[i]))
        assert got[i].item() == pytest.approx(expected, rel=1e-5)


def test_info_loss_is_finite_for_a_tiny_temperature():
    images = F.normalize(torch.ones(1, 3), dim=1)
    words = F.normalize(torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]), dim=1)
    assert torch.isfinite(losses.info_loss(images, words, torch.tensor([1]), tau=1e-4, c=10.0)).all()


def test_info_nce_by_hand():
    torch.manual_seed(1)
    images = F.normalize(torch.randn(3, 5), dim=1)
    words = F.normalize(torch.randn(4, 5), dim=1)
    got = losses.info_nce_loss(images, words, LABELS, tau=0.5)
    for i in range(3):
        scores = [math.exp(float(images[i] @ words[k]) / 0.5) for k in range(4)]
        assert got[i].item() == pytest.approx(-math.log(scores[LABELS[i]] / sum(scores)), rel=1e-5)
