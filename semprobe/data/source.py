"""What a dataset module declares: :class:`_Source`, and the label check its readers share.

Each dataset lives in one module (:mod:`semprobe.data.cifar`,
:mod:`semprobe.data.fashion_mnist`, :mod:`semprobe.data.tinyimagenet`,
:mod:`semprobe.data.synthetic`, :mod:`semprobe.data.imagefolder`) that builds the
:class:`_Source` of each of its datasets: classes, file layout, how the folder is found,
read and downloaded. The registry (:mod:`semprobe.data`) looks sources up by name, finds
their folders and downloads their files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from semprobe.data.phrases import default_phrase
from semprobe.errors import DataError

if TYPE_CHECKING:
    import torch

    from semprobe.data.dataset import ImageSource


@dataclass(frozen=True)
class _Source:
    """How one registered dataset is described, found, fetched and read.

    ``read_split(directory, train)`` returns the images (uint8 tensor or file list) and
    labels of the training or test set; ``directory`` is None for datasets without files.
    ``classes`` is None when the class names come from the files (``read_classes``).
    ``downloads`` are the archives or files ``download=True`` fetches, in turn:
    ``(url, md5, folder)``, the folder relative to the download root (``""`` for the root).
    ``phrase_overrides`` are phrases that differ from ``phrase_of(class name)``.
    """

    name: str
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...] | None
    normalization: str | None  # a preset of semprobe.data.normalization
    augmentation: str
    read_split: Callable[[Path | None, bool], tuple[ImageSource, torch.Tensor]]
    layout: str = ""
    find: Callable[[Path], Path | None] | None = None
    read_classes: Callable[[Path], tuple[str, ...]] | None = None
    downloads: tuple[tuple[str, str, str], ...] = ()
    pixel_max: int = 255
    url: str = ""  # where a user gets the files by hand (named when they are missing)
    phrase_of: Callable[[str], str] = default_phrase  # a class name's phrase unless overridden
    phrase_overrides: Mapping[str, str] = field(default_factory=dict, hash=False)


def _checked_labels(values: object, count: int, num_classes: int, path: Path) -> np.ndarray:
    """``values`` as ``count`` int64 labels in ``0..num_classes-1``, or a DataError naming ``path``."""
    try:
        labels = np.asarray(values, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path} holds labels that are not integers; replace it with the official file") from exc
    if labels.shape != (count,):
        raise DataError(f"{path} holds {labels.size} labels for {count} images; replace it with the official file")
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{path} holds labels outside 0..{num_classes - 1}; replace it with the official file"
        )
    return labels
