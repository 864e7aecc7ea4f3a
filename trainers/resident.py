"""The training split held on the device as one tensor, batched without a DataLoader.

For small datasets (Fashion-MNIST, CIFAR: at most a few hundred MB as uint8) a
DataLoader's per-image Python calls and host-to-device copies cost more than the
forward pass of a GPU step. :class:`ResidentLoader` keeps the uint8 images and the labels
on the device and builds each batch by indexing, with the random crop and flip done on
the whole batch at once (:func:`semprobe.data.dataset.random_crop_flip_batch`).

It keeps the DataLoader path's order exactly: the indices come from the same
:class:`~torch.utils.data.DistributedSampler` (its permutation of seed + epoch, padded to a
multiple of the process count, this process's share), cut into the same local batches,
with the same rule for a last batch of one image (dropped: BatchNorm cannot train on it).
Without augmentation the batches are the DataLoader's, bit for bit. With augmentation
the crops and flips are drawn per batch from torch's global CPU generator (which the
loop seeds per epoch and process) instead of per image in the dataset, so they differ
from the DataLoader path's draws, but not between a CPU and a GPU run of the same seed.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DistributedSampler

from semprobe.data import ImageDataset
from semprobe.data.dataset import random_crop_flip_batch

#: ``--data-on-device auto`` keeps a training split on a CUDA device up to this many bytes (as uint8).
AUTO_LIMIT_BYTES = 2 * 1024**3


def can_hold(dataset: ImageDataset) -> bool:
    """Whether ``dataset`` is an in-memory tensor (not image files) that a loader can put on a device."""
    return dataset.stored_images() is not None


def use_resident(choice: str, dataset: ImageDataset, device: torch.device) -> bool:
    """``--data-on-device``: ``on`` (refused earlier for file datasets), ``off``, or ``auto`` (on for an
    in-memory split of at most :data:`AUTO_LIMIT_BYTES` on CUDA, off on the CPU)."""
    if choice == "off" or not can_hold(dataset):
        return False
    if choice == "on":
        return True
    images, _ = dataset.stored_images()
    return device.type == "cuda" and images.numel() <= AUTO_LIMIT_BYTES


class ResidentLoader:
    """Batches of ``dataset`` from a copy on ``device``, in ``sampler``'s order (see the module doc)."""

    def __init__(self, dataset: ImageDataset, sampler: DistributedSampler, batch_size: int,
                 device: torch.device) -> None:
        images, pixel_max = dataset.stored_images()
        self.images = images.to(device)
        self.labels = dataset.labels.to(device)
        self.pixel_max = pixel_max
        self.sampler = sampler
        self.batch_size = batch_size
        self.augment = dataset.augmentation == "crop_flip"
        self.padding = max(1, min(dataset.info.image_shape[1:]) // 8)  # as ImageDataset.__getitem__
        self.drop_last = len(sampler) % batch_size == 1

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.int64)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size].to(self.images.device)
            images = self.images[index]
            if self.augment:
                images = random_crop_flip_batch(images, self.padding)
            yield images.float().div_(self.pixel_max), self.labels[index]
