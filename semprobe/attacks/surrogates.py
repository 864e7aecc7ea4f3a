"""The surrogate losses PGD and FGSM ascend (:mod:`semprobe.attacks.gradient`), each a small
named object, usable under both norms:

- ``ce()``: cross-entropy (PGD-CE);
- ``ls(alpha)``: SPAT's label-smoothed cross-entropy (PGD-LS, SPAT eq. 8-10);
  ``ls(0)`` is exactly ``ce()``;
- ``kl()``: the TRADES attack, ``KL(P_nat || P_adv)`` with ``P_nat`` computed once per
  batch (PGD-KL);
- ``cw(kappa)``: the Carlini-Wagner margin loss (CW-inf);
- ``info(heads, word_vectors, tau, c)``: SCARL's L_info through the model's own
  projection heads (the adaptive attack of SCARL Table 3).

:func:`resolve_loss` turns the names of the command line (``ce``, ``kl``, ``cw``,
``ls:ALPHA``) into these. The loss functions themselves, with their equation numbers, are
:mod:`semprobe.losses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from semprobe import losses
from semprobe.errors import ConfigError

Objective = Callable[[torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


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
        from semprobe.attacks.gradient import model_mode  # imported here: gradient.py imports this module

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
