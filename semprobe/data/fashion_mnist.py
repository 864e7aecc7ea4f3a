"""Fashion-MNIST: where its files are, how they are read and downloaded.

The four IDX files of https://github.com/zalandoresearch/fashion-mnist
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, gzipped or not), read with :func:`semprobe.data.idx.read_idx`.
They are looked for in ``fashion-mnist/`` (the folder of Debian's
``dataset-fashion-mnist`` package under ``/usr/share/datasets``), in ``FashionMNIST/raw/``
(torchvision's layout) and in the root itself. A download fetches the four gzipped files,
md5 checked, into ``FashionMNIST/raw/`` as torchvision does.
"""

from __future__ import annotations

from pathlib import Path

import torch

from semprobe.data.idx import read_idx
from semprobe.data.source import _checked_labels, _Source
from semprobe.errors import DataError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# Official files and their md5 sums (the ones torchvision checks its downloads against).
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


_FASHION_MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever exists (plain first)."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_fashion_mnist(root: Path) -> Path | None:
    """The first of ``root/fashion-mnist``, ``root/FashionMNIST/raw`` and ``root`` with all four files."""
    stems = [stem for files in _FASHION_MNIST_FILES.values() for stem in files]
    for directory in (root / "fashion-mnist", root / "FashionMNIST" / "raw", root):
        if all(_idx_file(directory, stem) is not None for stem in stems):
            return directory
    return None


def _read_fashion_mnist(directory: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The Fashion-MNIST training or test images (uint8 N x 1 x 28 x 28) and labels."""
    images_stem, labels_stem = _FASHION_MNIST_FILES[train]
    images_path, labels_path = _idx_file(directory, images_stem), _idx_file(directory, labels_stem)
    images = read_idx(images_path, expected_magic=0x803)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path} holds images of shape {images.shape[1:]}, expected (28, 28)")
    labels = _checked_labels(read_idx(labels_path, expected_magic=0x801), len(images), 10, labels_path)
    return torch.from_numpy(images[:, None]), torch.from_numpy(labels)


FASHION_MNIST_SOURCE = _Source(
    name="fashion-mnist",
    image_shape=(1, 28, 28),
    classes=FASHION_MNIST_CLASSES,
    normalization="fashion-mnist",
    augmentation="none",
    read_split=_read_fashion_mnist,
    layout=(
        "fashion-mnist/ or FashionMNIST/raw/ with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (gzipped or not)"
    ),
    find=_find_fashion_mnist,
    downloads=tuple(
        (FASHION_MNIST_URL + filename, md5, "FashionMNIST/raw") for filename, md5 in FASHION_MNIST_MD5.items()
    ),
    url=FASHION_MNIST_URL,
)
