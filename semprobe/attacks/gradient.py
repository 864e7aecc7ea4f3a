"""L-infinity and L2 attacks in [0,1] pixel space: PGD with pluggable surrogate losses, and FGSM.

``pgd(model, x, y, eps=..., step_size=..., steps=..., loss=...)`` iterates
``x <- Proj_{B(x0, eps) & [0,1]}(x + step_size * sign(grad_x L))`` (SPAT eq. 7; Madry et
al.). With ``norm="L2"`` the step follows the L2-normalized gradient,
``x <- clip_[0,1](x0 + Proj_{||d||_2 <= eps}(x + step_size * g / ||g||_2 - x0))`` per
example (Madry et al., the L2 PGD of RobustBench and torchattacks' ``PGDL2``), and the
random start is uniform in the L2 ball. L is one of the surrogate losses of
:mod:`semprobe.attacks.surrogates` (PGD-CE, PGD-LS of SPAT eq. 8-10, PGD-KL, CW-inf, SCARL's
L_info), given as an object or by name (:func:`~semprobe.attacks.surrogates.resolve_loss`).

Gradients are taken with respect to the input only; the model is in eval mode during
the attack unless ``train_mode=True`` (trainers that attack in train mode ask for it),
and its mode is restored afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from semprobe.attacks.surrogates import Objective, Surrogate, resolve_loss
from semprobe.errors import ConfigError
from semprobe.models.wrapper import wrap_model
from semprobe.options import MAX_ATTACK_STEPS, parse_norm

RANDOM_STARTS = ("uniform", "normal", "none")
TRADES_START_STD = 0.001
# Floor of a per-example norm before dividing by it (a zero gradient gives a zero step).
NORM_FLOOR = 1e-12


@contextlib.contextmanager
def model_mode(module: torch.nn.Module, train: bool) -> Iterator[None]:
    """Put ``module`` in train or eval mode for the block, then restore the mode of every submodule
    as it was (a model may hold parts in another mode than its own, e.g. frozen BatchNorm)."""
    modes = [(part, part.training) for part in module.modules()]
    module.train(train)
    try:
        yield
    finally:
        for part, mode in modes:
            part.training = mode


def check_budget(eps: float, step_size: float | None = None, steps: int | None = None, norm: str = "Linf") -> None:
    """Refuse budgets outside the [0,1] pixel space before any work starts.

    An L-inf radius lies in [0, 1]; an L2 radius may exceed 1 (it bounds the norm of the
    whole perturbation), so under ``norm="L2"`` only ``eps >= 0`` (finite) is required.
    """
    if parse_norm(norm) == "L2":
        if not 0.0 <= eps < float("inf"):
            raise ConfigError(f"eps must be a finite L2 radius >= 0 (pixels are in [0,1]), got {eps}")
    elif not 0.0 <= eps <= 1.0:
        raise ConfigError(f"eps must be in [0, 1] (pixels are in [0,1]), got {eps}")
    if step_size is not None and step_size <= 0:
        raise ConfigError(f"step size must be > 0, got {step_size}")
    if steps is not None and steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if steps is not None and steps > MAX_ATTACK_STEPS:
        raise ConfigError(f"steps must be at most {MAX_ATTACK_STEPS:,}, got {steps:,}")


def per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` (one per example) shaped to broadcast against the batch ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def l2_norms(t: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each example of the batch ``t`` (over all its other dimensions)."""
    return t.flatten(1).norm(p=2, dim=1)


def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Euclidean projection of each example of ``delta`` onto the L2 ball of radius ``eps``.

    A perturbation inside the ball is returned unchanged (scaled by exactly 1); one
    outside is scaled onto the sphere, ``delta * eps / ||delta||_2``.
    """
    factor = (eps / l2_norms(delta).clamp_min(NORM_FLOOR)).clamp_(max=1.0)
    return delta * per_example(factor, delta)


def uniform_l2_ball(
    x: torch.Tensor, eps: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Noise uniform in the L2 ball of radius ``eps``, one draw per example.

    The standard construction: a direction from a normalized Gaussian, a radius
    ``eps * U^(1/d)`` with U uniform on [0, 1] and d the number of values per example
    (the volume of a d-ball grows as r^d).
    """
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    direction = direction / per_example(l2_norms(direction).clamp_min(NORM_FLOOR), x)
    dims = x[0].numel()
    radius = torch.rand(len(x), generator=generator, device=x.device, dtype=x.dtype).pow_(1.0 / dims).mul_(eps)
    return direction * per_example(radius, x)


def random_start(
    x: torch.Tensor, eps: float, kind: str, generator: torch.Generator | None = None, norm: str = "Linf"
) -> torch.Tensor:
    """The starting point of PGD: uniform in the eps-ball, TRADES' 0.001*N(0,1), or x itself.

    The ball is the L-inf ball or, with ``norm="L2"``, the L2 ball (:func:`uniform_l2_ball`;
    TRADES' Gaussian start is then projected onto the L2 ball instead of clipped).
    """
    if kind == "none":
        return x.clone()
    if parse_norm(norm) == "L2" and kind in ("uniform", "normal"):
        if kind == "uniform":
            noise = uniform_l2_ball(x, eps, generator)
        else:
            noise = project_l2(torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                               .mul_(TRADES_START_STD), eps)
        return (x + noise).clamp_(0.0, 1.0)
    if kind == "uniform":
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype).mul_(2).sub_(1).mul_(eps)
    elif kind == "normal":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype).mul_(TRADES_START_STD)
        noise.clamp_(-eps, eps)
    else:
        raise ConfigError(f"unknown random start {kind!r}; use one of {', '.join(RANDOM_STARTS)}")
    return (x + noise).clamp_(0.0, 1.0)


Observer = Callable[[int, torch.Tensor], None]


def l2_step(x: torch.Tensor, x_adv: torch.Tensor, grad: torch.Tensor, eps: float, step_size: float) -> torch.Tensor:
    """One L2 PGD step: ``step_size`` along the per-example L2-normalized gradient, then the
    perturbation projected onto the L2 ball of radius ``eps`` around ``x`` and clipped to [0,1]
    (clipping only shortens the perturbation, as ``x`` is in [0,1])."""
    moved = x_adv + grad / per_example(l2_norms(grad).clamp_min(NORM_FLOOR), grad) * step_size
    return (x + project_l2(moved - x, eps)).clamp_(0.0, 1.0)


def iterate(
    objective: Objective, x: torch.Tensor, x_adv: torch.Tensor, eps: float, step_size: float, steps: int,
    observe: Observer | None = None, norm: str = "Linf",
) -> torch.Tensor:
    """``steps`` PGD steps on ``objective`` (a bound surrogate) from ``x_adv``, projected onto
    the eps-ball (L-inf, or L2 with ``norm="L2"``: :func:`l2_step`) around ``x`` and [0,1].
    The loop of :func:`pgd`, for callers that share one random start or one bound
    objective across several attacks."""
    if parse_norm(norm) == "L2":
        def advance(x_adv, grad):
            return l2_step(x, x_adv, grad, eps, step_size)
    else:
        lower = (x - eps).clamp_(min=0.0)
        upper = (x + eps).clamp_(max=1.0)

        def advance(x_adv, grad):
            return torch.maximum(torch.minimum(x_adv.add_(grad.sign_(), alpha=step_size), upper), lower)
    for step in range(steps):
        x_adv.requires_grad_(True)
        loss, logits = objective(x_adv)
        if observe is not None:
            observe(step, logits.detach())
        (grad,) = torch.autograd.grad(loss.sum(), x_adv)
        x_adv = advance(x_adv.detach(), grad)
    if observe is not None:
        with torch.no_grad():
            observe(steps, objective(x_adv)[1])
    return x_adv


def pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    loss: str | Surrogate = "ce",
    random_start_kind: str = "uniform",
    restarts: int = 1,
    generator: torch.Generator | None = None,
    train_mode: bool = False,
    observe: Observer | None = None,
    norm: str = "Linf",
) -> torch.Tensor:
    """Projected gradient ascent on ``loss`` in the L-inf (or, ``norm="L2"``, L2) ball of
    radius ``eps`` around ``x``.

    Every iterate stays in ``[x - eps, x + eps]`` (L2: ``||x_adv - x||_2 <= eps`` per
    image, steps along the normalized gradient) and in ``[0, 1]``. With ``restarts > 1``
    the attack is rerun (new random start) on the images not yet misclassified, and per
    image the iterate that is misclassified or, failing that, has the highest loss is kept.
    ``observe(k, logits)``, if given (one restart only), sees the logits of the k-th
    iterate for k = 0..steps, so one run yields PGD-k for every k (the logits of
    iterate k < steps are those the attack computes anyway).
    Returns the adversarial images, detached. ``model`` may be any classifier module
    (wrapped with :func:`semprobe.models.wrap_model`, no normalization added).
    """
    check_budget(eps, step_size, steps, norm)
    norm = parse_norm(norm)
    model = wrap_model(model)
    if restarts < 1:
        raise ConfigError(f"restarts must be >= 1, got {restarts}")
    if observe is not None and restarts != 1:
        raise ConfigError("observing the iterates needs restarts=1")
    if random_start_kind not in RANDOM_STARTS:
        raise ConfigError(f"unknown random start {random_start_kind!r}; use one of {', '.join(RANDOM_STARTS)}")
    surrogate = resolve_loss(loss)
    x = x.detach()
    with model_mode(model, train=train_mode):
        objective = surrogate.bind(model, x, y)
        start = random_start(x, eps, random_start_kind, generator, norm)
        best = iterate(objective, x, start, eps, step_size, steps, observe, norm)
        if restarts == 1:
            return best
        with torch.no_grad():
            best_loss, logits = objective(best)
            fooled = logits.argmax(1) != y
        for _ in range(restarts - 1):
            todo = (~fooled).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            sub_objective = surrogate.bind(model, x[todo], y[todo])
            start = random_start(x[todo], eps, random_start_kind, generator, norm)
            candidate = iterate(sub_objective, x[todo], start, eps, step_size, steps, norm=norm)
            with torch.no_grad():
                cand_loss, cand_logits = sub_objective(candidate)
                cand_fooled = cand_logits.argmax(1) != y[todo]
            better = cand_fooled | (cand_loss > best_loss[todo])
            chosen = todo[better]
            best[chosen] = candidate[better]
            best_loss[chosen] = cand_loss[better]
            fooled[chosen] = cand_fooled[better]
        return best


def fgsm(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, loss: str | Surrogate = "ce",
    train_mode: bool = False, norm: str = "Linf",
) -> torch.Tensor:
    """FGSM (Goodfellow et al.): one signed-gradient step of size eps, no random start (any classifier module).

    With ``norm="L2"`` the step of length eps follows the L2-normalized gradient (the
    fast gradient method, FGM), clipped to [0,1].
    """
    check_budget(eps, norm=norm)
    model = wrap_model(model)
    surrogate = resolve_loss(loss)
    x = x.detach()
    with model_mode(model, train=train_mode):
        return iterate(surrogate.bind(model, x, y), x, x.clone(), eps, eps, 1, norm=norm)
