"""Extra pseudo-labelled training images (RST, Carmon et al. 2019): reading them safely, and
mixing them into every training batch as RST's ``SemiSupervisedSampler`` does.

**The file** (``--extra-data FILE``, any method): pixels in [0, 1] with integer labels in
[0, K), the dataset's image size and channels, as

- an ``.npz`` (read with ``allow_pickle=False``) holding ``images`` and ``labels``;
- or RST's ``ti_500K_pseudo_labeled.pickle``: a dict with ``data`` and
  ``extrapolated_targets``. A pickle can run any code while it loads, so it is read by
  :class:`ArrayUnpickler`, which builds numpy arrays, numbers, strings and plain containers
  and refuses, before it is called, every other global the file names (``os.system``,
  ``builtins.eval``, any class): the allow-list is :data:`PICKLE_ALLOWED`.

Either container may use either pair of names. ``images`` are ``N x H x W x C`` uint8
(0..255, RST's layout) or ``N x C x H x W`` float in [0, 1]. Anything else (a missing file,
another shape, size or channel count than the dataset's, labels outside the classes, an
unsafe pickle) is a :class:`~semprobe.errors.DataError` raised before anything is written.
The file's SHA-256 goes into the run's configuration, and a resumed run refuses a file
that differs.

**The batches** (:class:`MixedBatchSampler`), as ``SemiSupervisedSampler`` in
yaircarmon/semisup-adv (``datasets.py``) with ``num_batches=ceil(50000 / batch_size)``
(``robust_self_training.py``):

- a batch of B images holds ``E = int(B * --extra-fraction)`` extra images and
  ``L = B - E`` labelled ones (B 256 and 0.5: 128 and 128);
- an epoch has ``ceil(N / B)`` batches, N the labelled training split's size: it passes
  through N images in all, labelled and extra (RST's "epoch" of 50K data points on the
  50,000 CIFAR-10 images), so it sees ``ceil(N / B) * L`` labelled images, the first of a
  fresh random permutation of the split (half the split at fraction 0.5);
- the labelled images of a batch are the next L of that permutation (fewer in a last,
  short batch, which RST fills up with extra images: only when ``ceil(N / B) L > N``, a
  labelled split smaller than B L / E; at fraction 0.5, smaller than L); the extra images
  are drawn uniformly *with replacement*, B minus the labelled count of them, independently
  for every batch;
- every image, extra ones included, gets the labelled split's augmentation
  (:meth:`semprobe.data.ImageDataset.augment`: crop + flip on CIFAR).

RST shuffles each batch's order because ``DataParallel`` splits a batch across GPUs,
each with its own BatchNorm statistics. Here the order inside a batch changes nothing
(the losses are means and BatchNorm sees the global batch), so the labelled images come
first and the extra ones after them.

**Random streams.** RST draws from torch's global generator. Here the permutation and the
draws of an epoch come from one generator seeded by (seed, :data:`STREAM_EXTRA`, epoch),
the same on every process, so a resumed run, and a run on several processes, draws
exactly the batches of an uninterrupted single-process run.

**Several processes** (``torchrun``): every process computes the same global batch and
takes its share of it, rank r the r-th of W equal blocks of its labelled images and the
r-th of its extra images: each process holds the same fraction of extra images, and the
union of the shares is the single process's batch. This needs the labelled and the extra
count of every batch to be divisible by W; otherwise :func:`check_shares` refuses the
run, before anything is written, saying which counts to change.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from semprobe.data import ImageDataset
from semprobe.errors import ConfigError, DataError
from semprobe.models.checkpoint import file_sha256
from trainers.config import TrainConfig
from trainers.distributed import ProcessInfo
from trainers.validation import STREAM_EXTRA, derive_seed

#: The names of the image and label arrays: ours, and RST's pickle's.
ARRAY_NAMES = (("images", "labels"), ("data", "extrapolated_targets"))


class ExtraImages(Dataset):
    """Pseudo-labelled images trained alongside ``labelled``, with its augmentation.

    ``images`` is a uint8 tensor N x H x W x C (0..255) or a float32 tensor N x C x H x W in
    [0, 1]; ``labels`` an int64 tensor of N labels. ``extra[i]`` is ``(float32 C x H x W
    image in [0, 1], label)``, augmented as the labelled split's images are.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, labelled: ImageDataset, source: str) -> None:
        self.images, self.labels, self.labelled, self.source = images, labels, labelled, source
        self.channels_last = images.dtype == torch.uint8

    def __len__(self) -> int:
        return len(self.labels)

    def _image(self, index: int) -> torch.Tensor:
        image = self.images[index]
        return image.permute(2, 0, 1) if self.channels_last else image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.labelled.augment(self._image(index))
        image = image.float().div_(255) if self.channels_last else image.clone()
        return image, int(self.labels[index])

    def tensors(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float32 N x C x H x W in [0, 1], never augmented) and labels at ``indices``."""
        images = torch.stack([self._image(int(i)) for i in indices])
        return (images.float().div_(255) if self.channels_last else images.clone()), self.labels[indices]

    def __repr__(self) -> str:
        return f"ExtraImages({self.source!r}, n={len(self)})"


class MixedTrainingSet(Dataset):
    """The labelled split (indices ``0 .. N-1``) followed by the extra images (``N ..``)."""

    def __init__(self, labelled: ImageDataset, extra: ExtraImages) -> None:
        self.labelled, self.extra = labelled, extra

    def __len__(self) -> int:
        return len(self.labelled) + len(self.extra)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        size = len(self.labelled)
        return self.labelled[index] if index < size else self.extra[index - size]


# ----------------------------------------------------------------------------- the batches


def labelled_counts(num_labelled: int, batch_size: int, fraction: float) -> list[int]:
    """The number of labelled images in each batch of an epoch (the rest of B are extra).

    RST: ``int(B * fraction)`` extra images, the other ``L = B - int(B * fraction)``
    labelled, for ``ceil(N / B)`` batches; a last batch with fewer than L labelled images
    left is filled up with extra ones. ``ceil(N / B) <= ceil(N / L)``, so an epoch never
    needs a second permutation of the labelled split (RST's sampler would take one).
    """
    per_batch = batch_size - int(batch_size * fraction)
    return [min(per_batch, num_labelled - s * per_batch) for s in range(math.ceil(num_labelled / batch_size))]


def check_shares(counts: list[int], batch_size: int, world_size: int) -> None:
    """Refuse a batch composition that ``world_size`` processes cannot share equally."""
    for step, labelled in enumerate(counts):
        if labelled % world_size or (batch_size - labelled) % world_size:
            where = "every batch" if labelled == counts[0] else f"the last batch ({step + 1} of {len(counts)})"
            raise ConfigError(
                f"{where} holds {labelled} labelled and {batch_size - labelled} extra images, which "
                f"{world_size} processes cannot share equally (each process takes the same fraction of extra "
                f"images); choose a --batch-size and --extra-fraction that make both counts divisible by "
                f"{world_size}, or another number of processes"
            )


class MixedBatchSampler(Sampler):
    """RST's ``SemiSupervisedSampler``: this process's share of each mixed global batch.

    Yields lists of indices into :class:`MixedTrainingSet` (labelled ``< num_labelled``,
    extra ``>= num_labelled``): rank r's block of the batch's labelled images, then its
    block of the extra ones. :meth:`set_epoch` selects the epoch's random stream.
    """

    def __init__(self, num_labelled: int, num_extra: int, batch_size: int, fraction: float, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.num_labelled, self.num_extra, self.batch_size = num_labelled, num_extra, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.counts = labelled_counts(num_labelled, batch_size, fraction)
        check_shares(self.counts, batch_size, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.counts)

    def global_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's global batches: (labelled indices, extra indices counted from 0)."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_EXTRA, self.epoch))
        order = torch.randperm(self.num_labelled, generator=generator)
        start = 0
        for labelled in self.counts:
            extra = torch.randint(self.num_extra, (self.batch_size - labelled,), generator=generator)
            yield order[start : start + labelled], extra
            start += labelled

    def __iter__(self) -> Iterator[list[int]]:
        for labelled, extra in self.global_batches():
            mine = labelled.view(self.world_size, -1)[self.rank], extra.view(self.world_size, -1)[self.rank]
            yield mine[0].tolist() + (mine[1] + self.num_labelled).tolist()


def mixed_loader(labelled: ImageDataset, extra: ExtraImages, config: TrainConfig, process: ProcessInfo,
                 pin_memory: bool = False) -> tuple[DataLoader, MixedBatchSampler]:
    """The training loader of a run with extra data, and its sampler (``set_epoch`` each epoch)."""
    sampler = MixedBatchSampler(len(labelled), len(extra), config.batch_size, config.extra_fraction, config.seed,
                                process.rank, process.world_size)
    loader = DataLoader(MixedTrainingSet(labelled, extra), batch_sampler=sampler, num_workers=config.workers,
                        pin_memory=pin_memory)
    return loader, sampler


# ----------------------------------------------------------------------------- reading the file


class _Refused(Exception):
    """A global the pickle names that :data:`PICKLE_ALLOWED` does not hold."""


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes (numpy arrays' data): latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _pickle_allowed() -> dict[tuple[str, str], Any]:
    try:  # numpy's array-reconstruction functions: numpy._core since numpy 2, numpy.core before
        from numpy._core import multiarray, numeric
    except ImportError:
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_bytes}
    for package in ("numpy.core", "numpy._core"):  # a file written under numpy 1 or 2 reads under both
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


#: (module, name) -> what a pickle of numpy arrays and plain containers may ask for: the array
#: and dtype types, numpy's reconstruction functions (``_reconstruct`` and ``scalar``, and
#: ``_frombuffer`` for protocol 5) and latin-1 ``_codecs.encode`` (bytes in protocols 0-2).
#: Dicts, lists, tuples, strings, bytes and numbers need no global.
PICKLE_ALLOWED: dict[tuple[str, str], Any] = _pickle_allowed()


class ArrayUnpickler(pickle.Unpickler):
    """A pickle reader that builds numpy arrays and plain containers and nothing else.

    :meth:`find_class` is where a pickle gets every callable it will call (REDUCE, NEWOBJ,
    BUILD, INST, OBJ, EXT all go through it); it answers only from :data:`PICKLE_ALLOWED`,
    so no code the file names (``os.system``, ``builtins.eval``, a class's ``__reduce__``
    target) is ever reached. Persistent ids are refused as the base class does.
    """

    def find_class(self, module: str, name: str) -> Any:
        found = PICKLE_ALLOWED.get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found


def _read_npz(path: Path) -> Any:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:  # object arrays, which only a pickle can hold
        raise DataError(f"--extra-data {path}: cannot read the .npz without unpickling ({exc}); save the images "
                        "and labels as numeric arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DataError(f"--extra-data {path}: cannot read the .npz ({exc})") from None


def _read_pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as file:
            return ArrayUnpickler(file).load()
    except _Refused as exc:
        raise DataError(
            f"--extra-data {path}: refused: the pickle asks for {exc}, which loading numpy arrays does not need "
            "and which could run code; save the images and labels with numpy.savez instead"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can fail in many ways; none is a program error
        raise DataError(f"--extra-data {path}: neither an .npz nor a readable pickle "
                        f"({type(exc).__name__}: {exc})") from None


def _arrays(content: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The image and label arrays of the file's content, under either pair of names."""
    for images, labels in ARRAY_NAMES:
        if isinstance(content, dict) and images in content and labels in content:
            found = content[images], content[labels]
            if not all(isinstance(array, np.ndarray) for array in found):
                raise DataError(f"--extra-data {path}: {images!r} and {labels!r} must be numpy arrays")
            return found
    keys = sorted(map(str, content)) if isinstance(content, dict) else f"a {type(content).__name__}"
    raise DataError(f"--extra-data {path} holds {keys}; expected 'images' and 'labels' "
                    "(or RST's 'data' and 'extrapolated_targets')")


def _images(images: np.ndarray, labelled: ImageDataset, path: Path) -> torch.Tensor:
    """The images as uint8 N x H x W x C or float32 N x C x H x W in [0, 1], checked against the dataset."""
    channels, height, width = labelled.info.image_shape
    layouts = f"N x {height} x {width} x {channels} uint8 or N x {channels} x {height} x {width} float in [0, 1]"
    if images.dtype == np.uint8:
        size = images.shape[1:3] if images.ndim == 4 else None
        found_channels = images.shape[3] if images.ndim == 4 else None
    elif images.dtype.kind == "f":
        size = images.shape[2:4] if images.ndim == 4 else None
        found_channels = images.shape[1] if images.ndim == 4 else None
    else:
        raise DataError(f"--extra-data {path}: images of dtype {images.dtype}; expected {layouts}")
    if size is None or len(images) == 0:
        raise DataError(f"--extra-data {path}: images of shape {images.shape}; expected {layouts}")
    if tuple(size) != (height, width) or found_channels != channels:
        if images.dtype == np.uint8 and images.shape[1:] == (channels, height, width):
            raise DataError(f"--extra-data {path}: uint8 images of shape {images.shape} look channels-first; "
                            f"uint8 images are N x H x W x C (RST's layout): expected {layouts}")
        raise DataError(
            f"--extra-data {path}: its images are {size[0]} x {size[1]} with {found_channels} channel(s), those of "
            f"{labelled.info.name} {height} x {width} with {channels}; expected {layouts}"
        )
    if images.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(images))
    images = images.astype(np.float32, copy=False)
    if not np.isfinite(images).all():
        raise DataError(f"--extra-data {path}: float images hold NaN or infinite values; pixels are in [0, 1]")
    if images.min() < 0 or images.max() > 1:
        raise DataError(f"--extra-data {path}: float images must be in [0, 1], found {images.min():.4g} .. "
                        f"{images.max():.4g}")
    return torch.from_numpy(np.ascontiguousarray(images))


def _labels(labels: np.ndarray, count: int, num_classes: int, path: Path) -> torch.Tensor:
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(f"--extra-data {path}: labels must be a 1-D integer array, got {labels.dtype} "
                        f"of shape {labels.shape}")
    if len(labels) != count:
        raise DataError(f"--extra-data {path}: {count} images but {len(labels)} labels")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise DataError(f"--extra-data {path}: labels must be class indices in [0, {num_classes}), "
                        f"found {low} .. {high}")
    return torch.from_numpy(labels.astype(np.int64))


def read_extra_data(path: str | Path, labelled: ImageDataset) -> ExtraImages:
    """Read and check the extra images for training alongside ``labelled`` (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise DataError(f"--extra-data {path}: cannot read it ({exc.strerror or exc})") from None
    content = _read_npz(path) if magic.startswith(b"PK") else _read_pickle(path)
    images, labels = _arrays(content, path)
    images_tensor = _images(images, labelled, path)
    return ExtraImages(images_tensor, _labels(labels, len(images), labelled.info.num_classes, path), labelled,
                       str(path))


def load_extra(config: TrainConfig, labelled: ImageDataset, world_size: int) -> ExtraImages | None:
    """The run's extra images (None without ``--extra-data``), checked for the processes' shares.

    Records the file's SHA-256 in ``config`` (``extra_data_sha256``), or, for a resumed run,
    refuses a file whose hash differs from the recorded one.
    """
    if config.extra_data is None:
        return None
    extra = read_extra_data(config.extra_data, labelled)
    digest = file_sha256(config.extra_data)
    if config.extra_data_sha256 not in (None, digest):
        raise ConfigError(f"--extra-data {config.extra_data} is not the file the run in {config.out} trained on "
                          "(its SHA-256 differs); resume it with that file")
    config.extra_data_sha256 = digest
    check_shares(labelled_counts(len(labelled), config.batch_size, config.extra_fraction), config.batch_size,
                 world_size)
    return extra
