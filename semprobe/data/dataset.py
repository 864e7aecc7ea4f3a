"""One split of a dataset as images in [0,1]: :class:`DatasetInfo`, :class:`ImageDataset`
and the training augmentation.

A :class:`DatasetInfo` says what a dataset is (classes, phrases, image shape,
normalization preset, default augmentation); an :class:`ImageDataset` holds one split's
images (a uint8 tensor in memory, or image files read lazily with PIL) with their labels.
The augmentation is ``crop_flip`` (:func:`random_crop_flip`, torchvision's
``RandomCrop(size, padding)`` then ``RandomHorizontalFlip()``) or ``none``; it is applied
on access only, never in :meth:`ImageDataset.tensors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from semprobe.errors import ConfigError, DataError

AUGMENTATIONS = ("crop_flip", "none")

ImageSource = Union[torch.Tensor, Sequence[Path]]


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


def random_crop_flip_batch(images: torch.Tensor, padding: int) -> torch.Tensor:
    """:func:`random_crop_flip` on a whole batch (N x C x H x W, any dtype, any device) at once.

    Each image gets its own crop offsets and flip, drawn on the CPU from torch's global
    generator (and then moved to the images' device), so a seed gives the same crops and
    flips on the CPU and on a GPU.
    """
    count, channels, height, width = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (count, 2))
    flips = torch.rand(count) < 0.5
    rows = (offsets[:, :1] + torch.arange(height)).to(images.device)  # (N, H) rows of the padded image
    columns = offsets[:, 1:] + torch.arange(width)
    columns = torch.where(flips[:, None], columns.flip(1), columns).to(images.device)  # (N, W)
    padded = F.pad(images, (padding, padding, padding, padding))
    batch = torch.arange(count, device=images.device)[:, None, None, None]
    channel = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], columns[:, None, None, :]]


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
        return self.augment(image).float().div_(self.pixel_max), int(self.labels[index])

    def augment(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (C x H x W, any dtype) under this split's augmentation: a random crop of the
        image padded by an eighth of its side, then a random flip (``crop_flip``), or as it is
        (``none``). Other images trained alongside this split (pseudo-labelled extra data) get
        the same augmentation through it."""
        if self.augmentation == "crop_flip":
            return random_crop_flip(image, max(1, min(self.info.image_shape[1:]) // 8))
        return image

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

    def stored_images(self) -> tuple[torch.Tensor, int] | None:
        """The uint8 image tensor (N, C, H, W) held in memory and the value of a white pixel
        (``pixel_max``), or None for a dataset read from files."""
        return None if self._images is None else (self._images, self.pixel_max)

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
