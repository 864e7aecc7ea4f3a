"""Dataset registry: image datasets as tensors in [0,1], class names and word phrases.

Registered names (see :func:`list_datasets`): ``cifar10``, ``cifar100``, ``tinyimagenet``,
``fashion-mnist``, ``digits`` (scikit-learn's 8x8 digits) and ``fake`` (synthetic, any
shape: ``fake:CxHxW:K[:NTRAIN:NTEST]``).

**Finding the files.** A dataset is looked for under each of these roots in turn: the
``data_dir`` argument, ``$SEMPROBE_DATA``, the system folders in :data:`SYSTEM_DATA_DIRS`
(Debian's ``dataset-fashion-mnist`` package installs under ``/usr/share/datasets``) and
the download cache ``cache_dir("data")``. Only when none holds it and ``download=True`` is
it fetched, with torchvision's download helpers, into ``data_dir``, else
``$SEMPROBE_DATA``, else the cache. The files are always read by this module: IDX files
with :func:`semprobe.data.idx.read_idx`, CIFAR pickles with an unpickler that can build numpy
arrays and nothing else, TinyImageNet JPEGs lazily with PIL.

**Splits.** ``train_full`` is the whole training set, ``val`` a stratified sample of it
drawn with a fixed seed (2% of the training set, at most 1,000 and at least 1 image by
default), ``train`` the rest and ``test`` the official test set (TinyImageNet's labelled
``val`` folder).

**Phrases.** Every class has a phrase for word-vector lookup: the lower-cased class name
with ``_`` and ``/`` turned into spaces (``aquarium_fish`` -> ``aquarium fish``,
``T-shirt/top`` -> ``t-shirt top``), unless the dataset overrides it (CIFAR-10's
``automobile`` is ``car``, as in the SCARL paper's footnote 1) or the user passes aliases
(:func:`read_aliases`).
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import pickle
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from semprobe.errors import ConfigError, DataError
from semprobe.data import imagefolder
from semprobe.data.idx import read_idx
from semprobe.data.imagefolder import image_files
from semprobe.io import cache_dir
from semprobe.data.normalization import parse_normalization

__all__ = [
    "AUGMENTATIONS",
    "SPLITS",
    "SYSTEM_DATA_DIRS",
    "DatasetInfo",
    "ImageDataset",
    "dataset_info",
    "default_phrase",
    "list_datasets",
    "load_dataset",
    "random_crop_flip",
    "read_aliases",
]

#: Folders searched after ``data_dir`` and ``$SEMPROBE_DATA``, before the download cache.
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)

SPLITS = ("train", "val", "test", "train_full")
AUGMENTATIONS = ("crop_flip", "none")

#: The default validation split is 2% of the training set, capped at this many images.
VAL_MAX = 1000

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
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGITS_CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


#: Phrases that differ from :func:`default_phrase`, per dataset.
PHRASE_OVERRIDES: dict[str, dict[str, str]] = {
    "cifar10": {"automobile": "car"},  # SCARL, footnote 1
}

# Official archives and their md5 sums (the ones torchvision checks its downloads against).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
TINYIMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINYIMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"

DIGITS_TEST_SIZE = 360

FAKE_DEFAULT = ((1, 28, 28), 10, 512, 256)
FAKE_FORMS = "fake, fake:CxHxW:K or fake:CxHxW:K:NTRAIN:NTEST (for example fake:3x32x32:10:512:256)"
FAKE_NOISE = 0.2

ImageSource = Union[torch.Tensor, Sequence[Path]]


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its classes, their word phrases, image shape and preprocessing.

    ``normalization`` is ``{"mean": [...], "std": [...]}`` per channel for pixels in [0,1]
    (the constants robust models are usually trained with) or ``None``; ``augmentation``
    is the training augmentation the dataset uses by default: ``"crop_flip"`` or ``"none"``.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    phrases: tuple[str, ...]
    normalization: dict | None = field(hash=False)
    augmentation: str


def default_phrase(class_name: str) -> str:
    """The word-lookup phrase of a class name: lower case, ``_`` and ``/`` as spaces."""
    return " ".join(re.sub(r"[_/]", " ", class_name).lower().split())


def read_aliases(path: str | os.PathLike) -> dict[str, str]:
    """Read a ``{class name: phrase}`` mapping from a JSON object or a text file.

    A file whose text starts with ``{`` is read as JSON. The text form has one
    ``class name = phrase`` per line; blank lines and lines starting with ``#`` are ignored. Raises :class:`DataError` for an unreadable or
    malformed file. Whether the class names exist is checked when the aliases are applied
    to a dataset (:func:`load_dataset`, :func:`dataset_info`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read alias file {path}: {exc}; pass an existing UTF-8 text or JSON file") from exc
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"alias file {path} is not valid JSON: {exc}") from exc
        return _checked_aliases(parsed, f"alias file {path}")
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, phrase = (part.strip() for part in line.partition("="))
        if not equals or not name or not phrase:
            raise DataError(f"{path}:{number}: expected 'class name = phrase', got {line!r}")
        if name in mapping:
            raise DataError(f"{path}:{number}: class {name!r} is given a phrase twice; keep one line")
        mapping[name] = phrase
    return mapping


def _checked_aliases(mapping: object, origin: str) -> dict[str, str]:
    """``mapping`` as a dict of non-empty strings, or a :class:`DataError` naming ``origin``."""
    if not isinstance(mapping, Mapping):
        raise DataError(f"{origin} must be an object mapping class names to phrases")
    for name, phrase in mapping.items():
        if not isinstance(name, str) or not isinstance(phrase, str) or not phrase.strip():
            raise DataError(f"{origin}: the phrase for {name!r} must be a non-empty string, got {phrase!r}")
    return {name: phrase.strip() for name, phrase in mapping.items()}


def _alias_mapping(aliases: str | os.PathLike | Mapping[str, str] | None) -> tuple[dict[str, str], str]:
    """The aliases as a dict, with a description of where they came from for messages."""
    if aliases is None:
        return {}, ""
    if isinstance(aliases, Mapping):
        return _checked_aliases(aliases, "aliases"), "aliases"
    return read_aliases(aliases), f"alias file {aliases}"


def _make_info(
    source: _Source, classes: tuple[str, ...], aliases: dict[str, str], alias_origin: str
) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``source`` with ``classes``, aliases applied to the phrases."""
    unknown = sorted(set(aliases) - set(classes))
    if unknown:
        raise DataError(
            f"{alias_origin} names classes that {source.name} does not have: {', '.join(unknown)}; "
            f"its classes are: {', '.join(classes)}"
        )
    phrases = tuple(
        aliases.get(name) or source.phrase_overrides.get(name) or source.phrase_of(name) for name in classes
    )
    normalization = parse_normalization(source.normalization)
    return DatasetInfo(
        name=source.name,
        num_classes=len(classes),
        image_shape=source.image_shape,
        classes=classes,
        phrases=phrases,
        normalization=normalization,
        augmentation=source.augmentation,
    )


# --------------------------------------------------------------------------- dataset


def random_crop_flip(image: torch.Tensor, padding: int) -> torch.Tensor:
    """Random crop of the zero-padded ``image`` (C x H x W, any dtype), then a random flip.

    The same transform as torchvision's ``RandomCrop(size, padding)`` followed by
    ``RandomHorizontalFlip()``, done with torch ops. It draws from torch's global
    generator, so ``torch.manual_seed`` and DataLoader worker seeding apply.
    """
    _, height, width = image.shape
    top, left = torch.randint(0, 2 * padding + 1, (2,)).tolist()
    crop = F.pad(image, (padding, padding, padding, padding))[:, top : top + height, left : left + width]
    if torch.rand(()) < 0.5:
        crop = crop.flip(-1)
    return crop


class ImageDataset(Dataset):
    """One split of a dataset: ``dataset[i]`` is ``(float32 C x H x W image in [0,1], label)``.

    ``images`` is either a uint8 tensor (N, C, H, W) held in memory, whose values are
    divided by ``pixel_max`` on access, or a list of image files read with PIL on access
    (RGB, resized to the info's shape if they differ). ``augment`` is ``False``/``"none"``,
    ``True`` (the dataset's own augmentation, ``info.augmentation``) or ``"crop_flip"``;
    it applies in ``__getitem__`` only, never in :meth:`tensors`.

    Attributes: ``labels`` (int64 tensor), ``classes``, ``phrases``, ``info``, ``split``,
    ``augmentation`` (the one in effect).
    """

    def __init__(
        self,
        images: ImageSource,
        labels: torch.Tensor | Sequence[int],
        info: DatasetInfo,
        split: str,
        *,
        pixel_max: int = 255,
        augment: bool | str = False,
    ) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        self.info = info
        self.split = split
        self.classes = info.classes
        self.phrases = info.phrases
        self.pixel_max = pixel_max
        self.augmentation = _augmentation(augment, info)
        if isinstance(images, torch.Tensor):
            if images.dtype != torch.uint8 or tuple(images.shape[1:]) != info.image_shape:
                raise DataError(
                    f"{info.name} images must be uint8 of shape (N, {', '.join(map(str, info.image_shape))}), "
                    f"got {images.dtype} {tuple(images.shape)}"
                )
            self._images: torch.Tensor | None = images
            self._files: list[Path] | None = None
        else:
            if info.image_shape[0] != 3:
                raise DataError(f"{info.name} images read from files are RGB, but its shape is {info.image_shape}")
            self._images = None
            self._files = [Path(file) for file in images]
        if len(self._images if self._files is None else self._files) != len(self.labels):
            raise DataError(f"{info.name} {split}: the number of images and of labels differ")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._images[index] if self._files is None else self._read_file(self._files[index])
        if self.augmentation == "crop_flip":
            image = random_crop_flip(image, max(1, min(self.info.image_shape[1:]) // 8))
        return image.float().div_(self.pixel_max), int(self.labels[index])

    def __repr__(self) -> str:
        return f"ImageDataset({self.info.name!r}, split={self.split!r}, n={len(self)})"

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageDataset:
        """The images at ``indices`` as a new dataset with the same info, split and augmentation."""
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if self._files is None:
            images: ImageSource = self._images[index]
        else:
            images = [self._files[i] for i in index.tolist()]
        return ImageDataset(
            images, self.labels[index], self.info, self.split, pixel_max=self.pixel_max, augment=self.augmentation
        )

    def tensors(self, indices: Sequence[int] | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float32 N x C x H x W in [0,1], never augmented) and labels at ``indices`` (default all)."""
        if indices is None:
            index = torch.arange(len(self))
        else:
            index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if self._files is None:
            images = self._images if indices is None else self._images[index]
        elif len(index):
            images = torch.stack([self._read_file(self._files[i]) for i in index.tolist()])
        else:
            images = torch.empty((0, *self.info.image_shape), dtype=torch.uint8)
        return images.float().div_(self.pixel_max), self.labels[index]

    def _read_file(self, path: Path) -> torch.Tensor:
        """The image file at ``path`` as uint8 C x H x W in the info's shape."""
        from PIL import Image

        _, height, width = self.info.image_shape
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except OSError as exc:  # includes PIL's UnidentifiedImageError and truncated files
            raise DataError(f"cannot read image {path}: {exc}; replace or remove the file") from exc
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


def _check_augment(augment: bool | str) -> None:
    """Refuse an ``augment`` value other than True, False, "crop_flip" and "none"."""
    if not (isinstance(augment, bool) or augment in AUGMENTATIONS):
        raise ConfigError(f"augment must be True, False, 'crop_flip' or 'none', got {augment!r}")


def _augmentation(augment: bool | str, info: DatasetInfo) -> str:
    """The augmentation that ``augment`` asks for on a dataset described by ``info``."""
    _check_augment(augment)
    if isinstance(augment, bool):
        return info.augmentation if augment else "none"
    return augment


# --------------------------------------------------------------------------- splits


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


# --------------------------------------------------------------------------- locating files


def _search_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """The roots searched for dataset files, in order, without repeats."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("SEMPROBE_DATA"):
        roots.append(Path(os.environ["SEMPROBE_DATA"]).expanduser())
    roots.extend(SYSTEM_DATA_DIRS)
    roots.append(cache_dir("data"))
    return list(dict.fromkeys(roots))


def _download_root(data_dir: str | os.PathLike | None) -> Path:
    """Where a download goes: ``data_dir``, else ``$SEMPROBE_DATA``, else the cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("SEMPROBE_DATA"):
        return Path(os.environ["SEMPROBE_DATA"]).expanduser()
    return cache_dir("data")


def _find_local(source: _Source, data_dir: str | os.PathLike | None) -> Path | None:
    """The folder holding ``source``'s files under the first root that has them, or None."""
    for root in _search_roots(data_dir):
        found = source.find(root)
        if found is not None:
            return found
    return None


def _locate(source: _Source, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """The folder holding ``source``'s files, downloading them if allowed; else a DataError."""
    found = _find_local(source, data_dir)
    if found is not None:
        return found
    target = _download_root(data_dir)
    if not download:
        searched = ", ".join(str(root) for root in _search_roots(data_dir))
        fetch = (f"pass --download (download=True in Python) to fetch them from {source.url} into {target}, or "
                 if source.download is not None else "")
        origin = f"get the files from {source.url}, " if source.url and source.download is None else ""
        raise DataError(
            f"{source.name} not found: looked for {source.layout} under {searched}; {fetch}{origin}put them in a "
            f"folder so that it holds {source.layout.split(' (')[0]}, and pass that folder as --data-dir "
            f"(data_dir in Python) or set $SEMPROBE_DATA to it"
        )
    try:
        source.download(target)
    except (OSError, RuntimeError, ValueError, tarfile.TarError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            f"downloading {source.name} from {source.url} into {target} failed ({reason}); "
            f"download it by hand and put {source.layout} under {target}"
        ) from exc
    found = source.find(target)
    if found is None:
        raise DataError(
            f"the {source.name} download did not produce {source.layout} under {target}; remove it and retry"
        )
    return found


def _fetch_archive(url: str, root: Path, md5: str) -> None:
    """Download ``url`` into ``root`` with torchvision, check its md5 and unpack it there."""
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(url, str(root), md5=md5)


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


# --------------------------------------------------------------------------- fashion-mnist


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


def _download_fashion_mnist(root: Path) -> None:
    """Fetch the four gzipped IDX files into ``root/FashionMNIST/raw`` as torchvision does."""
    for filename, md5 in FASHION_MNIST_MD5.items():
        _fetch_archive(FASHION_MNIST_URL + filename, root / "FashionMNIST" / "raw", md5)


# --------------------------------------------------------------------------- cifar


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
    url: str
    md5: str


CIFAR10_LAYOUT = _CifarLayout(
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    labels_key="labels",
    meta_file="batches.meta",
    names_key="label_names",
    classes=CIFAR10_CLASSES,
    url=CIFAR10_URL,
    md5=CIFAR10_MD5,
)
CIFAR100_LAYOUT = _CifarLayout(
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    labels_key="fine_labels",
    meta_file="meta",
    names_key="fine_label_names",
    classes=CIFAR100_CLASSES,
    url=CIFAR100_URL,
    md5=CIFAR100_MD5,
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


def _download_cifar(layout: _CifarLayout, root: Path) -> None:
    """Fetch and unpack the official CIFAR archive into ``root``."""
    _fetch_archive(layout.url, root, layout.md5)


# --------------------------------------------------------------------------- tinyimagenet


def _find_tinyimagenet(root: Path) -> Path | None:
    """``root/tiny-imagenet-200`` if it has wnids.txt, words.txt, train/ and val/."""
    directory = root / "tiny-imagenet-200"
    if all((directory / name).is_file() for name in ("wnids.txt", "words.txt")) and all(
        (directory / name).is_dir() for name in ("train", "val")
    ):
        return directory
    return None


def _tinyimagenet_wnids(directory: Path) -> list[str]:
    """The sorted WordNet ids of wnids.txt: class ``i`` is the ``i``-th."""
    lines = (directory / "wnids.txt").read_text(encoding="utf-8").splitlines()
    wnids = sorted({line.strip() for line in lines if line.strip()})
    if not wnids:
        raise DataError(f"{directory / 'wnids.txt'} lists no classes; replace it with the official file")
    return wnids


def _read_tinyimagenet_classes(directory: Path) -> tuple[str, ...]:
    """For each wnid, the first comma-separated name that words.txt gives it."""
    wnids = _tinyimagenet_wnids(directory)
    wanted = set(wnids)
    names = {}
    for line in (directory / "words.txt").read_text(encoding="utf-8").splitlines():
        wnid, _, words = line.partition("\t")
        if wnid in wanted:
            names[wnid] = words.split(",")[0].strip()
    missing = [wnid for wnid in wnids if not names.get(wnid)]
    if missing:
        raise DataError(
            f"{directory / 'words.txt'} names no class for {', '.join(missing)}; add lines 'wnid<TAB>name'"
        )
    return tuple(names[wnid] for wnid in wnids)


def _read_tinyimagenet(directory: Path, train: bool) -> tuple[list[Path], torch.Tensor]:
    """The image files and labels of TinyImageNet's train folder or its labelled val folder.

    The val folder is either the official ``val/images`` with ``val/val_annotations.txt``
    or one already sorted into ``val/<wnid>/``.
    """
    wnids = _tinyimagenet_wnids(directory)
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    files: list[Path] = []
    labels: list[int] = []
    annotations = directory / "val" / "val_annotations.txt"
    if not train and annotations.is_file():
        for number, line in enumerate(annotations.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in label_of:
                raise DataError(f"{annotations}:{number}: expected 'file<TAB>wnid' with a wnid from wnids.txt")
            path = directory / "val" / "images" / parts[0]
            if not path.is_file():
                raise DataError(f"{annotations}:{number}: {path} does not exist; restore the val/images folder")
            files.append(path)
            labels.append(label_of[parts[1]])
    else:
        split_folder = directory / ("train" if train else "val")
        for wnid, label in label_of.items():
            class_files = image_files(split_folder / wnid)
            files.extend(class_files)
            labels.extend([label] * len(class_files))
    if not files:
        where = "train/<wnid>/images/" if train else "val/images/ with val/val_annotations.txt, or val/<wnid>/,"
        raise DataError(f"no images found in {directory}; put the images in {where} as in tiny-imagenet-200.zip")
    return files, torch.tensor(labels, dtype=torch.int64)


def _download_tinyimagenet(root: Path) -> None:
    """Fetch and unpack tiny-imagenet-200.zip into ``root``."""
    _fetch_archive(TINYIMAGENET_URL, root, TINYIMAGENET_MD5)


# --------------------------------------------------------------------------- digits and fake


def _read_digits(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits (values 0..16, uint8 N x 1 x 8 x 8), split 1437/360 with seed 0."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(np.rint(digits.images).astype(np.uint8)[:, None])
    labels = torch.from_numpy(digits.target.astype(np.int64))
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[_stratified_sample(labels, DIGITS_TEST_SIZE, seed=0)] = True
    keep = ~is_test if train else is_test
    return images[keep], labels[keep]


def _parse_fake(name: str) -> tuple[tuple[int, int, int], int, int, int]:
    """(shape, classes, training size, test size) of a ``fake[:CxHxW:K[:NTRAIN:NTEST]]`` name."""
    if name == "fake":
        return FAKE_DEFAULT
    match = re.fullmatch(r"fake:(\d+)x(\d+)x(\d+):(\d+)(?::(\d+):(\d+))?", name)
    if match is None:
        raise ConfigError(f"cannot read the fake dataset {name!r}; write it as {FAKE_FORMS}")
    channels, height, width, num_classes = (int(value) for value in match.group(1, 2, 3, 4))
    num_train, num_test = (int(value) for value in match.group(5, 6)) if match.group(5) else FAKE_DEFAULT[2:]
    if min(channels, height, width, num_train, num_test) < 1 or num_classes < 2:
        raise ConfigError(
            f"fake dataset {name!r}: sizes must be at least 1 and classes at least 2; write it as {FAKE_FORMS}"
        )
    return (channels, height, width), num_classes, num_train, num_test


def _fake_prototypes(shape: tuple[int, int, int], num_classes: int) -> torch.Tensor:
    """One smooth random image in [0,1] per class: uniform noise at 1/4 size, upsampled bilinearly."""
    channels, height, width = shape
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand((num_classes, channels, max(1, height // 4), max(1, width // 4)), generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def _read_fake(
    shape: tuple[int, int, int], num_classes: int, num_train: int, num_test: int, train: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced labels in random order; each image its class prototype plus Gaussian noise, clipped."""
    count = num_train if train else num_test
    generator = torch.Generator().manual_seed(1 if train else 2)
    labels = (torch.arange(count) % num_classes)[torch.randperm(count, generator=generator)]
    noise = FAKE_NOISE * torch.randn((count, *shape), generator=generator)
    images = (_fake_prototypes(shape, num_classes)[labels] + noise).clamp_(0, 1)
    return images.mul_(255).round_().to(torch.uint8), labels


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Source:
    """How one registered dataset is described, found, fetched and read.

    ``read_split(directory, train)`` returns the images (uint8 tensor or file list) and
    labels of the training or test set; ``directory`` is None for datasets without files.
    ``classes`` is None when the class names come from the files (``read_classes``).
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
    download: Callable[[Path], None] | None = None
    pixel_max: int = 255
    url: str = ""  # where a user gets the files by hand (named when they are missing)
    phrase_of: Callable[[str], str] = default_phrase  # a class name's phrase unless overridden

    @property
    def phrase_overrides(self) -> dict[str, str]:
        return PHRASE_OVERRIDES.get(self.name, {})


_SOURCES = {
    "cifar10": _Source(
        name="cifar10",
        image_shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,
        normalization="cifar10",
        augmentation="crop_flip",
        read_split=functools.partial(_read_cifar, CIFAR10_LAYOUT),
        layout="cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta from cifar-10-python.tar.gz)",
        find=functools.partial(_find_cifar, CIFAR10_LAYOUT),
        read_classes=functools.partial(_read_cifar_classes, CIFAR10_LAYOUT),
        download=functools.partial(_download_cifar, CIFAR10_LAYOUT),
        url=CIFAR10_URL,
    ),
    "cifar100": _Source(
        name="cifar100",
        image_shape=(3, 32, 32),
        classes=CIFAR100_CLASSES,
        normalization="cifar100",
        augmentation="crop_flip",
        read_split=functools.partial(_read_cifar, CIFAR100_LAYOUT),
        layout="cifar-100-python/ (train, test, meta from cifar-100-python.tar.gz)",
        find=functools.partial(_find_cifar, CIFAR100_LAYOUT),
        read_classes=functools.partial(_read_cifar_classes, CIFAR100_LAYOUT),
        download=functools.partial(_download_cifar, CIFAR100_LAYOUT),
        url=CIFAR100_URL,
    ),
    "tinyimagenet": _Source(
        name="tinyimagenet",
        image_shape=(3, 64, 64),
        classes=None,
        normalization="tinyimagenet",
        augmentation="crop_flip",
        read_split=_read_tinyimagenet,
        layout="tiny-imagenet-200/ (wnids.txt, words.txt, train/, val/ from tiny-imagenet-200.zip)",
        find=_find_tinyimagenet,
        read_classes=_read_tinyimagenet_classes,
        download=_download_tinyimagenet,
        url=TINYIMAGENET_URL,
    ),
    "fashion-mnist": _Source(
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
        download=_download_fashion_mnist,
        url=FASHION_MNIST_URL,
    ),
    "digits": _Source(
        name="digits",
        image_shape=(1, 8, 8),
        classes=DIGITS_CLASSES,
        normalization=None,
        augmentation="none",
        read_split=lambda directory, train: _read_digits(train),
        pixel_max=16,
    ),
}


def _fake_source(name: str) -> _Source:
    """The :class:`_Source` of a ``fake[:CxHxW:K[:NTRAIN:NTEST]]`` name."""
    shape, num_classes, num_train, num_test = _parse_fake(name)
    return _Source(
        name=name,
        image_shape=shape,
        classes=tuple(f"class{k}" for k in range(num_classes)),
        normalization=None,
        augmentation="none",
        read_split=lambda directory, train: _read_fake(shape, num_classes, num_train, num_test, train),
    )


def _imagefolder_source(name: str, image_size: int | None) -> _Source:
    """The :class:`_Source` of an ``imagefolder:PATH`` name (see :mod:`semprobe.data.imagefolder`)."""
    root = imagefolder.root_of(name)
    return _Source(
        name=name,
        image_shape=imagefolder.image_shape(root, image_size),
        classes=imagefolder.read_classes(root),
        normalization=None,
        augmentation="crop_flip",
        read_split=lambda directory, train: imagefolder.read_split(root, train),
        layout=imagefolder.LAYOUT,
        phrase_of=imagefolder.folder_phrase,
    )


def _source(name: str, image_size: int | None = None) -> _Source:
    """The registered dataset called ``name``, or a ConfigError listing the known ones.

    ``image_size`` (pixels, square) applies to ``imagefolder:PATH`` datasets only."""
    if imagefolder.is_imagefolder(name):
        return _imagefolder_source(name, image_size)
    if image_size is not None:
        raise ConfigError(f"an image size applies to imagefolder:PATH datasets only, not to {name}")
    if isinstance(name, str) and (name == "fake" or name.startswith("fake:")):
        return _fake_source(name)
    if name not in _SOURCES:
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())} (fake also as {FAKE_FORMS}; "
            "a folder of images as imagefolder:PATH)"
        )
    return _SOURCES[name]


def _class_names(source: _Source, directory: Path | None) -> tuple[str, ...]:
    """The class names: from the files when the dataset reads them there, else built in."""
    if directory is not None and source.read_classes is not None:
        return source.read_classes(directory)
    return source.classes


def list_datasets() -> list[str]:
    """The registered dataset names (``fake`` also takes a shape, see :func:`load_dataset`)."""
    return [*_SOURCES, "fake"]


def dataset_info(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    aliases: str | os.PathLike | Mapping[str, str] | None = None,
    image_size: int | None = None,
    download: bool = False,
) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` without loading its images.

    Class names come from the dataset's files where it has them (CIFAR meta files,
    TinyImageNet's wnids.txt and words.txt); TinyImageNet therefore needs its files
    (a :class:`DataError` if they are not found and ``download`` is False), the others fall
    back to built-in names.
    ``aliases`` (a file for :func:`read_aliases` or a dict) replace class phrases;
    ``image_size`` sets the square size of an ``imagefolder:PATH`` dataset's images.
    """
    source = _source(name, image_size)
    alias_map, alias_origin = _alias_mapping(aliases)
    directory = None
    if source.find is not None and source.classes is None:
        directory = _locate(source, data_dir, download=download)
    elif source.find is not None:
        directory = _find_local(source, data_dir)
    return _make_info(source, _class_names(source, directory), alias_map, alias_origin)


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    augment: bool | str = False,
    val_size: int | None = None,
    seed: int = 0,
    aliases: str | os.PathLike | Mapping[str, str] | None = None,
    image_size: int | None = None,
) -> ImageDataset:
    """Load one split of a registered dataset as an :class:`ImageDataset`.

    ``split``: ``train`` (training set minus the validation images), ``val`` (the
    validation images), ``test`` or ``train_full`` (the whole training set). The
    validation images are a class-stratified sample of ``val_size`` training images
    (default 2% of the training set, at most 1,000, at least 1) drawn with ``seed``.
    Files are looked for under ``data_dir``, ``$SEMPROBE_DATA``, the system folders and
    the download cache; ``download=True`` fetches them if none has them. ``augment``:
    ``True`` for the dataset's own training augmentation, ``"crop_flip"`` to force random
    crop and flip, ``False`` or ``"none"`` for none. ``aliases`` (a file for
    :func:`read_aliases` or a dict) replace class phrases.

    ``name`` may also be ``fake:CxHxW:K`` or ``fake:CxHxW:K:NTRAIN:NTEST``: synthetic
    learnable images (a smooth random prototype per class plus noise), or
    ``imagefolder:PATH``: a folder in torchvision's ImageFolder layout (see
    :mod:`semprobe.data.imagefolder`), its images resized to ``image_size`` pixels square
    (default: the size of its first training image).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    _check_augment(augment)
    if val_size is not None and (isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 1):
        raise ConfigError(f"val_size must be a whole number of at least 1, got {val_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number of at least 0, got {seed!r}")
    source = _source(name, image_size)
    alias_map, alias_origin = _alias_mapping(aliases)
    directory = _locate(source, data_dir, download) if source.find is not None else None
    info = _make_info(source, _class_names(source, directory), alias_map, alias_origin)
    images, labels = source.read_split(directory, split != "test")
    dataset = ImageDataset(images, labels, info, split, pixel_max=source.pixel_max, augment=augment)
    if split not in ("train", "val"):
        return dataset
    size = _default_val_size(len(labels)) if val_size is None else val_size
    if size >= len(labels):
        raise ConfigError(
            f"val_size {size} leaves no training images: {name} has {len(labels)}; choose a smaller val_size"
        )
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[_stratified_sample(labels, size, seed)] = True
    return dataset.subset(torch.nonzero(is_val if split == "val" else ~is_val).flatten())
