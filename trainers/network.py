"""What one training step runs forward: the classifier, and for SCARL its heads and word side.

:class:`TrainingNetwork` bundles the classifier with SCARL's projection heads (g_s, g_t)
and the source of the class word vectors, so that DistributedDataParallel wraps a single
module and every step makes exactly one forward call through it. The word vectors are
either fixed (:class:`FixedWords`: GloVe, CLIP, random, ...) or learned
(:class:`LearnedWords`: the ``nn`` embedding layer of SCARL Table 5).

:class:`WordCentres` holds SCARL's word-side class centres T_word (eq. 6): a persistent
tensor outside the autograd graph and outside the module (so DDP never broadcasts it;
every process computes the same values).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semprobe.models import ImageClassifier, ProjectionHeads
from trainers.losses import momentum_update


class FixedWords(nn.Module):
    """Class word vectors that do not train (a non-persistent buffer, shape (K, d))."""

    def __init__(self, vectors: Tensor) -> None:
        super().__init__()
        self.register_buffer("vectors", torch.as_tensor(vectors, dtype=torch.float32), persistent=False)

    def forward(self) -> Tensor:
        return self.vectors


class LearnedWords(nn.Module):
    """SCARL's ``nn`` word embedding (Table 5): a learnable (K, d) table, N(0, 1) at start."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, dim)

    def forward(self) -> Tensor:
        return self.embedding.weight


class TrainingNetwork(nn.Module):
    """The classifier, plus the SCARL heads and word source when given.

    ``forward(natural, adversarial)`` runs the classifier on each input given (separate
    batches, so BatchNorm sees each as the reference code does) and returns a dict with
    ``features_nat``/``logits_nat`` and ``features_adv``/``logits_adv`` (and ``features_NAME``/
    ``logits_NAME`` for each batch of ``extra``, e.g. TLA's positives and negatives). With heads it also
    returns ``image_proj`` = g_s of the adversarial features (of the natural ones when no
    adversarial input is given) and ``word_proj`` = g_t of the K class word vectors,
    computed without gradient when ``train_words`` is false (no loss term trains the
    word side: SCARL without L_info).
    """

    def __init__(
        self,
        model: ImageClassifier,
        heads: ProjectionHeads | None = None,
        words: nn.Module | None = None,
        train_words: bool = True,
    ) -> None:
        super().__init__()
        if (heads is None) != (words is None):
            raise ValueError("heads and words go together: give both or neither")
        self.model = model
        self.heads = heads
        self.words = words
        self.train_words = train_words

    def forward(self, natural: Tensor | None = None, adversarial: Tensor | None = None,
                extra: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        outputs: dict[str, Tensor] = {}
        for name, images in (("nat", natural), ("adv", adversarial), *(extra or {}).items()):
            if images is not None:
                features = self.model.features(images)
                outputs[f"features_{name}"] = features
                outputs[f"logits_{name}"] = self.model.classifier(features)
        if self.heads is not None:
            semantic = outputs["features_adv"] if adversarial is not None else outputs["features_nat"]
            outputs["image_proj"] = self.heads.image(semantic)
            with torch.set_grad_enabled(self.train_words and torch.is_grad_enabled()):
                outputs["word_proj"] = self.heads.word(self.words())
        return outputs


class WordCentres:
    """SCARL's word centres T_word (eq. 6): random unit vectors at start, then momentum steps.

    ``update(word_proj)`` moves every class centre towards g_t of its word vector by the
    momentum ``m`` and returns the new centres; they never carry gradient.
    """

    def __init__(self, num_classes: int, dim: int, momentum: float, seed: int, device: torch.device) -> None:
        generator = torch.Generator().manual_seed(seed)
        start = nn.functional.normalize(torch.randn(num_classes, dim, generator=generator), dim=1)
        self.centres = start.to(device)
        self.momentum = momentum

    def update(self, word_proj: Tensor) -> Tensor:
        self.centres = momentum_update(self.centres, word_proj, self.momentum)
        return self.centres

    def state_dict(self) -> dict[str, Tensor]:
        return {"centres": self.centres.detach().cpu()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        centres = state["centres"]
        if centres.shape != self.centres.shape:
            raise ValueError(f"word centres of shape {tuple(centres.shape)} do not fit {tuple(self.centres.shape)}")
        self.centres = centres.to(self.centres.device, self.centres.dtype)
