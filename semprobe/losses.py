"""Per-example loss formulas shared by the attacks and the trainers.

Every function returns one value per example (shape ``(n,)``) so an attack can sum it
for the gradient and a trainer can average it. Each cites the paper equation it
implements:

- :func:`smoothed_targets`, :func:`soft_cross_entropy`: SPAT eq. 8-10 (PGD-LS).
- :func:`kl_from_natural`: the TRADES KL term (SCARL eq. 12, L_adv), written as the
  TRADES code computes it.
- :func:`cw_margin`: the Carlini-Wagner margin loss as optimised by PGD (CW-inf).
- :func:`info_bound_h`, :func:`info_loss`, :func:`info_nce_loss`: SCARL Lemma 2.1 and
  eq. 5 (L_info), and the InfoNCE variant of the SCARL Table 4 ablation.
- :func:`structure_loss`: SCARL eq. 14 (L_struc = L_D + L_A, eq. 8-11), on class centres
  (a scalar for the batch, not one value per example).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LS_PARAMETRIZATIONS = ("spat", "torch")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy ``-log softmax(logits)[y]``."""
    return F.cross_entropy(logits, labels, reduction="none")


def smoothed_targets(
    labels: torch.Tensor, num_classes: int, alpha: float, parametrization: str = "spat"
) -> torch.Tensor:
    """Label-smoothed target distributions, shape ``(n, K)``, rows summing to 1.

    ``"spat"`` (SPAT eq. 9): ``1 - alpha`` on the true class, ``alpha / (K - 1)`` on
    every other class; ``alpha = 0`` is the one-hot label, ``alpha = 1`` puts all mass
    on the other classes. ``"torch"`` (``torch.nn.CrossEntropyLoss(label_smoothing=)``):
    ``alpha / K`` on every class plus ``1 - alpha`` on the true class.
    """
    if parametrization not in LS_PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {LS_PARAMETRIZATIONS}, got {parametrization!r}")
    one_hot = F.one_hot(labels, num_classes).to(torch.get_default_dtype())
    if parametrization == "spat":
        return one_hot * (1.0 - alpha) + (1.0 - one_hot) * (alpha / (num_classes - 1))
    return one_hot * (1.0 - alpha) + alpha / num_classes


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy against soft targets: ``-sum_k y_k log p_k`` (SPAT eq. 8)."""
    return -(targets.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)


def kl_from_natural(logits_adv: torch.Tensor, probs_natural: torch.Tensor) -> torch.Tensor:
    """Per-example ``KL(P_nat || P_adv)`` as the TRADES code computes it.

    ``kl_div(log_softmax(f(x_adv)), softmax(f(x)))`` summed over classes. The SCARL
    paper's text (eq. 12) writes the divergence the other way round; semprobe follows
    the TRADES code, which is what the published models were trained with.
    """
    return F.kl_div(F.log_softmax(logits_adv, dim=1), probs_natural, reduction="none").sum(dim=1)


def cw_margin(logits: torch.Tensor, labels: torch.Tensor, kappa: float = 50.0) -> torch.Tensor:
    """Carlini-Wagner margin loss to maximise (CW-inf): ``-relu(z_y - max_{j != y} z_j + kappa)``.

    This is the form used by the TRADES/MART evaluation code (confidence ``kappa`` 50):
    it grows while the true logit exceeds the best other logit, and is flat once the
    example is misclassified by a margin of ``kappa``.
    """
    true_logit = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return -F.relu(true_logit - others.max(dim=1).values + kappa)


def info_bound_h(similarity: torch.Tensor, tau: float, c: float) -> torch.Tensor:
    """SCARL Lemma 2.1: ``h(s, t) = e^{g_s(s).g_t(t)/tau} / (e^{g_s(s).g_t(t)/tau} + c)``.

    ``similarity`` holds the inner products ``g_s(s).g_t(t)``. Computed as
    ``sigmoid(sim/tau - log c)``, which is the same number without overflow.
    """
    return torch.sigmoid(similarity / tau - torch.log(torch.as_tensor(c, dtype=similarity.dtype)))


def info_loss(
    image_embeddings: torch.Tensor, word_embeddings: torch.Tensor, labels: torch.Tensor, tau: float, c: float
) -> torch.Tensor:
    """Per-example SCARL L_info (Lemma 2.1, eq. 5), to be averaged over the batch.

    ``image_embeddings`` (n, d) are ``g_s(s_i)`` and ``word_embeddings`` (K, d) are
    ``g_t(t_k)``, both L2-normalised. The positive pair of image i is its own class
    vector, the negatives are the other K-1 class vectors:
    ``-[log h(s_i, t_{y_i}) + sum_{k != y_i} log(1 - h(s_i, t_k))]``.
    ``log h = logsigmoid(z)`` and ``log(1 - h) = logsigmoid(-z)`` with
    ``z = sim/tau - log c`` keep it finite for any tau.
    """
    logits = image_embeddings @ word_embeddings.T / tau - torch.log(
        torch.as_tensor(c, dtype=image_embeddings.dtype)
    )
    positive = F.one_hot(labels, word_embeddings.shape[0]).bool()
    log_terms = torch.where(positive, F.logsigmoid(logits), F.logsigmoid(-logits))
    return -log_terms.sum(dim=1)


def info_nce_loss(
    image_embeddings: torch.Tensor, word_embeddings: torch.Tensor, labels: torch.Tensor, tau: float
) -> torch.Tensor:
    """Per-example InfoNCE over the K class vectors (the SCARL Table 4 ablation of L_info).

    ``-log softmax_k(g_s(s_i).g_t(t_k) / tau)[y_i]``.
    """
    return F.cross_entropy(image_embeddings @ word_embeddings.T / tau, labels, reduction="none")


def structure_loss(
    image_centres: torch.Tensor, word_centres: torch.Tensor, *, parts: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """SCARL eq. 14: ``L_struc = L_D + L_A``, a scalar for the whole batch.

    ``image_centres`` (P, d) are the image centres s^i of the P classes present in the
    batch (eq. 7) and ``word_centres`` (P, d) the word centres t^i of the same classes, in
    the same order (eq. 6). Both terms are smooth-L1 between a potential of the image
    side and the same potential of the word side, as in relational knowledge distillation
    (Park et al. 2019), whose distance and angle potentials these are:

    - L_D (eq. 8-9): ``phi_D(s^i, s^j) = ||s^i - s^j|| / mu``, ``mu`` the mean distance over
      the pairs of that side; the mean of ``smooth_l1(phi_D(s^i, s^j), phi_D(t^i, t^j))``
      over the ordered pairs ``i != j``. Zero with fewer than two centres.
    - L_A (eq. 10-11): ``cos angle(i, j, k) = <e^{ij}, e^{kj}>`` with
      ``e^{ij} = (s^i - s^j) / ||s^i - s^j||``; the mean of the smooth-L1 between the two
      sides' cosines over the ordered triples of distinct ``(i, j, k)``. Zero with fewer
      than three centres.

    Eq. 9 and 11 write sums; the means keep the scale independent of the number of
    classes. A zero term keeps the graph (it backpropagates zeros). With ``parts`` the
    result is the pair ``(L_D, L_A)`` instead of their sum (the trainers log both).
    """
    count = image_centres.shape[0]
    if count < 2:
        distance = image_centres.sum() * 0.0
    else:
        off_diagonal = ~torch.eye(count, dtype=torch.bool, device=image_centres.device)

        def pair_distances(points: torch.Tensor) -> torch.Tensor:  # (P, P-1): row i, then j != i
            differences = points[:, None, :] - points[None, :, :]
            return differences[off_diagonal].norm(dim=1).view(count, count - 1)

        image, word = pair_distances(image_centres), pair_distances(word_centres)
        distance = F.smooth_l1_loss(image / image.mean(), word / word.mean())
    if count < 3:
        angle = image_centres.sum() * 0.0
    else:
        index = torch.arange(count, device=image_centres.device)
        j, i, k = index[:, None, None], index[None, :, None], index[None, None, :]
        distinct = (i != j) & (k != j) & (i != k)

        def angle_cosines(points: torch.Tensor) -> torch.Tensor:  # flat, ordered by (j, i, k)
            directions = F.normalize(points[None, :, :] - points[:, None, :], dim=2)  # [j, i] = e^{ij}
            return (directions @ directions.transpose(1, 2))[distinct]  # [j, i, k]

        angle = F.smooth_l1_loss(angle_cosines(image_centres), angle_cosines(word_centres))
    return (distance, angle) if parts else distance + angle
