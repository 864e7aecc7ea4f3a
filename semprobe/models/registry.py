"""The model registry: build any architecture by name, timm-style.

``create_model("preact_resnet18", num_classes=10, normalization="cifar10")`` returns an
:class:`~semprobe.models.base.ImageClassifier` taking [0, 1] pixels; ``list_models()``
names every architecture.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

from semprobe.errors import ModelError
from semprobe.models.base import ImageClassifier
from semprobe.models.preact_resnet import PreActResNet18
from semprobe.models.resnet import resnet18, resnet50
from semprobe.models.small_cnn import SmallCNN
from semprobe.models.wide_resnet import wrn_28_10, wrn_34_10

# Every builder takes keyword arguments num_classes, in_channels, normalization and
# possibly architecture-specific options (only the WideResNets' sub_block1 so far).
_BUILDERS: dict[str, Callable[..., ImageClassifier]] = {
    "preact_resnet18": PreActResNet18,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "small_cnn": SmallCNN,
    "wrn_28_10": wrn_28_10,
    "wrn_34_10": wrn_34_10,
}
_COMMON_ARGUMENTS = {"num_classes", "in_channels", "normalization"}


def list_models() -> list[str]:
    """The registry names, sorted."""
    return sorted(_BUILDERS)


def create_model(
    name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    normalization: str | Mapping[str, Sequence[float]] | None = None,
    *,
    channels_last: bool | None = None,
    **arch_kwargs: object,
) -> ImageClassifier:
    """Build the architecture ``name`` with freshly initialized weights.

    Args:
        name: a registry name (see :func:`list_models`).
        num_classes: number of logits.
        in_channels: number of input channels.
        normalization: ``None`` (inputs used as they are), ``{"mean": [...], "std": [...]}``
            with one value per channel, or any text :func:`parse_normalization` accepts.
        channels_last: store the weights channels_last and convert conv inputs to it;
            ``None`` uses the architecture's measured preference
            (``prefers_channels_last``).
        **arch_kwargs: architecture options, e.g. ``sub_block1=True`` for the WideResNets.

    Raises:
        ModelError: unknown name, an option the architecture does not take, or bad sizes
            or normalization.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    options = set(inspect.signature(builder).parameters) - _COMMON_ARGUMENTS
    unknown = sorted(set(arch_kwargs) - options)
    if unknown:
        accepted = ", ".join(sorted(options)) if options else "none"
        raise ModelError(
            f"model {name!r} does not take option(s) {', '.join(unknown)}; it accepts: {accepted}"
        )
    model = builder(
        num_classes=num_classes, in_channels=in_channels, normalization=normalization, **arch_kwargs
    )
    model.set_channels_last(model.prefers_channels_last if channels_last is None else channels_last)
    return model
