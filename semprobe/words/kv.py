"""A reader of gensim ``.kv`` files (``KeyedVectors.save``) that cannot run code.

A ``.kv`` file is a pickle, plus ``PATH.*.npy`` files for large arrays. It is read by an
unpickler that builds only KeyedVectors (as an inert stand-in) and numpy arrays, so a
crafted file cannot run code; the side arrays are read with ``allow_pickle=False``. This is
the ``*.kv`` form of the ``glove:PATH`` provider (:mod:`semprobe.words.glove`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from semprobe.errors import WordVectorError
from semprobe.io import load_restricted_pickle, numpy_pickle_globals

if TYPE_CHECKING:
    import gensim.models


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


def read_kv_file(path: Path) -> gensim.models.KeyedVectors:
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
