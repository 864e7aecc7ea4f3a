"""L-infinity and L2 attacks in [0,1] pixel space: PGD with pluggable surrogate losses, and FGSM.

``pgd(model, x, y, eps=..., step_size=..., steps=..., loss=...)`` iterates
``x <- Proj_{B(x0, eps) & [0,1]}(x + step_size * sign(grad_x L))`` (SPAT eq. 7; Madry et
al.). With ``norm="L2"`` the step follows the L2-normalized gradient,
``x <- clip_[0,1](x0 + Proj_{||d||_2 <= eps}(x + step_size * g / ||g||_2 - x0))`` per
example (Madry et al., the L2 PGD of RobustBench and torchattacks' ``PGDL2``), and the
random start is uniform in the L2 ball. L is one of the surrogate losses below, each a
small named object, usable under both norms:

- ``ce()``: cross-entropy (PGD-CE);
- ``ls(alpha)``: SPAT's label-smoothed cross-entropy (PGD-LS, SPAT eq. 8-10);
  ``ls(0)`` is exactly ``ce()``;
- ``kl()``: the TRADES attack, ``KL(P_nat || P_adv)`` with ``P_nat`` computed once per
  batch (PGD-KL);
- ``cw(kappa)``: the Carlini-Wagner margin loss (CW-inf);
- ``info(heads, word_vectors, tau, c)``: SCARL's L_info through the model's own
  projection heads (the adaptive attack of SCARL Table 3).

Gradients are taken with respect to the input only; the model is in eval mode during
the attack unless ``train_mode=True`` (trainers that attack in train mode ask for it),
and its mode is restored afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from semprobe import losses
from semprobe.errors import ConfigError
from semprobe.models.wrapper import wrap_model
from semprobe.options import MAX_ATTACK_STEPS, parse_norm

Objective = Callable[[torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]
RANDOM_STARTS = ("uniform", "normal", "none")
TRADES_START_STD = 0.001
# Floor of a per-example norm before dividing by it (a zero gradient gives a zero step).
NORM_FLOOR = 1e-12


class Surrogate:
    """A surrogate loss for PGD. ``bind(model, x, y)`` returns the objective to maximise.

    The objective maps ``x_adv`` to ``(per-example loss, logits)``; anything that depends
    only on the natural input (the natural prediction of the KL attack, the word-side
    embeddings of the info attack) is computed once in ``bind``.
    """

    name = "surrogate"

    def bind(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Objective:
        raise NotImplementedError

    def describe(self) -> dict:
        """The loss's settings, as recorded in results."""
        return {"loss": self.name}


@dataclass(frozen=True)
class CrossEntropy(Surrogate):
    """PGD-CE: maximise ``CE(f(x_adv), y)``."""

    name = "ce"

    def bind(self, model, x, y):
        def objective(x_adv):
            logits = model(x_adv)
            return losses.cross_entropy(logits, y), logits

        return objective


@dataclass(frozen=True)
class LabelSmoothed(Surrogate):
    """PGD-LS (SPAT eq. 8-10): maximise the cross-entropy against smoothed targets."""

    alpha: float
    parametrization: str = "spat"
    name = "ls"

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"label smoothing alpha must be in [0, 1], got {self.alpha}")
        if self.parametrization not in losses.LS_PARAMETRIZATIONS:
            raise ConfigError(
                f"unknown label-smoothing parametrization {self.parametrization!r}; "
                f"use one of {', '.join(losses.LS_PARAMETRIZATIONS)}"
            )

    def bind(self, model, x, y):
        targets = None

        def objective(x_adv):
            nonlocal targets
            logits = model(x_adv)
            if targets is None:
                targets = losses.smoothed_targets(y, logits.shape[1], self.alpha, self.parametrization).to(logits)
            return losses.soft_cross_entropy(logits, targets), logits

        return objective

    def describe(self):
        return {"loss": self.name, "alpha": self.alpha, "ls_parametrization": self.parametrization}


@dataclass(frozen=True)
class KLDivergence(Surrogate):
    """PGD-KL, the TRADES attack: maximise ``KL(P_nat || P_adv)``; ``P_nat`` once per batch."""

    name = "kl"

    def bind(self, model, x, y):
        with torch.no_grad():
            probs_natural = torch.softmax(model(x), dim=1)

        def objective(x_adv):
            logits = model(x_adv)
            return losses.kl_from_natural(logits, probs_natural), logits

        return objective


@dataclass(frozen=True)
class CarliniWagner(Surrogate):
    """CW-inf: maximise the margin loss ``-relu(z_y - max_{j!=y} z_j + kappa)``."""

    kappa: float = 50.0
    name = "cw"

    def bind(self, model, x, y):
        def objective(x_adv):
            logits = model(x_adv)
            return losses.cw_margin(logits, y, self.kappa), logits

        return objective

    def describe(self):
        return {"loss": self.name, "kappa": self.kappa}


@dataclass(frozen=True)
class InfoBound(Surrogate):
    """SCARL's adaptive attack (Table 3): maximise L_info through the model's own heads.

    ``heads`` is a ``ProjectionHeads`` (g_s, g_t), ``word_vectors`` the (K, d) class
    vectors it was trained with, ``tau`` and ``c`` the temperature and constant of
    Lemma 2.1.
    """

    heads: torch.nn.Module
    word_vectors: torch.Tensor
    tau: float
    c: float
    name = "info"

    def bind(self, model, x, y):
        heads_were_training = self.heads.training
        self.heads.eval()
        with torch.no_grad():
            words = self.heads.word(self.word_vectors.to(device=x.device, dtype=x.dtype))
        self.heads.train(heads_were_training)

        def objective(x_adv):
            features = model.features(x_adv)
            logits = model.classifier(features)
            with model_mode(self.heads, train=False):
                images = self.heads.image(features)
            return losses.info_loss(images, words, y, self.tau, self.c), logits

        return objective

    def describe(self):
        return {"loss": self.name, "tau": self.tau, "c": self.c}


def ce() -> CrossEntropy:
    """PGD-CE surrogate."""
    return CrossEntropy()


def ls(alpha: float, parametrization: str = "spat") -> LabelSmoothed:
    """PGD-LS surrogate with smoothing ``alpha`` (SPAT eq. 9 by default)."""
    return LabelSmoothed(float(alpha), parametrization)


def kl() -> KLDivergence:
    """PGD-KL (TRADES) surrogate."""
    return KLDivergence()


def cw(kappa: float = 50.0) -> CarliniWagner:
    """CW-inf surrogate."""
    return CarliniWagner(float(kappa))


def info(heads: torch.nn.Module, word_vectors: torch.Tensor, tau: float, c: float) -> InfoBound:
    """SCARL L_info surrogate through ``heads``."""
    return InfoBound(heads, torch.as_tensor(word_vectors), float(tau), float(c))


NAMED_LOSSES = {"ce": ce, "kl": kl, "cw": cw}


def resolve_loss(loss: str | Surrogate) -> Surrogate:
    """A surrogate from a name (``ce``, ``kl``, ``cw``, ``ls:ALPHA``) or pass one through."""
    if isinstance(loss, Surrogate):
        return loss
    if isinstance(loss, str) and loss in NAMED_LOSSES:
        return NAMED_LOSSES[loss]()
    if isinstance(loss, str) and loss.startswith("ls:"):
        try:
            return ls(float(loss[3:]))
        except ValueError:
            pass
    raise ConfigError(f"unknown PGD loss {loss!r}; use ce, kl, cw, ls:ALPHA, or an attacks.info(...) object")


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
