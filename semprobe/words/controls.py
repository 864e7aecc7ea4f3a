"""Control providers without semantics: ``random[:DIM[:SEED]]`` and ``onehot``.

They stand in for GloVe or CLIP vectors (SCARL section 2) to show what the word side adds:
``random`` gives independent standard Gaussian vectors (numpy ``default_rng(SEED)``,
default DIM 50 and SEED 0; the same spec gives the same vectors for the same number of
classes), ``onehot`` the K x K identity. Both are cheaper to recompute than to cache.
"""

from __future__ import annotations

import numpy as np

from semprobe.errors import ConfigError

DEFAULT_RANDOM_DIM = 50
DEFAULT_RANDOM_SEED = 0


def random_vectors(spec: str, num_classes: int) -> np.ndarray:
    """Seeded standard Gaussian vectors for ``random[:DIM[:SEED]]``."""
    fields = spec.split(":")[1:]
    if len(fields) > 2 or not all(field.isdigit() for field in fields):
        raise ConfigError(f"bad provider {spec!r}; write random, random:DIM or random:DIM:SEED with integers")
    dim = int(fields[0]) if fields else DEFAULT_RANDOM_DIM
    seed = int(fields[1]) if len(fields) > 1 else DEFAULT_RANDOM_SEED
    if dim < 1:
        raise ConfigError(f"bad provider {spec!r}; DIM must be at least 1")
    return np.random.default_rng(seed).standard_normal((num_classes, dim)).astype(np.float32)


def onehot_vectors(num_classes: int) -> np.ndarray:
    """The (K, K) float32 identity for ``onehot``."""
    return np.eye(num_classes, dtype=np.float32)
