"""``imagefolder:PATH`` datasets: a folder of images in torchvision's ``ImageFolder`` layout.

``PATH`` holds ``train/`` and ``test/`` (or ``val/`` when there is no ``test/``), each
with one sub-folder per class (``train/dog/1.png``, ``test/dog/7.jpg``; images may sit
deeper, as ``ImageFolder`` allows). The classes are the sorted folder names of
``train/``; a test folder may lack a class but may not add one. Images are read lazily
with PIL as RGB and resized (bilinear) to ``image_size`` pixels square, or, without it,
to the size of the first training image. The phrase of a class is its folder name with
``_`` and ``-`` turned into spaces (``golden_retriever`` -> ``golden retriever``);
``aliases`` override it as for every dataset. No normalization is assumed; the default
training augmentation is random crop and flip.
"""

from __future__ import annotations  # torch is imported when images are read: the CLI's --help stays light

import re
from pathlib import Path
from typing import TYPE_CHECKING

from semprobe.data.source import _Source
from semprobe.errors import ConfigError, DataError
from semprobe.options import MAX_IMAGE_SIZE

PREFIX = "imagefolder:"
TEST_FOLDERS = ("test", "val")
#: The file suffixes torchvision's ImageFolder reads.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})

if TYPE_CHECKING:
    import torch
LAYOUT = "train/CLASS/*.png and test/CLASS/*.png (or val/CLASS/...), one folder per class"


def is_imagefolder(name: object) -> bool:
    """Whether ``name`` is an ``imagefolder:PATH`` dataset name."""
    return isinstance(name, str) and name.startswith(PREFIX)


def folder_phrase(class_name: str) -> str:
    """The word-lookup phrase of a class folder: lower case, ``_`` and ``-`` as spaces."""
    return " ".join(re.sub(r"[_\-]", " ", class_name).lower().split())


def image_files(folder: Path) -> list[Path]:
    """The image files anywhere under ``folder``, sorted."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def root_of(name: str) -> Path:
    """The folder an ``imagefolder:PATH`` name points at, checked to have ``train/`` and a test folder."""
    text = name[len(PREFIX):]
    if not text:
        raise ConfigError(f"{name!r} names no folder; write imagefolder:PATH with PATH holding {LAYOUT}")
    root = Path(text).expanduser()
    if not root.is_dir():
        raise DataError(f"{name}: {root} is not a folder; an imagefolder dataset is a folder holding {LAYOUT}")
    if not (root / "train").is_dir():
        raise DataError(f"{name}: {root} has no train/ folder; it must hold {LAYOUT}")
    if evaluation_folder(root) is None:
        raise DataError(f"{name}: {root} has neither a test/ nor a val/ folder; it must hold {LAYOUT}")
    return root


def evaluation_folder(root: Path) -> Path | None:
    """``root/test``, else ``root/val``, else None."""
    return next((root / sub for sub in TEST_FOLDERS if (root / sub).is_dir()), None)


def class_folders(folder: Path) -> list[str]:
    """The sorted names of the visible sub-folders of ``folder``."""
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def read_classes(root: Path) -> tuple[str, ...]:
    """The class names: the folders of ``train/``, at least two."""
    classes = class_folders(root / "train")
    if len(classes) < 2:
        raise DataError(f"{root / 'train'} holds {len(classes)} class folder(s); an imagefolder dataset needs at "
                        f"least 2 ({LAYOUT})")
    return tuple(classes)


def image_shape(root: Path, image_size: int | None, classes: tuple[str, ...]) -> tuple[int, int, int]:
    """``(3, size, size)``, or the shape of the first training image of ``classes`` when ``image_size`` is None."""
    if image_size is not None:
        check_image_size(image_size)
        return (3, image_size, image_size)
    from PIL import Image

    for name in classes:
        files = image_files(root / "train" / name)
        if files:
            try:
                with Image.open(files[0]) as opened:
                    width, height = opened.size
            except OSError as exc:
                raise DataError(f"cannot read image {files[0]}: {exc}; replace or remove the file") from exc
            return (3, height, width)
    raise DataError(f"no images under {root / 'train'}; put {', '.join(sorted(IMAGE_SUFFIXES))} files in "
                    "its class folders")


def check_image_size(image_size: object) -> None:
    """Refuse an image size that is not a whole number in 1..MAX_IMAGE_SIZE."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"image size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}, got {image_size!r}")


def read_split(root: Path, classes: tuple[str, ...], train: bool) -> tuple[list[Path], torch.Tensor]:
    """The image files and labels of ``train/`` or of the test folder; label k is ``classes[k]``
    (:func:`read_classes`, the folders of ``train/``)."""
    import torch

    folder = root / "train" if train else evaluation_folder(root)
    unknown = sorted(set(class_folders(folder)) - set(classes))
    if unknown:
        raise DataError(f"{folder} has class folders that {root / 'train'} lacks: {', '.join(unknown)}; "
                        "rename or remove them")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = image_files(folder / name) if (folder / name).is_dir() else []
        files.extend(found)
        labels.extend([label] * len(found))
    if not files:
        raise DataError(f"no images under {folder}; put {', '.join(sorted(IMAGE_SUFFIXES))} files in its class "
                        "folders")
    return files, torch.tensor(labels, dtype=torch.int64)


def _imagefolder_source(name: str, image_size: int | None) -> _Source:
    """The :class:`~semprobe.data.source._Source` of an ``imagefolder:PATH`` name."""
    root = root_of(name)
    classes = read_classes(root)  # listed once: the shape and both splits use them
    return _Source(
        name=name,
        image_shape=image_shape(root, image_size, classes),
        classes=classes,
        normalization=None,
        augmentation="crop_flip",
        read_split=lambda directory, train: read_split(root, classes, train),
        layout=LAYOUT,
        phrase_of=folder_phrase,
    )
