"""SCARL's projection heads g_s (image features) and g_t (class word vectors).

SCARL ("Robustness Exploration of Semantic Information in Adversarial Training"),
section "Model Details": the backbone's features and the class word vectors each go
through "a nonlinear projection with one additional hidden layer (and ReLU activation)"
to a 64-D vector normalized by its L2 norm. Lemma 2.1 (eq. 5) scores an image/word pair
through these heads as

    h(s, t) = exp(g_s(s) . g_t(t) / tau) / (exp(g_s(s) . g_t(t) / tau) + c),

so ``g_s(s) . g_t(t)`` is the cosine similarity of the two projections. The loss terms
that use h live in ``trainers.losses``; this module only holds the heads' weights.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from semprobe.errors import ModelError


def _check_dim(name: str, value: int) -> None:
    """Refuse a layer size that is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"projection head {name} must be a positive integer, got {value!r}")


class ProjectionHead(nn.Module):
    """``x -> normalize(fc2(relu(bn(fc1(x)))))``: one SCARL head (g_s or g_t).

    Args:
        in_dim: size of the input (backbone features or word vectors).
        hidden_dim: size of the hidden layer; ``None`` means ``in_dim``.
        out_dim: size of the L2-normalized output (64 in SCARL).
    """

    def __init__(self, in_dim: int, hidden_dim: int | None = None, out_dim: int = 64) -> None:
        super().__init__()
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            _check_dim(name, value)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.bn = nn.BatchNorm1d(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Project ``(n, in_dim)`` to unit-norm rows ``(n, out_dim)``."""
        return F.normalize(self.fc2(F.relu(self.bn(self.fc1(x)))), dim=1)


class ProjectionHeads(nn.Module):
    """The pair of SCARL heads: ``image`` (g_s) and ``word`` (g_t), same output size.

    ``ProjectionHeads(**heads.config)`` rebuilds the same architecture, which is how a
    checkpoint stores and restores them.

    Args:
        image_dim: size of the backbone's penultimate features (``model.feature_dim``).
        word_dim: size of the class word vectors (e.g. 50 for GloVe 6B-50d).
        hidden_dim: hidden size of both heads; ``None`` means each head's input size.
        out_dim: size of the shared, L2-normalized space (64 in SCARL).
    """

    def __init__(
        self, image_dim: int, word_dim: int, hidden_dim: int | None = None, out_dim: int = 64
    ) -> None:
        super().__init__()
        self.image = ProjectionHead(image_dim, hidden_dim, out_dim)
        self.word = ProjectionHead(word_dim, hidden_dim, out_dim)
        self._config = {
            "image_dim": image_dim,
            "word_dim": word_dim,
            "hidden_dim": hidden_dim,
            "out_dim": out_dim,
        }

    @property
    def config(self) -> dict[str, int | None]:
        """The constructor arguments, as a plain dict: ``ProjectionHeads(**config)``."""
        return dict(self._config)

    def forward(self, image_features: Tensor, word_vectors: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(g_s(image_features), g_t(word_vectors))``, both with unit-norm rows."""
        return self.image(image_features), self.word(word_vectors)
