"""One training step per method: craft the training inputs, run the network, return the loss.

Every method is a function ``step(ctx, x, y, progress) -> StepResult`` (which one is
named by the method's entry in :data:`trainers.spec.METHOD_SPECS`): ``ctx`` holds the
network and the settings (:class:`StepContext`), ``x, y`` are this process's batch and
``progress`` is the number of epochs done so far (fractional; SCARL's ramp-up uses it).
The loss is a mean over the batch, so DDP's gradient average is the global-batch mean.

==============  ==================================================================
``natural``     CE(f(x), y)
``fgsm``        CE(f(x'), y), x' = one FGSM step of 1.25 eps from a uniform random
                start (FGSM-AT with random start, Wong et al. 2020; SCARL's ``*``)
``pgd_at``      CE(f(x'), y), x' = PGD-CE (Madry et al. 2018)
``trades``      CE(f(x), y) + beta KL(P(x) || P(x')), x' = PGD-KL (Zhang et al. 2019)
``mart``        BCE(f(x'), y) + beta KL(P(x) || P(x')) (1 - p_y(x)) (Wang et al. 2020)
``tla``         CE(f(x'), y) + w [triplet(x', x, n) + triplet(x', x1, n)], n mined (Mao et al. 2019)
``scarl``       L_adv + lambda_1(t) L_info + lambda_2(t) L_struc (SCARL eq. 15)
``spat_*``      Madry / TRADES / MART with x' = PGD-LS(alpha) (SPAT section 3.3)
``rst``         ``trades`` on batches mixed with pseudo-labelled extra images (Carmon et
                al. 2019; :mod:`trainers.extra_data`), x' = PGD-KL, or PGD-LS(alpha)
==============  ==================================================================

The attacks run on the bare classifier in eval mode (as the TRADES and MART code do),
through :func:`semprobe.attacks.gradient.pgd`, in the threat model ``--norm`` (L-inf by default, or
L2: steps along the L2-normalized gradient, projection onto the L2 ball; FGSM-AT is then
one such step, i.e. FGM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprobe import attacks
from semprobe.losses import cross_entropy, info_loss, info_nce_loss, kl_from_natural, structure_loss
from trainers import losses, spec
from trainers.config import TrainConfig
from trainers.image_pool import ImagePool
from trainers.network import WordCentres


def _identity(tensor: Tensor) -> Tensor:
    return tensor


@dataclass
class StepContext:
    """What a method step needs besides the batch.

    ``network`` is the :class:`~trainers.network.TrainingNetwork` (or its DDP wrapper) the
    loss runs through; ``model`` the bare classifier the attack runs on; ``generator``
    draws the attack's random start; ``pool`` draws TLA's random training images.
    ``reduce`` is a differentiable sum over processes (identity for one process), used by
    the losses defined on a whole batch (SCARL's class centres).
    """

    config: TrainConfig
    network: nn.Module
    model: nn.Module
    num_classes: int
    generator: torch.Generator | None = None
    word_centres: WordCentres | None = None
    pool: ImagePool | None = None
    reduce: Callable[[Tensor], Tensor] = _identity
    surrogate: attacks.Surrogate | None = field(init=False, default=None)
    #: this batch's adversarial examples when they were crafted before the step (by AWP,
    #: before it perturbs the weights: :mod:`trainers.awp`); None otherwise
    crafted: Tensor | None = None

    def __post_init__(self) -> None:
        self.surrogate = training_surrogate(self.config)

    def attack(self, x: Tensor, y: Tensor) -> Tensor:
        """The training adversarial examples of ``x`` (the method's attack, eval mode), in the
        L-inf or L2 ball of radius ``eps`` (``config.norm``); :attr:`crafted` when set."""
        if self.crafted is not None:
            return self.crafted
        config = self.config
        return attacks.pgd(
            self.model, x, y, eps=config.eps, step_size=config.step_size, steps=config.steps,
            loss=self.surrogate, random_start_kind=config.random_start, generator=self.generator,
            norm=config.norm,
        )


@dataclass
class StepResult:
    """The loss to minimise, its terms (for the logs) and the logits the loss trains."""

    loss: Tensor
    terms: dict[str, Tensor | float]
    logits: Tensor


#: A method's training step: ``step(ctx, x, y, progress) -> StepResult``.
Step = Callable[[StepContext, Tensor, Tensor, float], StepResult]


def training_surrogate(config: TrainConfig) -> attacks.Surrogate | None:
    """The loss the training attack maximises (the method's ``attack_loss`` in
    :data:`trainers.spec.METHOD_SPECS`; SCARL's is its ``--base``'s): CE, the TRADES KL
    (SCARL eq. 12), PGD-LS (SPAT eq. 8-10), or none; RST's is the KL, or PGD-LS with ``--alpha``."""
    attack_loss = spec.attack_spec(config.method, config.base).attack_loss
    if attack_loss == spec.NO_ATTACK:
        return None
    if attack_loss == spec.TRADES_KL or (attack_loss == spec.KL_OR_LS and config.alpha is None):
        return attacks.kl()
    if attack_loss in (spec.PGD_LS, spec.KL_OR_LS):
        return attacks.ls(config.alpha, config.ls_parametrization)
    return attacks.ce()


def trades_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """TRADES' loss ``CE(f(x), y) + beta KL(P(x) || P(x'))`` (batch means) and its terms."""
    ce = cross_entropy(logits_nat, y).mean()
    kl = kl_from_natural(logits_adv, F.softmax(logits_nat, dim=1)).mean()
    return ce + beta * kl, {"ce": ce, "kl": kl}


def mart_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """MART's loss ``BCE(f(x'), y) + beta KL(P(x) || P(x')) (1 - p_y(x))`` (batch means) and its terms."""
    bce = losses.boosted_cross_entropy(logits_adv, y).mean()
    robust = losses.mart_kl(logits_adv, logits_nat, y).mean()
    return bce + beta * robust, {"bce": bce, "mart_kl": robust}


def scarl_trades_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor,
                      beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """SCARL's L_adv on the TRADES base (eq. 12): ``CE(f(x'), y) + beta KL(P(x) || P(x'))``."""
    ce_adv = cross_entropy(logits_adv, y).mean()
    kl = kl_from_natural(logits_adv, F.softmax(logits_nat, dim=1)).mean()
    return ce_adv + beta * kl, {"ce_adv": ce_adv, "kl": kl}


def natural(ctx: StepContext, x: Tensor, y: Tensor, progress: float) -> StepResult:
    """Standard training: ``CE(f(x), y)``."""
    logits = ctx.network(natural=x)["logits_nat"]
    ce = cross_entropy(logits, y).mean()
    return StepResult(ce, {"ce": ce}, logits)


def adversarial_ce(ctx: StepContext, x: Tensor, y: Tensor, progress: float) -> StepResult:
    """Adversarial training (SCARL eq. 1, Madry et al. 2018): ``CE(f(x'), y)``.

    x' is FGSM with random start (``fgsm``), PGD-CE (``pgd_at``) or PGD-LS
    (``spat_madry``, SPAT section 3.3: "Madry + SPAT").
    """
    logits = ctx.network(adversarial=ctx.attack(x, y))["logits_adv"]
    ce_adv = cross_entropy(logits, y).mean()
    return StepResult(ce_adv, {"ce_adv": ce_adv}, logits)


def trades(ctx: StepContext, x: Tensor, y: Tensor, progress: float) -> StepResult:
    """TRADES (Zhang et al. 2019; SPAT section 3.3): ``CE(f(x), y) + beta KL(P(x) || P(x'))``.

    The KL is :func:`semprobe.losses.kl_from_natural` (the TRADES code's direction);
    x' is PGD-KL for ``trades`` and PGD-LS for ``spat_trades`` ("TRADES + SPAT").
    """
    outputs = ctx.network(natural=x, adversarial=ctx.attack(x, y))
    loss, terms = trades_loss(outputs["logits_nat"], outputs["logits_adv"], y, ctx.config.beta)
    return StepResult(loss, terms, outputs["logits_adv"])


def mart(ctx: StepContext, x: Tensor, y: Tensor, progress: float) -> StepResult:
    """MART (Wang et al. 2020; SPAT section 3.3): ``BCE(f(x'), y) + beta KL(P(x) || P(x')) (1 - p_y(x))``.

    x' is PGD-CE for ``mart`` and PGD-LS for ``spat_mart`` ("MART + SPAT").
    """
    outputs = ctx.network(natural=x, adversarial=ctx.attack(x, y))
    loss, terms = mart_loss(outputs["logits_nat"], outputs["logits_adv"], y, ctx.config.beta)
    return StepResult(loss, terms, outputs["logits_adv"])


def tla(ctx: StepContext, x: Tensor, y: Tensor, progress: float) -> StepResult:
    """TLA (Mao et al. 2019) as the authors' code trains it (``train_update_fast_triplet.py`` with
    their CIFAR-10 configuration: ``Use_A_Ap_B`` and ``Use_A1_Ap_B``, ``mul_num`` 10, type ``cos``):

    ``CE(f(x'), y) + w * [T(x', x, n) + T(x', x1, n)]`` on the penultimate features, where

    - x' is PGD-CE of x (the anchor);
    - the positives are x itself and x1, a random clean training image of the same class;
    - n is a hard negative: among ``--tla-pool`` batches of random training images, the one
      of another class whose features (eval mode, no gradient) are closest in angle to the
      anchor's (:func:`trainers.losses.hardest_negatives`);
    - T is :func:`trainers.losses.tla_triplet_loss` (distance 1 - |cos|, margin, and the
      penalty ``--tla-regularization`` on the features' squared entries).

    Defaults: margin 0.03, w = 2, pool 10, penalty 1e-3 (the authors' CIFAR-10 values).
    The pool comes from the non-augmented training split (theirs from an augmented stream).
    """
    config = ctx.config
    x_adv = ctx.attack(x, y)
    pool_x, pool_y = ctx.pool.draw(config.tla_pool * len(y))
    with attacks.model_mode(ctx.model, train=False), torch.no_grad():
        index, found = losses.hardest_negatives(ctx.model.features(x_adv), y, ctx.model.features(pool_x), pool_y)
    extra = {"same_class": ctx.pool.same_class(y), "negative": pool_x[index]}
    outputs = ctx.network(natural=x, adversarial=x_adv, extra=extra)
    ce_adv = cross_entropy(outputs["logits_adv"], y).mean()
    anchors, negatives = outputs["features_adv"], outputs["features_negative"]
    triplet_self = losses.tla_triplet_loss(anchors, outputs["features_nat"], negatives, config.tla_margin,
                                           config.tla_regularization, found)
    triplet_class = losses.tla_triplet_loss(anchors, outputs["features_same_class"], negatives, config.tla_margin,
                                            config.tla_regularization, found)
    loss = ce_adv + config.tla_weight * (triplet_self + triplet_class)
    return StepResult(loss, {"ce_adv": ce_adv, "triplet": triplet_self, "triplet_class": triplet_class},
                      outputs["logits_adv"])


def scarl(ctx: StepContext, x: Tensor, y: Tensor, progress: float) -> StepResult:
    """SCARL eq. 15: ``L_adv + lambda_1(t) L_info + lambda_2(t) L_struc``.

    - L_adv (``--base``): ``trades`` is eq. 12, ``CE(f(x'), y) + beta KL(P(x) || P(x'))``
      with x' from PGD-KL (the KL in the TRADES code's direction: the paper's text writes
      KL(P(x') || P(x))); ``pgd_at`` is ``CE(f(x'), y)`` with PGD-CE; ``natural`` is
      ``CE(f(x), y)`` and the semantic terms then use the natural features (Table 2).
    - L_info (eq. 13, Lemma 2.1) on g_s(F(x')) against g_t of all K class vectors:
      :func:`semprobe.losses.info_loss`, or InfoNCE with ``--info infonce`` (Table 4).
    - L_struc = L_D + L_A (eq. 8-11, 14; :func:`semprobe.losses.structure_loss`) between
      the batch's image centres (eq. 7) and the word centres after this step's momentum
      update (eq. 6), over the classes present in the (global) batch.
    - lambda(t) = lambda * exp(-5 (1 - t/T)^2), t in epochs, T = ``--ramp-epochs``.
    """
    config = ctx.config
    x_adv = None if config.base == "natural" else ctx.attack(x, y)
    natural_input = x if config.base in ("trades", "natural") else None
    outputs = ctx.network(natural=natural_input, adversarial=x_adv)
    terms: dict[str, Tensor | float] = {}
    if config.base == "trades":
        loss, terms = scarl_trades_loss(outputs["logits_nat"], outputs["logits_adv"], y, config.beta)
    elif config.base == "pgd_at":
        loss = terms["ce_adv"] = cross_entropy(outputs["logits_adv"], y).mean()
    else:
        loss = terms["ce"] = cross_entropy(outputs["logits_nat"], y).mean()
    images, words = outputs["image_proj"], outputs["word_proj"]
    if config.use_info:
        if config.info == "infonce":
            terms["info"] = info_nce_loss(images, words, y, config.tau).mean()
        else:
            terms["info"] = info_loss(images, words, y, config.tau, config.c).mean()
        terms["lambda1"] = losses.gaussian_ramp(progress, config.ramp_epochs, config.lambda1)
        loss = loss + terms["lambda1"] * terms["info"]
    if config.use_struc:
        word_centres = ctx.word_centres.update(words)
        image_centres, classes = losses.class_centres(images, y, ctx.num_classes, ctx.reduce)
        distance, angle = structure_loss(image_centres, word_centres[classes], parts=True)  # eq. 14
        terms["struc_distance"], terms["struc_angle"] = distance, angle
        terms["struc"] = distance + angle
        terms["lambda2"] = losses.gaussian_ramp(progress, config.ramp_epochs, config.lambda2)
        loss = loss + terms["lambda2"] * terms["struc"]
    logits = outputs["logits_nat"] if x_adv is None else outputs["logits_adv"]
    return StepResult(loss, terms, logits)


#: The step functions by name, as :data:`trainers.spec.METHOD_SPECS` names them.
STEP_FUNCTIONS: dict[str, Step] = {step.__name__: step for step in (natural, adversarial_ce, trades, mart, tla, scarl)}
#: Each method's step, looked up through its spec (``loop`` calls ``METHOD_STEPS[config.method]``).
METHOD_STEPS: dict[str, Step] = {name: STEP_FUNCTIONS[entry.step] for name, entry in spec.METHOD_SPECS.items()}
