"""ResNet-18 and ResNet-50 with the CIFAR stem (3x3 conv, stride 1, no max-pool).

Parameter names follow kuangliu/pytorch-cifar (``models/resnet.py``), the usual public
CIFAR ResNet, so its checkpoints load with ``load_state_dict(strict=True)``: ``conv1``,
``bn1``, ``layer1..layer4`` of :class:`BasicBlock` or :class:`Bottleneck` and ``linear``.
Global average pooling is adaptive, which equals the original ``avg_pool2d(out, 4)`` on
32x32 inputs and also handles 64x64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from semprobe.models.base import ImageClassifier


def _projection_shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential | None:
    """The 1x1 conv + BN ``shortcut`` when the shape changes, else None (identity)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection; ReLU after the sum."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection_shortcut(in_planes, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, each with BN; ReLU after the sum."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = self.expansion * planes
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _projection_shortcut(in_planes, out_planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + shortcut)


class ResNet(ImageClassifier):
    """CIFAR ResNet: stem conv3x3(64)-BN-ReLU, four stages of 64/128/256/512 planes.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        num_blocks: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        arch: the registry name recorded on the model.
    """

    # channels_last forward+backward, 2 CPU cores: ResNet-18 (batch 128) 1.42x and 1.41x,
    # ResNet-50 (batch 32) 1.59x and 1.12x faster (benchmarks/channels_last.py).
    prefers_channels_last = True

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: Sequence[int],
        *,
        arch: str,
        num_classes: int = 10,
        in_channels: int = 3,
        normalization: str | Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        super().__init__(
            arch=arch,
            num_classes=num_classes,
            in_channels=in_channels,
            feature_dim=512 * block.expansion,
            normalization=normalization,
        )
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for planes, blocks, stride in zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2)):
            layers = []
            for block_stride in [stride] + [1] * (blocks - 1):
                layers.append(block(in_planes, planes, block_stride))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(self._to_memory_format(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


def resnet18(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    normalization: str | Mapping[str, Sequence[float]] | None = None,
) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2), 512-d features."""
    return ResNet(
        BasicBlock,
        (2, 2, 2, 2),
        arch="resnet18",
        num_classes=num_classes,
        in_channels=in_channels,
        normalization=normalization,
    )


def resnet50(
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    normalization: str | Mapping[str, Sequence[float]] | None = None,
) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3), 2048-d features."""
    return ResNet(
        Bottleneck,
        (3, 4, 6, 3),
        arch="resnet50",
        num_classes=num_classes,
        in_channels=in_channels,
        normalization=normalization,
    )
