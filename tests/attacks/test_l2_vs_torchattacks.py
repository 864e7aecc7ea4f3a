"""semprobe's L2 PGD against torchattacks' ``PGDL2`` (issue 14), on the same model and start.

torchattacks 3.5.1 ``PGDL2.forward`` (read from its source) and semprobe's
``pgd(..., norm="L2")`` take the same steps, with these differences, none of which
moves the accuracy by more than rounding:

- gradient normalization: torchattacks divides by ``||g||_2 + 1e-10`` (its
  ``eps_for_division``), semprobe by ``max(||g||_2, 1e-12)``; on confident images the
  gradient of torchattacks' mean loss is small enough (~1e-7) that the 1e-10 shortens
  the step measurably (see the last test);
- loss: torchattacks differentiates the batch *mean* cross-entropy, semprobe the *sum*;
  the per-example gradients differ by the factor 1/N, which the normalization removes
  (up to that 1e-10 in the denominator);
- projection: both scale ``delta`` by ``min(1, eps / ||delta||_2)`` and clip to [0, 1];
  semprobe floors the norm at 1e-12 instead of dividing by zero;
- random start (not used here: both sides start at ``x``): torchattacks draws the radius
  as ``eps * U`` (denser near the centre), semprobe as ``eps * U^(1/d)`` (uniform in the
  ball).

So with no random start and ``eps_for_division=0`` the two attacks give the same
adversarial images (the last test); with torchattacks' defaults the test asks for the same accuracy within 1 point on 256 images (the issue's
criterion) and adversarial images inside the L2 ball and [0, 1].

torchattacks pins ``requests~=2.25.1`` (and through it idna 2.x, which breaks httpx) but
never imports requests, so it is installed with ``pip install --no-deps torchattacks``;
the test is skipped where it is not installed.
"""

from __future__ import annotations

import pytest
import torch

from semprobe.attacks.gradient import pgd

torchattacks = pytest.importorskip("torchattacks")

N_IMAGES = 256
STEPS = 10


def l2(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norm, computed independently of semprobe."""
    return torch.sqrt((t.reshape(len(t), -1) ** 2).sum(1))


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on ``x``."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def torchattacks_pgdl2(model, x, y, eps, step_size, steps=STEPS):
    """torchattacks' PGDL2 from ``x`` itself (no random start)."""
    attack = torchattacks.PGDL2(model, eps=eps, alpha=step_size, steps=steps, random_start=False)
    return attack(x, y)


@pytest.mark.parametrize("eps", [0.5, 0.75])
def test_pgd_l2_accuracy_matches_torchattacks_pgdl2(digits_model, eps):
    """PGD-10 in L2 from x: the same accuracy within 1 point on 256 digits, inside the ball and [0, 1]."""
    model, x_test, y_test = digits_model
    x, y = x_test[:N_IMAGES], y_test[:N_IMAGES]
    step_size = eps / 4
    ours = pgd(model, x, y, eps=eps, step_size=step_size, steps=STEPS, random_start_kind="none", norm="L2")
    theirs = torchattacks_pgdl2(model, x, y, eps, step_size)
    clean, acc_ours, acc_theirs = accuracy(model, x, y), accuracy(model, ours, y), accuracy(model, theirs, y)
    assert 0.05 < acc_ours < clean - 0.1  # the attack bites but does not saturate, so agreeing is not trivial
    assert abs(acc_ours - acc_theirs) <= 0.01, (eps, clean, acc_ours, acc_theirs)
    assert (l2(ours - x) <= eps + 1e-5).all()
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_same_images_as_pgdl2_without_its_division_epsilon(digits_model):
    """With ``eps_for_division=0`` torchattacks' PGD-10 gives semprobe's images, image for image.

    With its default 1e-10, torchattacks' step is shorter by the factor
    ``g / (g + 1e-10)`` where ``g`` is the norm of the gradient of the *mean* loss: on
    confident images (``g`` near 1e-7 for 256 images) that is a 0.1% shorter step, enough
    to move pixels by 1e-4 after one step and to part a few trajectories over ten (measured
    on this model: 120 of 256 images differ by more than 1e-5 after one step with the
    default, none with 0). Measured here: bitwise equal (the 1/256 of the mean is a power of
    two, exact in float32); the test allows 1e-6.
    """
    model, x_test, y_test = digits_model
    x, y = x_test[:N_IMAGES], y_test[:N_IMAGES]
    eps, step_size = 1.0, 0.6  # the second step leaves the ball, so the projection is exercised
    ours = pgd(model, x, y, eps=eps, step_size=step_size, steps=STEPS, random_start_kind="none", norm="L2")
    attack = torchattacks.PGDL2(model, eps=eps, alpha=step_size, steps=STEPS, random_start=False,
                                eps_for_division=0.0)
    theirs = attack(x, y)
    norms = l2(ours - x)
    assert (norms > 0.9).float().mean() > 0.5 and (norms <= eps + 1e-5).all()  # most on the sphere (less the clip)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
