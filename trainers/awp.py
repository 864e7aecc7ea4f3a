"""Adversarial Weight Perturbation (AWP; Wu, Xia and Wang, NeurIPS 2020), as the reference code does it.

``--awp-gamma GAMMA`` (with ``--awp-warmup EPOCHS``) adds AWP to pgd_at, trades, mart,
scarl and the spat_* methods. At every step of an AWP epoch (:meth:`WeightPerturbation.applied`):

1. the batch's adversarial examples x' are crafted on the unperturbed weights (the
   method's own attack) and kept for the step (:attr:`trainers.methods.StepContext.crafted`);
2. a proxy copy of the classifier, loaded with the current weights and in train mode,
   takes one SGD step that *increases* the method's adversarial loss on (x, x')
   (:data:`AWP_LOSSES`); the weight perturbation of each layer is that step rescaled to the
   layer's weight norm, ``v_l = ||w_l|| / (||d_l|| + 1e-20) * d_l`` with ``d_l`` the proxy's
   change, for the parameters whose name contains ``weight`` and that have at least two
   dimensions (convolutions and linear layers; not biases, not BatchNorm), as the
   reference's ``diff_in_weights``;
3. the weights become ``w + gamma v`` (``perturb``), the method's step computes its loss and
   the optimizer updates them;
4. ``gamma v`` is subtracted again (``restore``), from the updated weights.

So each layer moves by exactly gamma times its weight norm (the paper's layer-wise bound
``||v_l|| <= gamma ||w_l||``, met with equality by the one-step maximisation). The loss
that step 2 maximises is the method's adversarial loss: CE(f(x'), y) for pgd_at and
spat_madry (the reference's ``AdvWeightPerturb``), the TRADES loss for trades and
spat_trades (its ``TradesAWP``), MART's loss for mart and spat_mart, and SCARL's L_adv of
eq. 15 (its ``--base`` loss, without L_info and L_struc, which the reference has no
analogue of) for scarl. The proxy's SGD learning rate is the reference's: 0.01 for
``AdvWeightPerturb`` (also used for MART) and the run's ``--lr`` for the TRADES variant
(it cancels in the rescaling, up to the 1e-20 and rounding).

BatchNorm: the proxy's forward passes run in train mode on the proxy, whose running
statistics are overwritten from the model at every step, so they never reach the model's
(as in the reference, whose proxy is a separate network); the model's own statistics are
updated by the step's forward passes on the perturbed weights, as the reference's are.

Under several processes the proxy's gradients are averaged over the processes before its
step, so every process applies the same perturbation (the reference runs one process
over the whole batch, whose mean loss this average reproduces). AWP keeps no state
between steps (the proxy is reloaded and its optimizer has no momentum), so a resumed run
is the uninterrupted one. The first ``--awp-warmup`` epochs train without AWP: the TRADES-AWP
code's ``--awp-warmup 10`` on its 1-based epochs (AWP from epoch 10) is ``--awp-warmup 9``.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from semprobe.losses import cross_entropy
from trainers import distributed
from trainers.config import TrainConfig
from trainers.methods import StepContext, mart_loss, scarl_trades_loss, trades_loss
from trainers.spec import METHOD_SPECS

#: The reference's guard against a zero proxy step in the rescaling.
NORM_EPS = 1e-20
#: The proxy's SGD learning rate in the reference's ``AdvWeightPerturb`` (Madry AT).
PROXY_LR = 0.01

#: ``loss(classifier, x, x', y, config)``: the adversarial loss the weight perturbation increases.
AwpLoss = Callable[[nn.Module, Tensor, Tensor, Tensor, TrainConfig], Tensor]


def _madry(classifier: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, config: TrainConfig) -> Tensor:
    return cross_entropy(classifier(x_adv), y).mean()


def _trades(classifier: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, config: TrainConfig) -> Tensor:
    logits_adv = classifier(x_adv)  # the reference's order of forward passes
    return trades_loss(classifier(x), logits_adv, y, config.beta)[0]


def _mart(classifier: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, config: TrainConfig) -> Tensor:
    logits_adv = classifier(x_adv)
    return mart_loss(classifier(x), logits_adv, y, config.beta)[0]


def _scarl(classifier: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, config: TrainConfig) -> Tensor:
    if config.base == "pgd_at":
        return _madry(classifier, x, x_adv, y, config)
    logits_adv = classifier(x_adv)
    return scarl_trades_loss(classifier(x), logits_adv, y, config.beta)[0]


#: The adversarial loss AWP increases, by step function (:data:`trainers.spec.METHOD_SPECS`' ``step``).
AWP_LOSSES: dict[str, AwpLoss] = {"adversarial_ce": _madry, "trades": _trades, "mart": _mart, "scarl": _scarl}


def proxy_lr(config: TrainConfig) -> float:
    """The proxy's learning rate: the run's ``--lr`` for TRADES-style losses (``TradesAWP``), else 0.01."""
    step = METHOD_SPECS[config.method].step
    trades_style = step == "trades" or (step == "scarl" and config.base == "trades")
    return config.lr if trades_style else PROXY_LR


def perturbation_directions(model: nn.Module, proxy: nn.Module) -> OrderedDict[str, Tensor]:
    """Each perturbed layer's ``||w|| / (||d|| + 1e-20) * d``, ``d`` = proxy weight - model weight
    (the reference's ``diff_in_weights``: state-dict entries named ``*weight*`` with >= 2 dims)."""
    directions: OrderedDict[str, Tensor] = OrderedDict()
    proxy_state = proxy.state_dict()
    for name, weight in model.state_dict().items():
        if weight.dim() <= 1 or "weight" not in name:
            continue
        change = proxy_state[name] - weight
        directions[name] = weight.norm() / (change.norm() + NORM_EPS) * change
    return directions


def add_to_weights(model: nn.Module, directions: dict[str, Tensor], coefficient: float) -> None:
    """``w += coefficient * v`` for every parameter named in ``directions`` (``add_into_weights``)."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in directions:
                parameter.add_(coefficient * directions[name])


class WeightPerturbation:
    """AWP for one run: a proxy copy of ``model``, its SGD optimizer, ``gamma`` and the loss.

    ``model`` is the bare classifier the optimizer trains (the weights the perturbation
    moves); ``config`` names the method, its beta and SCARL's base.
    """

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        step = METHOD_SPECS[config.method].step
        if step not in AWP_LOSSES or config.awp_gamma is None:
            raise ValueError(f"AWP does not apply to {config.method} (awp_gamma {config.awp_gamma})")
        self.model = model
        self.config = config
        self.gamma = config.awp_gamma
        self.warmup = config.awp_warmup or 0
        self.loss = AWP_LOSSES[step]
        self.proxy = copy.deepcopy(model)
        self.proxy_optimizer = torch.optim.SGD(self.proxy.parameters(), lr=proxy_lr(config))

    def active(self, epoch: int) -> bool:
        """Whether 0-based ``epoch`` trains with AWP (after the warm-up; never with gamma 0)."""
        return self.gamma > 0 and epoch >= self.warmup

    def directions(self, x: Tensor, x_adv: Tensor, y: Tensor) -> OrderedDict[str, Tensor]:
        """The reference's ``calc_awp``: one proxy SGD step up the adversarial loss, rescaled per layer."""
        self.proxy.load_state_dict(self.model.state_dict())
        self.proxy.train()
        loss = -self.loss(self.proxy, x, x_adv, y, self.config)
        self.proxy_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for parameter in self.proxy.parameters():
            if parameter.grad is not None:
                parameter.grad = distributed.average_across(parameter.grad)
        self.proxy_optimizer.step()
        return perturbation_directions(self.model, self.proxy)

    @contextmanager
    def applied(self, ctx: StepContext, x: Tensor, y: Tensor, epoch: int) -> Iterator[None]:
        """Around one training update (loss, backward, optimizer step) of 0-based ``epoch``: craft
        x' on the unperturbed weights, perturb the weights, and restore them after the update."""
        if not self.active(epoch):
            yield
            return
        x_adv = ctx.attack(x, y)
        directions = self.directions(x, x_adv, y)
        add_to_weights(self.model, directions, self.gamma)
        ctx.crafted = x_adv
        try:
            yield
        finally:
            ctx.crafted = None
            add_to_weights(self.model, directions, -self.gamma)
