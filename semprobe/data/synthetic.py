"""The datasets without files: scikit-learn's 8x8 digits and synthetic ``fake`` images.

``digits`` is :func:`sklearn.datasets.load_digits` (1,797 images, values 0..16), split
into 1,437 training and 360 test images by the stratified sampler of
:mod:`semprobe.data.splits` with seed 0. ``fake``, ``fake:CxHxW:K`` and
``fake:CxHxW:K:NTRAIN:NTEST`` are learnable synthetic images of any shape: one smooth
random prototype per class (uniform noise at a quarter of the size, upsampled bilinearly)
plus Gaussian noise, the same images for the same name on every call.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from semprobe.data.source import _Source
from semprobe.data.splits import _stratified_sample
from semprobe.errors import ConfigError

DIGITS_CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGITS_TEST_SIZE = 360

FAKE_DEFAULT = ((1, 28, 28), 10, 512, 256)
FAKE_FORMS = "fake, fake:CxHxW:K or fake:CxHxW:K:NTRAIN:NTEST (for example fake:3x32x32:10:512:256)"
FAKE_NOISE = 0.2


# --------------------------------------------------------------------------- digits


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


DIGITS_SOURCE = _Source(
    name="digits",
    image_shape=(1, 8, 8),
    classes=DIGITS_CLASSES,
    normalization=None,
    augmentation="none",
    read_split=lambda directory, train: _read_digits(train),
    pixel_max=16,
)


# --------------------------------------------------------------------------- fake


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


def is_fake(name: object) -> bool:
    """Whether ``name`` is a ``fake[:CxHxW:K[:NTRAIN:NTEST]]`` dataset name."""
    return isinstance(name, str) and (name == "fake" or name.startswith("fake:"))


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
