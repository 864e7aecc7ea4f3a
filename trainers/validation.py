"""The data and the per-epoch measurement of a training run: its splits, and clean and PGD-CE
accuracy on the validation (and test) split, shared out over the processes.

Every random draw comes from a stream derived from (seed, purpose, index) with
:func:`derive_seed`, so a resumed run, or a run on another number of processes, draws
what an uninterrupted single-process run draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from semprobe.attacks.gradient import pgd
from semprobe.data import ImageDataset, load_dataset
from semprobe.errors import ConfigError
from semprobe.robustness.sharding import derive_seed
from trainers import distributed
from trainers.config import TrainConfig

if TYPE_CHECKING:
    from trainers.extra_data import ExtraImages

# independent random streams derived from the seed
STREAM_DATA, STREAM_ATTACK, STREAM_EVAL, STREAM_SUBSET, STREAM_CENTRES, STREAM_POOL = range(6)
STREAM_EXTRA = 6  # the mixed batches of extra data (trainers.extra_data), the same on every process


@dataclass
class Splits:
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset | None
    extra: ExtraImages | None = None  # --extra-data (trainers.extra_data.load_extra)


def load_splits(config: TrainConfig) -> Splits:
    """The training, validation and (with ``eval_test``) test splits of the run's dataset.

    The validation images are the dataset's fixed held-out split (seed 0), the same for
    every run; ``max_train_images`` keeps a random subset of the rest, drawn with the seed.
    """
    files = {"data_dir": config.data_dir, "download": config.download, "image_size": config.image_size}
    train = load_dataset(config.dataset, "train", augment="crop_flip" if config.augment else "none",
                         val_size=config.val_size, **files)
    val = load_dataset(config.dataset, "val", val_size=config.val_size, **files)
    test = load_dataset(config.dataset, "test", **files) if config.eval_test else None
    if config.max_train_images is not None and config.max_train_images < len(train):
        generator = torch.Generator().manual_seed(derive_seed(config.seed, STREAM_SUBSET))
        keep = torch.randperm(len(train), generator=generator)[: config.max_train_images].sort().values
        train = train.subset(keep)
    return Splits(train=train, val=val, test=test)


def evaluate(
    model: nn.Module,
    dataset: ImageDataset,
    config: TrainConfig,
    device: torch.device,
    process: distributed.ProcessInfo = distributed.ProcessInfo(),
) -> dict[str, float]:
    """Clean and PGD-CE accuracy of ``model`` on ``dataset``, shared out over the processes.

    The PGD runs in the training's threat model (``config.norm``: L-inf or L2 ball of ``eps``).

    Images are taken in chunks of ``eval_batch_size`` in dataset order, chunk c on process
    ``c % world_size``, its random start drawn from a generator seeded by (seed, c).
    """
    model.eval()
    size = config.eval_batch_size
    counts = torch.zeros(3, dtype=torch.int64, device=device)
    for chunk in range(process.rank, math.ceil(len(dataset) / size), process.world_size):
        x, y = dataset.tensors(torch.arange(chunk * size, min(len(dataset), (chunk + 1) * size)))
        x, y = x.to(device), y.to(device)
        generator = torch.Generator(device=device).manual_seed(derive_seed(config.seed, STREAM_EVAL, chunk))
        x_adv = pgd(model, x, y, eps=config.eps, step_size=config.eval_step_size, steps=config.eval_steps,
                    loss="ce", random_start_kind="uniform", generator=generator, norm=config.norm)
        with torch.no_grad():
            counts[0] += (model(x).argmax(1) == y).sum()
            counts[1] += (model(x_adv).argmax(1) == y).sum()
        counts[2] += len(y)
    clean, robust, total = distributed.sum_across(counts).tolist()
    return {"clean_acc": clean / total, "pgd_acc": robust / total}


def check_input_size(model: nn.Module, image_shape: tuple[int, int, int], dataset: str) -> None:
    """Refuse, before anything is written, an architecture that cannot take the dataset's images."""
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *image_shape))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{model.arch} cannot classify the {image_shape[1]}x{image_shape[2]} images of {dataset} ({detail}); "
            "choose another --arch"
        ) from None
