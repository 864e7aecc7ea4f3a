"""Random training images for TLA (Mao et al. 2019): the pool its hard negatives are mined from,
and a clean image of the same class for each anchor.

The authors' code draws both from separate streams of the training set, beside the batch:
``mul_num`` (10 on CIFAR-10) batches of random images whose embeddings are searched for each
anchor's nearest image of another class, and one random image of the anchor's class as the
second positive. :class:`ImagePool` does the same from the run's (non-augmented) training
split, with its own generator, re-seeded every epoch so that a resumed run draws what an
uninterrupted one draws.
"""

from __future__ import annotations

import torch

from semprobe.data import ImageDataset


class ImagePool:
    """Draws random training images, and random images of given classes, onto ``device``."""

    def __init__(self, dataset: ImageDataset, device: torch.device) -> None:
        self.dataset = dataset
        self.device = device
        labels = dataset.labels
        self.by_class = [torch.nonzero(labels == k).squeeze(1) for k in range(int(labels.max()) + 1)]
        self.generator = torch.Generator()

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def draw(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` images drawn uniformly with replacement, and their labels."""
        index = torch.randint(len(self.dataset), (count,), generator=self.generator)
        images, labels = self.dataset.tensors(index)
        return images.to(self.device), labels.to(self.device)

    def same_class(self, labels: torch.Tensor) -> torch.Tensor:
        """For each label, a random training image of that class (uniform within the class)."""
        picks = []
        for label in labels.tolist():
            members = self.by_class[label]
            picks.append(int(members[torch.randint(len(members), (1,), generator=self.generator)]))
        images, _ = self.dataset.tensors(torch.tensor(picks, dtype=torch.long))
        return images.to(self.device)
