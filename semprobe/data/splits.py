"""The splits of a dataset: ``train``, ``val``, ``test`` and ``train_full``.

``train_full`` is the whole training set, ``val`` a class-stratified sample of it drawn with
a fixed seed (:func:`_stratified_sample`; 2% of the training set, at most :data:`VAL_MAX`
and at least 1 image by default), ``train`` the rest and ``test`` the official test set.
scikit-learn's digits have no official test set; :mod:`semprobe.data.synthetic` draws one
with the same sampler.

The sampler is not :func:`semprobe.stats.resampling.stratified_sample` (a different
algorithm); its indices are pinned by trained models and committed results, so it must
not change.
"""

from __future__ import annotations

import numpy as np
import torch

from semprobe.errors import ConfigError

SPLITS = ("train", "val", "test", "train_full")

#: The default validation split is 2% of the training set, capped at this many images.
VAL_MAX = 1000


def _default_val_size(num_train: int) -> int:
    """2% of the training set, at most :data:`VAL_MAX`, at least 1."""
    return max(1, min(VAL_MAX, num_train * 2 // 100))


def _stratified_sample(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size`` items drawn without replacement, classes in proportion.

    Each class gets the floor of its proportional share; the items left over go to the
    classes with the largest remainders (ties broken at random). The same ``labels``,
    ``size`` and ``seed`` always give the same indices.
    """
    values = labels.numpy()
    classes, counts = np.unique(values, return_counts=True)
    exact = size * counts / len(values)
    quota = np.floor(exact).astype(np.int64)
    rng = np.random.default_rng(seed)
    left_over = size - int(quota.sum())
    by_remainder = np.lexsort((rng.random(len(classes)), -(exact - quota)))
    quota[by_remainder[:left_over]] += 1
    chosen = [
        rng.choice(np.flatnonzero(values == label), size=count, replace=False)
        for label, count in zip(classes, quota)
    ]
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def _split_indices(
    labels: torch.Tensor, split: str, val_size: int | None, seed: int, name: str
) -> torch.Tensor | None:
    """The indices of ``split`` in a training set with ``labels``, or None for a whole set.

    ``val`` is a stratified sample of ``val_size`` images (default
    :func:`_default_val_size`) drawn with ``seed``, ``train`` the other images; ``test``
    and ``train_full`` are whole (None). ``name`` is the dataset's, for the ConfigError
    when ``val_size`` leaves no training images.
    """
    if split not in ("train", "val"):
        return None
    size = _default_val_size(len(labels)) if val_size is None else val_size
    if size >= len(labels):
        raise ConfigError(
            f"val_size {size} leaves no training images: {name} has {len(labels)}; choose a smaller val_size"
        )
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[_stratified_sample(labels, size, seed)] = True
    return torch.nonzero(is_val if split == "val" else ~is_val).flatten()
