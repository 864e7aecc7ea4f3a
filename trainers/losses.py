"""The loss terms only trainers need: MART, TLA's triplet, SCARL's L_struc, ramp and centres.

The formulas shared with the attacks (cross-entropy, the TRADES KL, label smoothing,
L_info and InfoNCE) live in :mod:`semprobe.losses`. Per-example terms return shape
``(n,)``; the SCARL structure terms return a scalar, since they are defined on the class
centres of a whole batch.

- :func:`boosted_cross_entropy`, :func:`mart_kl`: MART (Wang et al., 2020), the two
  terms of SPAT section 3.3's "MART + SPAT" loss.
- :func:`triplet_loss`: TLA (Mao et al., 2019), the triplet term with an adversarial
  anchor and a mined clean negative.
- :func:`class_centres`: SCARL eq. 7 (image centres from the batch).
- :func:`momentum_update`: SCARL eq. 6 (word centres).
- :func:`distance_matching_loss`, :func:`angle_matching_loss`: SCARL eq. 8-9 (L_D) and
  eq. 10-11 (L_A); their sum is L_struc (eq. 14).
- :func:`gaussian_ramp`: the Gaussian ramp-up of lambda_1 and lambda_2 in SCARL eq. 15.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F


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


def triplet_loss(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    anchor_labels: torch.Tensor,
    candidates: torch.Tensor,
    candidate_labels: torch.Tensor,
    margin: float,
) -> torch.Tensor:
    """TLA's triplet term (Mao et al. 2019) per anchor, on L2-normalised embeddings.

    ``relu(d(a, p) - d(a, n) + margin)`` with the angular distance ``d = 1 - cos``; the
    anchor ``a`` is an adversarial embedding, ``p`` the clean embedding of the same image
    (same class), and ``n`` the candidate of another class closest to the anchor (hard
    negative mining in the batch). An anchor with no candidate of another class scores 0.
    """
    anchors, positives, candidates = (F.normalize(t, dim=1) for t in (anchors, positives, candidates))
    positive_distance = 1.0 - (anchors * positives).sum(dim=1)
    distances = 1.0 - anchors @ candidates.T
    same_class = anchor_labels[:, None] == candidate_labels[None, :]
    negative_distance = distances.masked_fill(same_class, float("inf")).min(dim=1).values
    has_negative = torch.isfinite(negative_distance)
    hinge = F.relu(positive_distance - negative_distance.where(has_negative, positive_distance) + margin)
    return hinge.where(has_negative, torch.zeros_like(hinge))


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


def _pairwise_distances(points: torch.Tensor) -> torch.Tensor:
    """Euclidean distances of all ordered pairs ``i != j``, shape ``(P, P-1)``, row i then j."""
    count = points.shape[0]
    off_diagonal = ~torch.eye(count, dtype=torch.bool, device=points.device)
    differences = points[:, None, :] - points[None, :, :]
    return differences[off_diagonal].norm(dim=1).view(count, count - 1)


def distance_matching_loss(image_centres: torch.Tensor, word_centres: torch.Tensor) -> torch.Tensor:
    """L_D (SCARL eq. 8-9): smooth-L1 between the normalised centre distances of both sides.

    ``phi_D(s^i, s^j) = ||s^i - s^j|| / mu`` with ``mu`` the mean distance over the pairs of
    that side; the loss is the mean of ``smooth_l1(phi_D(s^i, s^j), phi_D(t^i, t^j))`` over
    the ordered pairs ``i != j`` (eq. 9 writes a sum; the mean keeps the scale independent
    of the number of classes, as in relational knowledge distillation, Park et al. 2019,
    whose distance and angle potentials these are).
    Zero with fewer than two centres.
    """
    if image_centres.shape[0] < 2:
        return image_centres.sum() * 0.0
    image = _pairwise_distances(image_centres)
    word = _pairwise_distances(word_centres)
    return F.smooth_l1_loss(image / image.mean(), word / word.mean())


def _angle_cosines(points: torch.Tensor) -> torch.Tensor:
    """``cos angle(i, j, k)`` at vertex j for all ordered triples of distinct i, j, k.

    ``e^{ij} = (s^i - s^j) / ||s^i - s^j||`` and ``cos = <e^{ij}, e^{kj}>`` (eq. 10); the
    result is flat, ordered by (j, i, k).
    """
    count = points.shape[0]
    directions = F.normalize(points[None, :, :] - points[:, None, :], dim=2)  # [j, i] = e^{ij}
    cosines = directions @ directions.transpose(1, 2)  # [j, i, k]
    index = torch.arange(count, device=points.device)
    j, i, k = index[:, None, None], index[None, :, None], index[None, None, :]
    distinct = (i != j) & (k != j) & (i != k)
    return cosines[distinct]


def angle_matching_loss(image_centres: torch.Tensor, word_centres: torch.Tensor) -> torch.Tensor:
    """L_A (SCARL eq. 10-11): smooth-L1 between the angle cosines of both sides.

    The mean over the ordered triples of distinct centres ``(i, j, k)`` of
    ``smooth_l1(cos angle_ijk(s), cos angle_ijk(t))`` (eq. 11 writes a sum; see
    :func:`distance_matching_loss`). Zero with fewer than three centres.
    """
    if image_centres.shape[0] < 3:
        return image_centres.sum() * 0.0
    return F.smooth_l1_loss(_angle_cosines(image_centres), _angle_cosines(word_centres))


def gaussian_ramp(progress: float, length: float, weight: float) -> float:
    """The Gaussian ramp-up of SCARL eq. 15: ``weight * exp(-5 (1 - t/T)^2)``, t capped at T.

    ``progress`` t and ``length`` T are in epochs; the weight is ``weight * e^-5`` at the
    start and ``weight`` from t = T on.
    """
    fraction = min(max(progress, 0.0), length) / length
    return weight * math.exp(-5.0 * (1.0 - fraction) ** 2)
