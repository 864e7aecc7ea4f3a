"""WideResNet-34-10 and WideResNet-28-10 (Zagoruyko & Komodakis 2016) for 32x32 images.

Parameter names and initialization follow ``models/wideresnet.py`` of the TRADES and MART
repositories, so their checkpoints load with ``load_state_dict(strict=True)``: ``conv1``,
``block1..block3`` (each a :class:`NetworkBlock` whose ``.layer`` holds
:class:`WideBasicBlock` s), ``bn1``, ``relu`` and ``fc``. TRADES also builds a
``sub_block1`` that its forward pass never uses but whose weights are in its
checkpoints; ``sub_block1=True`` adds it (as RobustBench does) so they load strictly.
Dropout is left out (the robust-training repositories use ``dropRate=0``). ReLUs are not
in place, so a tap on a BN layer returns the BN output, not its rectified overwrite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semprobe.errors import ModelError
from semprobe.models.base import ImageClassifier


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the shortcut.

    When the width changes, the 1x1 ``convShortcut`` projects the pre-activated input
    (and the identity path is dropped), exactly as the public ``BasicBlock`` does.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        if in_planes == out_planes:
            self.convShortcut = None
        else:
            self.convShortcut = nn.Conv2d(
                in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False
            )

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(activated))))
        shortcut = x if self.convShortcut is None else self.convShortcut(activated)
        return shortcut + out


class NetworkBlock(nn.Module):
    """One stage: ``num_layers`` blocks in ``.layer``; the first sets stride and width."""

    def __init__(self, num_layers: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(
                WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
                for i in range(num_layers)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(ImageClassifier):
    """WRN-depth-widen_factor: stages of 16k/32k/64k channels, (depth-4)/6 blocks each.

    Args:
        depth: 6n + 4, e.g. 34 (5 blocks per stage) or 28 (4 blocks per stage).
        widen_factor: channel multiplier k (10 for WRN-34-10 and WRN-28-10).
        sub_block1: add TRADES' unused ``sub_block1`` so its checkpoints load strictly.
    """

    classifier_name = "fc"
    # channels_last forward+backward, batch 32, 2 CPU cores: WRN-28-10 1.08x and 1.10x,
    # WRN-34-10 1.10x and 1.17x faster (benchmarks/channels_last.py).
    prefers_channels_last = True

    def __init__(
        self,
        *,
        depth: int,
        widen_factor: int,
        sub_block1: bool = False,
        num_classes: int = 10,
        in_channels: int = 3,
        normalization: str | Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ModelError(f"WideResNet depth must be 6n + 4 with n >= 1 (e.g. 28, 34), got {depth}")
        if widen_factor < 1:
            raise ModelError(f"WideResNet widen_factor must be a positive integer, got {widen_factor}")
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        super().__init__(
            arch=f"wrn_{depth}_{widen_factor}",
            num_classes=num_classes,
            in_channels=in_channels,
            feature_dim=channels[3],
            normalization=normalization,
        )
        blocks_per_stage = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(blocks_per_stage, channels[0], channels[1], stride=1)
        if sub_block1:
            self.sub_block1 = NetworkBlock(blocks_per_stage, channels[0], channels[1], stride=1)
        self.block2 = NetworkBlock(blocks_per_stage, channels[1], channels[2], stride=2)
        self.block3 = NetworkBlock(blocks_per_stage, channels[2], channels[3], stride=2)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU()
        self.fc = nn.Linear(channels[3], num_classes)
        self._init_like_trades()

    @torch.no_grad()
    def _init_like_trades(self) -> None:
        """He-normal convs (fan-out), BN weight 1 / bias 0, zero Linear bias, as TRADES."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.bias.zero_()
            elif isinstance(module, nn.Linear):
                module.bias.zero_()

    def forward_features(self, x: Tensor) -> Tensor:
        out = self.conv1(self._to_memory_format(x))
        out = self.block3(self.block2(self.block1(out)))
        out = self.relu(self.bn1(out))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


def wrn_34_10(
    *,
    sub_block1: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
    normalization: str | Mapping[str, Sequence[float]] | None = None,
) -> WideResNet:
    """WideResNet-34-10 (5 blocks per stage, 640-d features, about 46M parameters)."""
    return WideResNet(
        depth=34,
        widen_factor=10,
        sub_block1=sub_block1,
        num_classes=num_classes,
        in_channels=in_channels,
        normalization=normalization,
    )


def wrn_28_10(
    *,
    sub_block1: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
    normalization: str | Mapping[str, Sequence[float]] | None = None,
) -> WideResNet:
    """WideResNet-28-10 (4 blocks per stage, 640-d features, about 36M parameters)."""
    return WideResNet(
        depth=28,
        widen_factor=10,
        sub_block1=sub_block1,
        num_classes=num_classes,
        in_channels=in_channels,
        normalization=normalization,
    )
