"""Up-front validation shared by the statistics modules.

Every public function of :mod:`semprobe.stats` checks its arrays and options here before
any work starts, and refuses bad input with a :class:`~semprobe.errors.DataError` (arrays)
or a :class:`~semprobe.errors.ConfigError` (options) whose message says what to change.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from semprobe.errors import ConfigError, DataError


def as_matrix(name: str, value: Any, *, allow_vector: bool = False) -> np.ndarray:
    """``value`` as a finite float64 array of shape (n, d) with n >= 1 and d >= 1.

    With ``allow_vector`` a 1-D array of length n is read as one column (n, 1).
    """
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{name} must be a numeric array: {error}") from None
    if array.ndim == 1 and allow_vector:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (samples x dimensions), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {array.shape})")
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"{name} holds {int(bad.sum())} NaN or infinite value(s), first in row(s) "
            f"{rows[:5].tolist()}; remove or repair those samples"
        )
    return array


def as_labels(name: str, value: Any, n: int, n_classes: int) -> np.ndarray:
    """``value`` as an int64 vector of n class indices in [0, n_classes)."""
    array = np.asarray(value)
    if array.ndim != 1 or array.shape[0] != n:
        raise DataError(f"{name} must be a vector of {n} class indices, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or (array.size and np.all(np.mod(array, 1) == 0))):
        raise DataError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    labels = array.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{name} must lie in [0, {n_classes}) (one row of the class vectors per class), "
            f"got values from {labels.min()} to {labels.max()}"
        )
    return labels


def check_every_class(labels: np.ndarray, n_classes: int, minimum: int, names: Any = None) -> np.ndarray:
    """Counts per class; refuse a class with fewer than ``minimum`` samples (naming it)."""
    counts = np.bincount(labels, minlength=n_classes)
    short = np.flatnonzero(counts < minimum)
    if short.size:
        shown = [str(names[k]) if names is not None else str(k) for k in short[:10]]
        raise DataError(
            f"class(es) {', '.join(shown)} have fewer than {minimum} sample(s) "
            f"(counts {counts[short[:10]].tolist()}); every class needs at least {minimum}"
        )
    return counts


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_open_fraction(name: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ConfigError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def check_random_state(value: Any) -> int | None:
    """A seed for :func:`numpy.random.default_rng`: a non-negative int or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"random_state must be a non-negative integer or None, got {value!r}")
    return int(value)


def class_vectors_and_names(class_vectors: Any, classes: Any = None) -> tuple[Any, tuple[str, ...] | None]:
    """``(vectors, class names)``: a :class:`semprobe.words.ClassVectors` gives both (its
    ``vectors`` and ``classes``); an array gives itself and ``classes`` (None when not given)."""
    vectors, names = getattr(class_vectors, "vectors", None), getattr(class_vectors, "classes", None)
    if vectors is not None and names is not None:
        class_vectors, classes = vectors, classes if classes is not None else names
    if classes is None:
        return class_vectors, None
    if isinstance(classes, str):
        raise ConfigError("classes must be a sequence of class names, not one string")
    return class_vectors, tuple(str(name) for name in classes)


def check_class_names(classes: tuple[str, ...] | None, n_classes: int) -> None:
    """Refuse class names that do not match the K rows of the class vectors."""
    if classes is not None and len(classes) != n_classes:
        raise ConfigError(f"{len(classes)} class names given for {n_classes} class vectors")
