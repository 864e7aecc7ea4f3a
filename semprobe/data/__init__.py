"""Dataset registry: image datasets as tensors in [0,1], class names and word phrases.

Registered names (see :func:`list_datasets`): ``cifar10``, ``cifar100``, ``tinyimagenet``,
``fashion-mnist``, ``digits`` (scikit-learn's 8x8 digits) and ``fake`` (synthetic, any
shape: ``fake:CxHxW:K[:NTRAIN:NTEST]``).

**Finding the files.** A dataset is looked for under each of these roots in turn: the
``data_dir`` argument, ``$SEMPROBE_DATA``, the system folders in :data:`SYSTEM_DATA_DIRS`
(Debian's ``dataset-fashion-mnist`` package installs under ``/usr/share/datasets``) and
the download cache ``cache_dir("data")``. Only when none holds it and ``download=True`` is
it fetched, with torchvision's download helpers, into ``data_dir``, else
``$SEMPROBE_DATA``, else the cache. The files are always read by this package: IDX files
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

**Where the code is.** This module is the registry: it looks a name up, finds or downloads
the files and applies the split and the aliases. Each dataset lives whole in its own
module: :mod:`~semprobe.data.cifar` (CIFAR-10 and CIFAR-100),
:mod:`~semprobe.data.fashion_mnist`, :mod:`~semprobe.data.tinyimagenet`,
:mod:`~semprobe.data.synthetic` (``digits`` and ``fake``) and
:mod:`~semprobe.data.imagefolder`, each declaring a :class:`~semprobe.data.source._Source`.
:mod:`~semprobe.data.dataset` holds :class:`DatasetInfo`, :class:`ImageDataset` and the
augmentation, :mod:`~semprobe.data.splits` the validation split,
:mod:`~semprobe.data.phrases` the phrases and aliases, :mod:`~semprobe.data.idx` the IDX
reader and :mod:`~semprobe.data.normalization` the normalization presets.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path
from typing import Mapping

from semprobe.data import imagefolder, synthetic
from semprobe.data.cifar import CIFAR10_SOURCE, CIFAR100_SOURCE
from semprobe.data.dataset import DatasetInfo, ImageDataset, _check_augment
from semprobe.data.fashion_mnist import FASHION_MNIST_SOURCE
from semprobe.data.normalization import parse_normalization
from semprobe.data.phrases import _alias_mapping
from semprobe.data.source import _Source
from semprobe.data.splits import SPLITS, _split_indices
from semprobe.data.synthetic import DIGITS_SOURCE, FAKE_FORMS
from semprobe.data.tinyimagenet import TINYIMAGENET_SOURCE
from semprobe.errors import ConfigError, DataError
from semprobe.io import cache_dir

# Defined in the modules above and importable from here, as before the package was split.
from semprobe.data.cifar import (  # noqa: F401
    CIFAR10_CLASSES,
    CIFAR10_MD5,
    CIFAR10_URL,
    CIFAR100_CLASSES,
    CIFAR100_MD5,
    CIFAR100_URL,
)
from semprobe.data.dataset import AUGMENTATIONS, ImageSource, random_crop_flip  # noqa: F401
from semprobe.data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_MD5, FASHION_MNIST_URL  # noqa: F401
from semprobe.data.phrases import default_phrase, read_aliases  # noqa: F401
from semprobe.data.splits import VAL_MAX, _stratified_sample  # noqa: F401
from semprobe.data.synthetic import DIGITS_CLASSES  # noqa: F401
from semprobe.data.tinyimagenet import TINYIMAGENET_MD5, TINYIMAGENET_URL  # noqa: F401

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

#: The registered datasets by name, in the order :func:`list_datasets` gives them.
_SOURCES = {
    source.name: source
    for source in (CIFAR10_SOURCE, CIFAR100_SOURCE, TINYIMAGENET_SOURCE, FASHION_MNIST_SOURCE, DIGITS_SOURCE)
}


# --------------------------------------------------------------------------- registry


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


def _source(name: str, image_size: int | None = None) -> _Source:
    """The registered dataset called ``name``, or a ConfigError listing the known ones.

    ``image_size`` (pixels, square) applies to ``imagefolder:PATH`` datasets only."""
    if imagefolder.is_imagefolder(name):
        return imagefolder._imagefolder_source(name, image_size)
    if image_size is not None:
        raise ConfigError(f"an image size applies to imagefolder:PATH datasets only, not to {name}")
    if synthetic.is_fake(name):
        return synthetic._fake_source(name)
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
    indices = _split_indices(labels, split, val_size, seed, name)
    return dataset if indices is None else dataset.subset(indices)


# --------------------------------------------------------------------------- locating and fetching files


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
                 if source.downloads else "")
        origin = f"get the files from {source.url}, " if source.url and not source.downloads else ""
        raise DataError(
            f"{source.name} not found: looked for {source.layout} under {searched}; {fetch}{origin}put them in a "
            f"folder so that it holds {source.layout.split(' (')[0]}, and pass that folder as --data-dir "
            f"(data_dir in Python) or set $SEMPROBE_DATA to it"
        )
    try:
        for url, md5, folder in source.downloads:
            _fetch_archive(url, target / folder, md5)
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
