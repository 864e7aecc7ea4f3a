"""A small CNN for 28x28 (Fashion-MNIST) and 8x8 (digits) images that trains fast on CPU.

Two conv-BN-ReLU pairs of 32 channels, 2x2 max-pool, two of 64 channels, 2x2 max-pool,
then adaptive average pooling to 2x2, so every input of at least 4x4 pixels (and any
number of channels) gives 256 values; ``fc`` maps them to the 128-d penultimate features
(after a ReLU) and ``linear`` to the logits. This architecture is semprobe's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from semprobe.models.base import ImageClassifier


class SmallCNN(ImageClassifier):
    """conv(32)x2 - pool - conv(64)x2 - pool - avgpool(2x2) - fc(128) - linear."""

    # channels_last forward+backward, batch 128 of 1x28x28, 2 CPU cores: 1.63x and 1.29x
    # faster (benchmarks/channels_last.py).
    prefers_channels_last = True

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        normalization: str | Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        super().__init__(
            arch="small_cnn",
            num_classes=num_classes,
            in_channels=in_channels,
            feature_dim=128,
            normalization=normalization,
        )
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 32, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu2 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(64)
        self.relu4 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(64 * 2 * 2, 128)
        self.relu_fc = nn.ReLU()
        self.linear = nn.Linear(128, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(self._to_memory_format(x))))
        out = self.pool1(self.relu2(self.bn2(self.conv2(out))))
        out = self.relu3(self.bn3(self.conv3(out)))
        out = self.pool2(self.relu4(self.bn4(self.conv4(out))))
        out = self.avgpool(out).flatten(1)
        return self.relu_fc(self.fc(out))
