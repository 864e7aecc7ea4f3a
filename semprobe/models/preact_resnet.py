"""PreAct ResNet-18 for 32x32 images, the backbone of SCARL's experiments.

Parameter names follow ``preactresnet.py`` of Rice et al., "Overfitting in adversarially
robust deep learning" (ICML 2020), which the TRADES-family repositories share, so their
checkpoints load with ``load_state_dict(strict=True)``: ``conv1``, ``layer1..layer4`` of
:class:`PreActBlock`, ``bn`` and ``linear``. Global average pooling is adaptive, which
equals the original ``avg_pool2d(out, 4)`` on 32x32 inputs and also handles 64x64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from semprobe.models.base import ImageClassifier


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016): BN-ReLU-conv3x3, BN-ReLU-conv3x3.

    The 1x1 projection ``shortcut`` exists only when the stride or the width changes,
    and it is applied to the pre-activated input, as in the public code.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)
            )
        else:
            self.shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class PreActResNet18(ImageClassifier):
    """PreAct ResNet-18: 64-128-256-512 channels, two blocks per stage, 512-d features."""

    # channels_last forward+backward, batch 128, 2 CPU cores: 1.33x and 1.23x faster
    # (benchmarks/channels_last.py).
    prefers_channels_last = True

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        normalization: str | Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        super().__init__(
            arch="preact_resnet18",
            num_classes=num_classes,
            in_channels=in_channels,
            feature_dim=512,
            normalization=normalization,
        )
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.layer1 = _make_stage(64, 64, stride=1)
        self.layer2 = _make_stage(64, 128, stride=2)
        self.layer3 = _make_stage(128, 256, stride=2)
        self.layer4 = _make_stage(256, 512, stride=2)
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        out = self.conv1(self._to_memory_format(x))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


def _make_stage(in_planes: int, planes: int, stride: int) -> nn.Sequential:
    """Two PreActBlocks; the first one changes the stride and width."""
    return nn.Sequential(PreActBlock(in_planes, planes, stride), PreActBlock(planes, planes, 1))
