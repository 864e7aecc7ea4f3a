"""CIFAR-10 and CIFAR-100: where their files are, how they are read and downloaded.

The files are the "python version" batches of the official archives
(https://www.cs.toronto.edu/~kriz/cifar.html): ``cifar-10-batches-py/`` (``data_batch_1``
.. ``data_batch_5``, ``test_batch``, ``batches.meta``) from ``cifar-10-python.tar.gz`` and
``cifar-100-python/`` (``train``, ``test``, ``meta``; the 100 fine labels) from
``cifar-100-python.tar.gz``. Each batch is a pickle, read with an unpickler that can build
numpy arrays and nothing else (:func:`_load_data_pickle`), so a data file cannot run code.
Class names come from the meta file when there is one, else the built-in lists.
CIFAR-10's ``automobile`` has the phrase ``car``, as in the SCARL paper's footnote 1.
A download fetches the official archive, its md5 checked, and unpacks it.
"""

from __future__ import annotations

import codecs
import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from semprobe.data.source import _checked_labels, _Source
from semprobe.errors import DataError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
    "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
    "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
    "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

# Official archives and their md5 sums (the ones torchvision checks its downloads against).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"


# --------------------------------------------------------------------------- safe pickles


def _refuse_global(path: Path):
    """The error for a data pickle that names a global beyond numpy's arrays."""
    def refuse(module: str, name: str) -> DataError:
        return DataError(f"{path} asks to run {module}.{name}; refused: a data file may only hold numpy arrays, "
                         "so replace it with the official file")
    return refuse


def _load_data_pickle(path: Path) -> object:
    """Unpickle the data file ``path`` building only dicts, lists, strings, numbers and numpy arrays
    (:func:`semprobe.io.load_restricted_pickle`; Python 2 pickles also name ``_codecs.encode``).

    A refused global raises a DataError that names it; any other failure of a damaged
    file becomes a DataError naming the file.
    """
    from semprobe.io import load_restricted_pickle, numpy_pickle_globals

    damaged = (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError)
    allowed = {**numpy_pickle_globals(), ("_codecs", "encode"): codecs.encode}
    try:
        return load_restricted_pickle(path, allowed, _refuse_global(path))
    except damaged as exc:
        raise DataError(f"cannot read {path}: {exc}; replace it with the official file") from exc


def _pickle_field(entry: object, key: str, path: Path) -> object:
    """``entry[key]`` where the keys may be str or bytes (Python 2 pickles), or a DataError."""
    if isinstance(entry, dict):
        for candidate in (key, key.encode()):
            if candidate in entry:
                return entry[candidate]
    raise DataError(f"{path} has no {key!r} entry; replace it with the official file")


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class _CifarLayout:
    """The files of one CIFAR variant inside its folder."""

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    labels_key: str
    meta_file: str
    names_key: str
    classes: tuple[str, ...]


CIFAR10_LAYOUT = _CifarLayout(
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    labels_key="labels",
    meta_file="batches.meta",
    names_key="label_names",
    classes=CIFAR10_CLASSES,
)
CIFAR100_LAYOUT = _CifarLayout(
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    labels_key="fine_labels",
    meta_file="meta",
    names_key="fine_label_names",
    classes=CIFAR100_CLASSES,
)


def _find_cifar(layout: _CifarLayout, root: Path) -> Path | None:
    """``root/<folder>`` if it holds every training and test file."""
    directory = root / layout.folder
    if all((directory / name).is_file() for name in layout.train_files + layout.test_files):
        return directory
    return None


def _read_cifar_classes(layout: _CifarLayout, directory: Path) -> tuple[str, ...]:
    """Class names from the meta file when there is one, else the built-in list."""
    path = directory / layout.meta_file
    if not path.is_file():
        return layout.classes
    names = _pickle_field(_load_data_pickle(path), layout.names_key, path)
    if not isinstance(names, list) or len(names) != len(layout.classes):
        raise DataError(f"{path} must list {len(layout.classes)} class names; replace it with the official file")
    return tuple(name.decode("latin1") if isinstance(name, bytes) else str(name) for name in names)


def _read_cifar(layout: _CifarLayout, directory: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The CIFAR training or test images (uint8 N x 3 x 32 x 32) and labels from the batch pickles."""
    all_images, all_labels = [], []
    for name in layout.train_files if train else layout.test_files:
        path = directory / name
        entry = _load_data_pickle(path)
        images = _pickle_field(entry, "data", path)
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape[1:] == (3072,)):
            raise DataError(
                f"{path}: 'data' must be a uint8 array of N x 3072 pixels; replace it with the official file"
            )
        labels = _pickle_field(entry, layout.labels_key, path)
        labels = _checked_labels(labels, len(images), len(layout.classes), path)
        all_images.append(images.reshape(-1, 3, 32, 32))
        all_labels.append(labels)
    return torch.from_numpy(np.concatenate(all_images)), torch.from_numpy(np.concatenate(all_labels))


# --------------------------------------------------------------------------- sources


CIFAR10_SOURCE = _Source(
    name="cifar10",
    image_shape=(3, 32, 32),
    classes=CIFAR10_CLASSES,
    normalization="cifar10",
    augmentation="crop_flip",
    read_split=functools.partial(_read_cifar, CIFAR10_LAYOUT),
    layout="cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta from cifar-10-python.tar.gz)",
    find=functools.partial(_find_cifar, CIFAR10_LAYOUT),
    read_classes=functools.partial(_read_cifar_classes, CIFAR10_LAYOUT),
    downloads=((CIFAR10_URL, CIFAR10_MD5, ""),),
    url=CIFAR10_URL,
    phrase_overrides={"automobile": "car"},  # SCARL, footnote 1
)
CIFAR100_SOURCE = _Source(
    name="cifar100",
    image_shape=(3, 32, 32),
    classes=CIFAR100_CLASSES,
    normalization="cifar100",
    augmentation="crop_flip",
    read_split=functools.partial(_read_cifar, CIFAR100_LAYOUT),
    layout="cifar-100-python/ (train, test, meta from cifar-100-python.tar.gz)",
    find=functools.partial(_find_cifar, CIFAR100_LAYOUT),
    read_classes=functools.partial(_read_cifar_classes, CIFAR100_LAYOUT),
    downloads=((CIFAR100_URL, CIFAR100_MD5, ""),),
    url=CIFAR100_URL,
)
