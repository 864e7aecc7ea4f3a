"""The on-disk cache of class word vectors: one ``.npy`` file per provider, prompt and phrase list.

Vectors from ``glove``, ``glove:PATH`` and ``clip`` (except ``clip:MODEL:none``) are
cached under ``cache_dir("words")`` as ``.npy`` files named by a hash of the provider
(model and weights tag or, for files, their resolved path, size and modification time:
:func:`file_fingerprint`), the CLIP prompt template and the phrase list. A cache hit loads
neither the 400k-word GloVe nor open_clip; an unreadable cache file is recomputed and
rewritten (see :mod:`semprobe.words`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from semprobe.io import atomic_path, cache_dir

# Part of every cache key: change it when the way vectors are computed changes.
_CACHE_FORMAT = "semprobe-words-1"


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Resolved path, size and modification time: the part of a cache key that tracks a file."""
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached_vectors(
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
