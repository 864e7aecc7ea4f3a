"""The loss terms only trainers need: MART, TLA's triplet, SCARL's centres and ramp.

The formulas shared with the attacks (cross-entropy, the TRADES KL, label smoothing,
L_info and InfoNCE) and SCARL's L_struc (:func:`semprobe.losses.structure_loss`, eq. 14)
live in :mod:`semprobe.losses`. Per-example terms return shape
``(n,)``; the SCARL structure terms return a scalar, since they are defined on the class
centres of a whole batch.

- :func:`boosted_cross_entropy`, :func:`mart_kl`: MART (Wang et al., 2020), the two
  terms of SPAT section 3.3's "MART + SPAT" loss.
- :func:`hardest_negatives`, :func:`tla_triplet_loss`: TLA (Mao et al., 2019), the mined
  negative and the triplet term with its feature-norm penalty, as in the authors' code.
- :func:`class_centres`: SCARL eq. 7 (image centres from the batch).
- :func:`momentum_update`: SCARL eq. 6 (word centres).
- :func:`distance_matching_loss`, :func:`angle_matching_loss`: SCARL eq. 8-9 (L_D) and
  eq. 10-11 (L_A) one at a time, from :func:`semprobe.losses.structure_loss`; their sum is
  L_struc (eq. 14).
- :func:`gaussian_ramp`: the Gaussian ramp-up of lambda_1 and lambda_2 in SCARL eq. 15.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from semprobe.losses import structure_loss

Reduce = Callable[[torch.Tensor], torch.Tensor]


#: MART's numerical guards, as in the authors' ``mart_loss`` (YisenWang/MART, train_wideresnet.py):
#: ``log(1.0001 - p_k + 1e-12)`` in the boosted CE, ``log(p_adv + 1e-12)`` in the KL and the
#: weight ``1.0000001 - p_y``. They change the loss on confident logits (``-log(1 - p_k)`` is capped
#: near ``-log(1e-4)`` = 9.2), so they are part of the method the published numbers come from.
MART_BCE_OFFSET = 1.0001
MART_LOG_EPS = 1e-12
MART_WEIGHT_OFFSET = 1.0000001


def boosted_cross_entropy(logits_adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MART's boosted CE (the BCE of SPAT section 3.3), per example, exactly as the MART code computes it.

    ``CE(f(x'), y) - log(1.0001 - max_{k != y} p_k(x') + 1e-12)``: the runner-up ``k`` is the
    most probable class other than ``y`` (the reference takes the top two of an argsort and
    picks the one that is not ``y``). The offsets keep the second term finite and bounded
    (at most ``-log(1e-4)``) however confident a wrong prediction is.
    """
    probs = F.softmax(logits_adv, dim=1)
    true_class = F.one_hot(labels, logits_adv.shape[1]).bool()
    runner_up = probs.masked_fill(true_class, float("-inf")).argmax(dim=1, keepdim=True)
    runner_up_prob = probs.gather(1, runner_up).squeeze(1)
    margin_term = -torch.log(MART_BCE_OFFSET - runner_up_prob + MART_LOG_EPS)
    return F.cross_entropy(logits_adv, labels, reduction="none") + margin_term


def mart_kl(logits_adv: torch.Tensor, logits_natural: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MART's robustness term before beta (SPAT section 3.3), per example, as the MART code computes it.

    ``KL(p(x) || p(x')) * (1.0000001 - p_y(x))`` with the KL taken against
    ``log(p(x') + 1e-12)``. The weight is not detached (as in the MART code): it also trains
    the natural prediction.
    """
    probs_natural = F.softmax(logits_natural, dim=1)
    log_probs_adv = torch.log(F.softmax(logits_adv, dim=1) + MART_LOG_EPS)
    kl = F.kl_div(log_probs_adv, probs_natural, reduction="none").sum(dim=1)
    true_prob = probs_natural.gather(1, labels[:, None]).squeeze(1)
    return kl * (MART_WEIGHT_OFFSET - true_prob)


def _unit(rows: torch.Tensor) -> torch.Tensor:
    """Rows divided by their L2 norm, as the TLA code does it: ``a / sqrt(sum(a^2 + 1e-20))``."""
    return rows / (rows * rows + 1e-20).sum(dim=1, keepdim=True).sqrt()


def hardest_negatives(
    anchors: torch.Tensor, anchor_labels: torch.Tensor, pool: torch.Tensor, pool_labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """TLA's hard negative mining (Mao et al. 2019): for each anchor, the pool item of another
    class with the largest cosine similarity. Returns ``(index, found)``; ``found`` is False
    for an anchor whose pool holds no other class (its index is then 0 and meaningless).

    The authors' code zeroes the scores of same-class items before the argmax, so an
    anchor whose other-class scores are all negative picks a same-class item; here
    same-class items are excluded outright.
    """
    scores = _unit(anchors) @ _unit(pool).T
    same_class = anchor_labels[:, None] == pool_labels[None, :]
    scores = scores.masked_fill(same_class, float("-inf"))
    best = scores.max(dim=1)
    return best.indices, torch.isfinite(best.values)


def tla_triplet_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    margin: float,
    regularization: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One TLA triplet term as the authors' code computes it (``triplet_loss``, type ``cos``):

    ``mean_i relu(d(a_i, p_i) - d(a_i, n_i) + margin) + regularization * mean(a^2 + p^2 + n^2)``

    with ``d(u, v) = 1 - |cos(u, v)|`` on the raw features and the penalty on their squared
    entries (the mean over every element of the three feature matrices). ``mask`` keeps
    the hinge of some anchors only (those that have a negative); the mean stays over all.
    """
    positive_distance = 1 - (_unit(anchors) * _unit(positives)).sum(dim=1).abs()
    negative_distance = 1 - (_unit(anchors) * _unit(negatives)).sum(dim=1).abs()
    hinge = F.relu(positive_distance - negative_distance + margin)
    if mask is not None:
        hinge = hinge * mask.to(hinge.dtype)
    norm = (anchors * anchors + positives * positives + negatives * negatives).mean()
    return hinge.mean() + regularization * norm


def class_centres(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, reduce: Reduce | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SCARL eq. 7: the mean embedding of each class present in the batch.

    Returns ``(centres, classes)``: one row per present class, in increasing class order,
    and those class indices. ``reduce`` (a differentiable sum over processes) makes the
    batch the global one under DDP; the per-class sums and counts go through it together.
    """
    sums = embeddings.new_zeros(num_classes, embeddings.shape[1]).index_add(0, labels, embeddings)
    counts = torch.bincount(labels, minlength=num_classes).to(embeddings.dtype)
    totals = torch.cat([sums, counts[:, None]], dim=1)
    if reduce is not None:
        totals = reduce(totals)
    sums, counts = totals[:, :-1], totals[:, -1].detach()
    classes = torch.nonzero(counts > 0).squeeze(1)
    return sums[classes] / counts[classes, None], classes


def momentum_update(centres: torch.Tensor, targets: torch.Tensor, momentum: float) -> torch.Tensor:
    """SCARL eq. 6: ``t_new = t + m (target - t)``, detached from the graph."""
    return centres + momentum * (targets.detach() - centres)


def distance_matching_loss(image_centres: torch.Tensor, word_centres: torch.Tensor) -> torch.Tensor:
    """L_D (SCARL eq. 8-9) alone: the first part of :func:`semprobe.losses.structure_loss`
    (which computes L_A too; the SCARL step takes both from it at once)."""
    return structure_loss(image_centres, word_centres, parts=True)[0]


def angle_matching_loss(image_centres: torch.Tensor, word_centres: torch.Tensor) -> torch.Tensor:
    """L_A (SCARL eq. 10-11) alone: the second part of :func:`semprobe.losses.structure_loss`."""
    return structure_loss(image_centres, word_centres, parts=True)[1]


def gaussian_ramp(progress: float, length: float, weight: float) -> float:
    """The Gaussian ramp-up of SCARL eq. 15: ``weight * exp(-5 (1 - t/T)^2)``, t capped at T.

    ``progress`` t and ``length`` T are in epochs; the weight is ``weight * e^-5`` at the
    start and ``weight`` from t = T on.
    """
    fraction = min(max(progress, 0.0), length) / length
    return weight * math.exp(-5.0 * (1.0 - fraction) ** 2)
