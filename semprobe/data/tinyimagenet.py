"""TinyImageNet: where its files are and how they are read and downloaded.

The folder is ``tiny-imagenet-200/`` as unpacked from ``tiny-imagenet-200.zip``
(http://cs231n.stanford.edu/): ``wnids.txt`` (the 200 WordNet ids; class ``i`` is the
``i``-th sorted), ``words.txt`` (the class name is the first name it gives a wnid),
``train/<wnid>/images/`` and the labelled ``val/`` folder, which serves as the test set.
The JPEGs are read lazily with PIL. A download fetches the zip, md5 checked, and unpacks it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from semprobe.data.imagefolder import image_files
from semprobe.data.source import _Source
from semprobe.errors import DataError

# The official archive and its md5 sum (the one torchvision checks its download against).
TINYIMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINYIMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"


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


TINYIMAGENET_SOURCE = _Source(
    name="tinyimagenet",
    image_shape=(3, 64, 64),
    classes=None,
    normalization="tinyimagenet",
    augmentation="crop_flip",
    read_split=_read_tinyimagenet,
    layout="tiny-imagenet-200/ (wnids.txt, words.txt, train/, val/ from tiny-imagenet-200.zip)",
    find=_find_tinyimagenet,
    read_classes=_read_tinyimagenet_classes,
    downloads=((TINYIMAGENET_URL, TINYIMAGENET_MD5, ""),),
    url=TINYIMAGENET_URL,
)
