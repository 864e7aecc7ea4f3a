"""Every trainer loss against an independent computation: plain loops, float64, math.exp.

The method-level checks (TRADES, MART, SCARL's L_info and L_struc) run the method step
functions of ``trainers.methods`` on a small CNN and recompute the same terms by hand
from the network's outputs.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from semprobe.data import load_dataset
from semprobe.losses import kl_from_natural, structure_loss
from semprobe.models import ProjectionHeads, create_model
from trainers import losses
from trainers.config import resolve
from trainers.distributed import GlobalBatchNorm, convert_batchnorm
from trainers.methods import StepContext, mart, scarl, tla, trades
from trainers.network import FixedWords, TrainingNetwork, WordCentres

K = 10


def smooth_l1(a: float, b: float) -> float:
    d = abs(a - b)
    return 0.5 * d * d if d < 1.0 else d - 0.5


def norm(v: torch.Tensor) -> float:
    return math.sqrt(sum(float(c) ** 2 for c in v))


def dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum(float(p) * float(q) for p, q in zip(a, b))


def loop_distance_loss(image: torch.Tensor, word: torch.Tensor) -> float:
    pairs = [(i, j) for i in range(len(image)) for j in range(len(image)) if i != j]
    d_image = [norm(image[i] - image[j]) for i, j in pairs]
    d_word = [norm(word[i] - word[j]) for i, j in pairs]
    mu_image, mu_word = sum(d_image) / len(pairs), sum(d_word) / len(pairs)
    return sum(smooth_l1(a / mu_image, b / mu_word) for a, b in zip(d_image, d_word)) / len(pairs)


def loop_angle_loss(image: torch.Tensor, word: torch.Tensor) -> float:
    def cosine(points, i, j, k):
        e_ij, e_kj = points[i] - points[j], points[k] - points[j]
        return dot(e_ij, e_kj) / (norm(e_ij) * norm(e_kj))

    triples = list(itertools.permutations(range(len(image)), 3))
    return sum(smooth_l1(cosine(image, *t), cosine(word, *t)) for t in triples) / len(triples)


def loop_kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) = sum_k p_k log(p_k / q_k)."""
    return sum(pk * math.log(pk / qk) for pk, qk in zip(p, q))


def softmax_rows(logits: torch.Tensor) -> list[list[float]]:
    rows = []
    for row in logits.tolist():
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        rows.append([e / sum(exps) for e in exps])
    return rows


# ----------------------------------------------------------------------------- TRADES KL


def test_kl_term_is_natural_to_adversarial_as_in_the_trades_code():
    torch.manual_seed(0)
    logits_adv, logits_nat = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    p_nat, p_adv = softmax_rows(logits_nat), softmax_rows(logits_adv)
    ours = kl_from_natural(logits_adv, F.softmax(logits_nat, dim=1))
    expected = [loop_kl(p, q) for p, q in zip(p_nat, p_adv)]
    reverse = [loop_kl(q, p) for p, q in zip(p_nat, p_adv)]
    assert ours.tolist() == pytest.approx(expected, rel=1e-10)
    assert max(abs(a - b) for a, b in zip(expected, reverse)) > 1e-3  # the direction matters


# ----------------------------------------------------------------------------- MART


def reference_mart_loss(logits: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """The loss of the authors' ``mart_loss`` (YisenWang/MART), transcribed from its last lines."""
    kl = torch.nn.KLDivLoss(reduction="none")
    batch_size = len(y)
    adv_probs = F.softmax(logits_adv, dim=1)
    tmp1 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, (y.unsqueeze(1)).long()).squeeze()
    loss_robust = (1.0 / batch_size) * torch.sum(
        torch.sum(kl(torch.log(adv_probs + 1e-12), nat_probs), dim=1) * (1.0000001 - true_probs)
    )
    return loss_adv + float(beta) * loss_robust


@pytest.mark.parametrize("scale", [1.0, 10.0, 40.0, 200.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mart_terms_equal_the_reference_mart_loss(scale, dtype):
    """Confident logits included: the guards (1.0001 - p, 1e-12, 1.0000001 - p_y) are the reference's."""
    generator = torch.Generator().manual_seed(int(scale))
    logits = torch.randn(64, K, generator=generator, dtype=dtype) * scale
    logits_adv = torch.randn(64, K, generator=generator, dtype=dtype) * scale
    y = torch.randint(0, K, (64,), generator=generator)
    ours = losses.boosted_cross_entropy(logits_adv, y).mean() + 5.0 * losses.mart_kl(logits_adv, logits, y).mean()
    reference = reference_mart_loss(logits, logits_adv, y, 5.0)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    assert ours.item() == pytest.approx(reference.item(), rel=tolerance, abs=tolerance)


def test_boosted_cross_entropy_matches_its_formula():
    torch.manual_seed(1)
    logits, labels = torch.randn(6, 5, dtype=torch.float64) * 3, torch.tensor([0, 1, 2, 3, 4, 0])
    expected = []
    for p, y in zip(softmax_rows(logits), labels.tolist()):
        runner_up = max(p[k] for k in range(len(p)) if k != y)
        expected.append(-math.log(p[y]) - math.log(1.0001 - runner_up + 1e-12))
    assert losses.boosted_cross_entropy(logits, labels).tolist() == pytest.approx(expected, rel=1e-9)


def test_boosted_cross_entropy_caps_the_runner_up_term_as_the_reference_does():
    logits = torch.tensor([[-1000.0, 1000.0, 0.0], [1000.0, -1000.0, 0.0]])
    values = losses.boosted_cross_entropy(logits, torch.tensor([0, 0]))
    assert torch.isfinite(values).all()
    assert values[0].item() == pytest.approx(2000.0 - math.log(1e-4 + 1e-12), rel=1e-6)  # -log p_y + capped term
    assert values[1].item() == pytest.approx(-math.log(1.0001 + 1e-12), abs=1e-6)  # right and sure: near 0


def test_mart_kl_is_weighted_by_the_natural_miss_probability():
    torch.manual_seed(2)
    logits_adv, logits_nat = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 1])
    p_nat, p_adv = softmax_rows(logits_nat), softmax_rows(logits_adv)
    expected = [
        sum(pk * (math.log(pk) - math.log(qk + 1e-12)) for pk, qk in zip(p, q)) * (1.0000001 - p[y])
        for p, q, y in zip(p_nat, p_adv, labels.tolist())
    ]
    assert losses.mart_kl(logits_adv, logits_nat, labels).tolist() == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------- TLA


def test_hardest_negative_is_the_most_similar_image_of_another_class():
    generator = torch.Generator().manual_seed(3)
    anchors = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    pool = torch.randn(12, 4, generator=generator, dtype=torch.float64)
    labels, pool_labels = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([0, 1, 2] * 4)
    index, found = losses.hardest_negatives(anchors, labels, pool, pool_labels)
    for i in range(5):
        cosines = {j: dot(anchors[i], pool[j]) / (norm(anchors[i]) * norm(pool[j])) for j in range(12)
                   if pool_labels[j] != labels[i]}
        assert int(index[i]) == max(cosines, key=cosines.get)
    assert found.all()
    _, none = losses.hardest_negatives(anchors[:1], labels[:1], pool[:1], pool_labels[:1])  # only its own class
    assert not none.any()


def test_tla_triplet_equals_the_authors_formula_by_hand():
    generator = torch.Generator().manual_seed(4)
    a, p, n = (torch.randn(6, 5, generator=generator, dtype=torch.float64) for _ in range(3))
    margin, regularization = 0.3, 1e-3
    hinges = []
    for i in range(6):
        d_pos = 1 - abs(dot(a[i], p[i]) / (norm(a[i]) * norm(p[i])))
        d_neg = 1 - abs(dot(a[i], n[i]) / (norm(a[i]) * norm(n[i])))
        hinges.append(max(0.0, d_pos - d_neg + margin))
    squares = sum(float(v) ** 2 for t in (a, p, n) for v in t.flatten()) / (6 * 5)
    expected = sum(hinges) / 6 + regularization * squares
    assert float(losses.tla_triplet_loss(a, p, n, margin, regularization)) == pytest.approx(expected, rel=1e-12)
    mask = torch.tensor([True, False, True, True, False, True])
    masked = sum(h for h, keep in zip(hinges, mask.tolist()) if keep) / 6 + regularization * squares
    assert float(losses.tla_triplet_loss(a, p, n, margin, regularization, mask)) == pytest.approx(masked, rel=1e-12)


# ----------------------------------------------------------------------------- L_struc


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_distance_and_angle_losses_match_plain_loops(count):
    generator = torch.Generator().manual_seed(count)
    image = torch.randn(count, 6, generator=generator, dtype=torch.float64) * 2  # some |differences| > 1
    word = torch.randn(count, 6, generator=generator, dtype=torch.float64)
    assert float(losses.distance_matching_loss(image, word)) == pytest.approx(loop_distance_loss(image, word), rel=1e-9)
    expected_angle = loop_angle_loss(image, word) if count >= 3 else 0.0
    assert float(losses.angle_matching_loss(image, word)) == pytest.approx(expected_angle, rel=1e-9, abs=1e-15)


def test_structure_losses_are_zero_for_too_few_centres_and_keep_the_graph():
    one = torch.randn(1, 4, requires_grad=True)
    for loss in (losses.distance_matching_loss(one, torch.randn(1, 4)), losses.angle_matching_loss(one, torch.randn(1, 4))):
        assert loss.item() == 0.0
        loss.backward()  # a zero term still backpropagates


def test_structure_loss_of_two_right_triangles_by_hand():
    """SCARL eq. 14 on a 3-4-5 triangle (image centres) against a right isosceles one (word centres).

    L_D: the image distances 3, 4, 5 over their mean 4 are 0.75, 1, 1.25; the word distances
    1, 1, sqrt 2 over their mean m = (2 + sqrt 2) / 3. L_A: the cosines at the three vertices
    are 0, 3/5, 4/5 against 0, cos 45, cos 45. Each pair (triple) appears once per order, so
    the means over ordered pairs (triples) are the means over the three sides (vertices).
    """
    image = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    word = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    m = (2 + math.sqrt(2)) / 3
    half_square = lambda d: 0.5 * d * d  # smooth-L1 below 1  # noqa: E731
    expected_distance = (half_square(0.75 - 1 / m) + half_square(1 - 1 / m) + half_square(1.25 - math.sqrt(2) / m)) / 3
    expected_angle = (half_square(0.0) + half_square(0.6 - math.sqrt(0.5)) + half_square(0.8 - math.sqrt(0.5))) / 3
    distance, angle = structure_loss(image, word, parts=True)
    assert float(distance) == pytest.approx(expected_distance, rel=1e-12)
    assert float(angle) == pytest.approx(expected_angle, rel=1e-12)
    assert float(structure_loss(image, word)) == pytest.approx(expected_distance + expected_angle, rel=1e-12)
    assert float(structure_loss(image, word)) == pytest.approx(0.0085721, abs=1e-7)  # the numbers worked on paper


@pytest.mark.parametrize("count", [1, 2, 3, 6])
def test_structure_loss_is_the_sum_of_the_loops_and_the_trainers_terms(count):
    generator = torch.Generator().manual_seed(10 + count)
    image = torch.randn(count, 5, generator=generator, dtype=torch.float64) * 2
    word = torch.randn(count, 5, generator=generator, dtype=torch.float64)
    expected = (loop_distance_loss(image, word) if count >= 2 else 0.0) + (
        loop_angle_loss(image, word) if count >= 3 else 0.0)
    total = structure_loss(image, word)
    assert total.shape == () and float(total) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    distance, angle = structure_loss(image, word, parts=True)
    assert torch.equal(distance + angle, total)  # the SCARL step logs the parts and adds them
    assert torch.equal(distance, losses.distance_matching_loss(image, word))
    assert torch.equal(angle, losses.angle_matching_loss(image, word))


def test_structure_loss_ignores_where_and_how_large_each_side_is():
    """Both potentials are relative (distances over their mean, angles): moving or scaling a
    side leaves L_struc unchanged, and a scaled copy of the words costs nothing."""
    generator = torch.Generator().manual_seed(5)
    image = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    word = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    moved = structure_loss(3.0 * image + 1.5, word - 2.0)
    assert float(moved) == pytest.approx(float(structure_loss(image, word)), rel=1e-9)
    assert float(structure_loss(image, 0.5 * image + 7.0)) == pytest.approx(0.0, abs=1e-12)


def test_class_centres_average_only_the_classes_present():
    embeddings = torch.arange(12, dtype=torch.float64).view(6, 2)
    labels = torch.tensor([4, 1, 4, 7, 1, 4])
    centres, classes = losses.class_centres(embeddings, labels, K)
    assert classes.tolist() == [1, 4, 7]
    for row, k in zip(centres, classes.tolist()):
        members = [embeddings[i] for i in range(6) if labels[i] == k]
        assert row.tolist() == pytest.approx((sum(members) / len(members)).tolist())


def test_class_centres_reduce_combines_sums_and_counts():
    """Two halves reduced by addition give the centres of the whole batch (what DDP does)."""
    embeddings, labels = torch.randn(8, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 2, 0, 0, 2, 2])
    other_half = torch.cat([embeddings[4:].new_zeros(K, 3).index_add(0, labels[4:], embeddings[4:]),
                            torch.bincount(labels[4:], minlength=K).to(torch.float64)[:, None]], dim=1)
    centres, classes = losses.class_centres(embeddings[:4], labels[:4], K, reduce=lambda t: t + other_half)
    whole, whole_classes = losses.class_centres(embeddings, labels, K)
    assert classes.tolist() == whole_classes.tolist()
    assert torch.allclose(centres, whole)


def test_momentum_update_moves_by_m_and_is_detached():
    centres, target = torch.zeros(3, 2), torch.ones(3, 2, requires_grad=True)
    updated = losses.momentum_update(centres, target, 0.25)
    assert updated.tolist() == [[0.25, 0.25]] * 3 and not updated.requires_grad
    word_centres = WordCentres(3, 2, momentum=0.5, seed=0, device=torch.device("cpu"))
    start = word_centres.centres.clone()
    assert torch.allclose(start.norm(dim=1), torch.ones(3))  # random unit vectors at start
    word_centres.update(torch.ones(3, 2))
    twice = word_centres.update(torch.ones(3, 2))
    assert torch.allclose(twice, start + 0.75 * (1 - start))  # t + m(1-t), twice with m = 0.5


# ----------------------------------------------------------------------------- ramp


def test_gaussian_ramp():
    assert losses.gaussian_ramp(0.0, 10.0, 2.0) == pytest.approx(2.0 * math.exp(-5.0))
    assert losses.gaussian_ramp(5.0, 10.0, 1.0) == pytest.approx(math.exp(-5.0 * 0.25))
    assert losses.gaussian_ramp(10.0, 10.0, 1.0) == pytest.approx(1.0)
    assert losses.gaussian_ramp(25.0, 10.0, 1.0) == pytest.approx(1.0)
    values = [losses.gaussian_ramp(t / 4, 10.0, 1.0) for t in range(45)]
    assert values == sorted(values)


# ----------------------------------------------------------------------------- through the methods


@pytest.fixture(scope="module")
def batch():
    """16 digits with only classes 0, 2, 5 and 7 (a batch that misses classes)."""
    x, y = load_dataset("digits", "train").tensors()
    keep = torch.nonzero(torch.isin(y, torch.tensor([0, 2, 5, 7]))).squeeze(1)[:16]
    return x[keep], y[keep]


def make_context(method: str, **given) -> StepContext:
    config = resolve(method, {"dataset": "digits", "arch": "small_cnn", "out": "unused", **given})
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=K, in_channels=1)
    heads = words = centres = None
    if method == "scarl":
        heads, words = ProjectionHeads(model.feature_dim, 50, out_dim=16), FixedWords(torch.randn(K, 50))
        centres = WordCentres(K, 16, config.centre_momentum, seed=0, device=torch.device("cpu"))
    network = TrainingNetwork(model, heads, words).train()
    return StepContext(config=config, network=network, model=model, num_classes=K,
                       generator=torch.Generator().manual_seed(0), word_centres=centres)


def test_trades_method_combines_ce_and_the_kl_by_hand(batch):
    x, y = batch
    ctx = make_context("trades")
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    ctx.attack = lambda images, labels: x_adv
    result = trades(ctx, x, y, 0.0)
    with torch.no_grad():
        outputs = ctx.network(natural=x, adversarial=x_adv)
    p_nat, p_adv = softmax_rows(outputs["logits_nat"].double()), softmax_rows(outputs["logits_adv"].double())
    ce = sum(-math.log(p[label]) for p, label in zip(p_nat, y.tolist())) / len(y)
    kl = sum(loop_kl(p, q) for p, q in zip(p_nat, p_adv)) / len(y)
    assert result.terms["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert result.terms["kl"].item() == pytest.approx(kl, rel=1e-4)
    assert result.loss.item() == pytest.approx(ce + 6.0 * kl, rel=1e-5)


def test_mart_method_by_hand(batch):
    x, y = batch
    ctx = make_context("mart")
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    ctx.attack = lambda images, labels: x_adv
    result = mart(ctx, x, y, 0.0)
    with torch.no_grad():
        outputs = ctx.network(natural=x, adversarial=x_adv)
    p_nat, p_adv = softmax_rows(outputs["logits_nat"].double()), softmax_rows(outputs["logits_adv"].double())
    bce = robust = 0.0
    for p, q, label in zip(p_nat, p_adv, y.tolist()):
        bce += -math.log(q[label]) - math.log(1.0001 - max(q[k] for k in range(K) if k != label) + 1e-12)
        robust += sum(pk * (math.log(pk) - math.log(qk + 1e-12)) for pk, qk in zip(p, q)) * (1.0000001 - p[label])
    bce, robust = bce / len(y), robust / len(y)
    assert result.terms["bce"].item() == pytest.approx(bce, rel=1e-5)
    assert result.terms["mart_kl"].item() == pytest.approx(robust, rel=1e-4)
    assert result.loss.item() == pytest.approx(bce + 5.0 * robust, rel=1e-5)


class _FixedPool:
    """A TLA pool that hands out given images (to recompute the step by hand)."""

    def __init__(self, images, labels, same):
        self.images, self.labels, self.same = images, labels, same

    def draw(self, count):
        return self.images[:count], self.labels[:count]

    def same_class(self, labels):
        return self.same


def test_tla_method_by_hand(batch):
    x, y = batch
    ctx = make_context("tla", tla_pool=2)
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    ctx.attack = lambda images, labels: x_adv
    pool_x, pool_y = load_dataset("digits", "test").tensors(torch.arange(2 * len(y)))
    same = x.flip(0)  # any images will do as the same-class positives here
    ctx.pool = _FixedPool(pool_x, pool_y, same)
    model = ctx.model
    model.eval()  # mining reads the running BatchNorm statistics from before the step's forward updates them
    with torch.no_grad():
        anchors_eval, pool_eval = model.features(x_adv).double(), model.features(pool_x).double()
    model.train()
    result = tla(ctx, x, y, 0.0)
    negatives = []
    for i in range(len(y)):
        cosines = {j: dot(anchors_eval[i], pool_eval[j]) / (norm(anchors_eval[i]) * norm(pool_eval[j]))
                   for j in range(len(pool_y)) if pool_y[j] != y[i]}
        negatives.append(max(cosines, key=cosines.get))
    with torch.no_grad():
        outputs = ctx.network(natural=x, adversarial=x_adv, extra={"same_class": same, "negative": pool_x[negatives]})
    p_adv = softmax_rows(outputs["logits_adv"].double())
    ce = sum(-math.log(p[label]) for p, label in zip(p_adv, y.tolist())) / len(y)

    def triplet(positives):
        a, p, n = (outputs[k].double() for k in ("features_adv", positives, "features_negative"))
        hinge = sum(max(0.0, (1 - abs(dot(a[i], p[i]) / (norm(a[i]) * norm(p[i]))))
                        - (1 - abs(dot(a[i], n[i]) / (norm(a[i]) * norm(n[i])))) + 0.03) for i in range(len(y)))
        return hinge / len(y) + 1e-3 * float((a * a + p * p + n * n).mean())

    assert result.terms["ce_adv"].item() == pytest.approx(ce, rel=1e-5)
    assert result.terms["triplet"].item() == pytest.approx(triplet("features_nat"), rel=1e-4, abs=1e-6)
    assert result.terms["triplet_class"].item() == pytest.approx(triplet("features_same_class"), rel=1e-4, abs=1e-6)
    assert result.loss.item() == pytest.approx(ce + 2.0 * (triplet("features_nat") + triplet("features_same_class")),
                                               rel=1e-4)


@pytest.mark.parametrize("info", ["bound", "infonce"])
def test_scarl_method_info_and_structure_terms_by_hand(batch, info):
    """L_info with h computed by hand (Lemma 2.1) or InfoNCE; L_struc over the present classes only."""
    x, y = batch
    tau, c, m = 0.5, 300.0, 0.3
    ctx = make_context("scarl", base="natural", embedding="random", tau=tau, c=c, centre_momentum=m,
                       epochs=10, info=info)
    centres_before = ctx.word_centres.centres.clone()
    progress = 4.0
    result = scarl(ctx, x, y, progress)

    with torch.no_grad():
        outputs = ctx.network(natural=x)
    images, words = outputs["image_proj"].double(), outputs["word_proj"].double()
    expected_info = 0.0
    for i, label in enumerate(y.tolist()):
        similarities = [dot(images[i], words[k]) for k in range(K)]
        if info == "bound":
            for k, s in enumerate(similarities):
                h = math.exp(s / tau) / (math.exp(s / tau) + c)
                expected_info -= math.log(h) if k == label else math.log(1.0 - h)
        else:
            expected_info -= similarities[label] / tau - math.log(sum(math.exp(s / tau) for s in similarities))
    expected_info /= len(y)
    assert result.terms["info"].item() == pytest.approx(expected_info, rel=1e-5)

    present = sorted(set(y.tolist()))
    image_centres = torch.stack([images[y == k].mean(dim=0) for k in present])
    word_centres = (centres_before + m * (outputs["word_proj"] - centres_before)).double()[present]
    assert torch.allclose(ctx.word_centres.centres, centres_before + m * (outputs["word_proj"] - centres_before))
    assert result.terms["struc_distance"].item() == pytest.approx(loop_distance_loss(image_centres, word_centres), rel=1e-4)
    assert result.terms["struc_angle"].item() == pytest.approx(loop_angle_loss(image_centres, word_centres), rel=1e-4)

    ramp = math.exp(-5.0 * (1 - progress / 10) ** 2)
    expected_total = (result.terms["ce"].item() + ramp * result.terms["info"].item()
                      + ramp * result.terms["struc"].item())
    assert result.terms["lambda1"] == pytest.approx(ramp) and result.terms["lambda2"] == pytest.approx(ramp)
    assert result.loss.item() == pytest.approx(expected_total, rel=1e-6)


def test_global_batchnorm_is_plain_batchnorm_in_one_process():
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=K, in_channels=1).train()
    reference = create_model("small_cnn", num_classes=K, in_channels=1).train()
    reference.load_state_dict(model.state_dict())
    convert_batchnorm(model, torch.device("cpu"))
    assert isinstance(model.bn1, GlobalBatchNorm) and list(model.state_dict()) == list(reference.state_dict())
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(model(x), reference(x))
    assert torch.equal(model.bn1.running_var, reference.bn1.running_var)
