"""Word vectors the user gives as files: the path check every file provider shares, and
``file:PATH.npy``, a K x d matrix saved with ``numpy.save`` (row k = class k).

A ``file:`` matrix is cheaper to read again than to cache, so it never is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from semprobe.errors import WordVectorError


def existing_file(path: str | os.PathLike, provider: str) -> Path:
    """``path`` resolved, or a WordVectorError naming the provider if it is not a file."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise WordVectorError(f"{provider}: no file at {resolved}; check the path")
    return resolved


def file_vectors(path: str, num_classes: int) -> np.ndarray:
    """A (K, d) matrix from a ``.npy`` file, checked for shape and finite values."""
    source = existing_file(path, f"file:{path}")
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
