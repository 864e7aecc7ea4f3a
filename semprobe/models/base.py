"""The interface every semprobe image classifier shares.

:class:`ImageClassifier` takes pixels in [0, 1], normalizes them with a mean/std held as
non-persistent buffers (so ``state_dict()`` has exactly the keys of the public code the
architecture reproduces), and answers the same questions for every architecture: the
penultimate features, the final linear layer, and the output of any submodule by its
dotted name ("taps"), all computed in one forward pass.

:func:`parse_normalization` turns the user's spelling of a normalization (a preset name,
``"MEAN/STD"`` text or a dict) into the ``{"mean": [...], "std": [...]}`` dict the models
and checkpoints store.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from semprobe.errors import ModelError
from semprobe.data.normalization import parse_normalization

PENULTIMATE = "penultimate"
LOGITS = "logits"

class ImageClassifier(nn.Module):
    """Base class of every registry model: [0, 1] pixels in, logits out.

    Subclasses build their layers, call ``super().__init__`` first and implement
    :meth:`forward_features`. The final ``nn.Linear`` is the attribute named by
    ``classifier_name``; ``forward(x) == classifier(features(x))`` always holds.

    Attributes:
        arch: the registry name, e.g. ``"preact_resnet18"``.
        num_classes, in_channels, feature_dim: output classes, input channels and the
            size of the penultimate features.
        channels_last: whether parameters and conv inputs use the channels_last memory
            format (set with :meth:`set_channels_last`).
        prefers_channels_last: class attribute; whether ``create_model`` turns
            channels_last on by default (chosen by measurement, see
            ``benchmarks/channels_last.py``).
    """

    classifier_name: ClassVar[str] = "linear"
    prefers_channels_last: ClassVar[bool] = False

    def __init__(
        self,
        *,
        arch: str,
        num_classes: int,
        in_channels: int,
        feature_dim: int,
        normalization: str | Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(f"{name} must be a positive integer, got {value!r}")
        self.arch = arch
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feature_dim = feature_dim
        self.channels_last = False
        self._register_normalization(normalization, in_channels)

    def _register_normalization(
        self, normalization: str | Mapping[str, Sequence[float]] | None, in_channels: int | None
    ) -> None:
        """Parse ``normalization`` and hold its mean/std as non-persistent buffers."""
        self._normalization = parse_normalization(normalization, in_channels)
        mean = std = None
        if self._normalization is not None:
            mean = torch.tensor(self._normalization["mean"]).view(1, -1, 1, 1)
            std = torch.tensor(self._normalization["std"]).view(1, -1, 1, 1)
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)

    @property
    def normalization(self) -> dict[str, list[float]] | None:
        """The ``{"mean": [...], "std": [...]}`` applied to inputs, or ``None``."""
        if self._normalization is None:
            return None
        return {key: list(values) for key, values in self._normalization.items()}

    @property
    def classifier(self) -> nn.Linear:
        """The final linear layer, mapping penultimate features to logits."""
        return getattr(self, self.classifier_name)

    def normalize(self, x: Tensor) -> Tensor:
        """Map [0, 1] pixels to the network's input scale: ``(x - mean) / std``."""
        if self.input_mean is None:
            return x
        return (x - self.input_mean) / self.input_std

    def forward_features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(n, feature_dim)`` of an already normalized input.

        Implementations start with :meth:`_to_memory_format` so the convolutions see
        their input in the model's memory format.
        """
        raise NotImplementedError

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(n, feature_dim)`` of raw [0, 1] pixels."""
        return self.forward_features(self.normalize(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(n, num_classes)`` of raw [0, 1] pixels."""
        return self.classifier(self.features(x))

    def set_channels_last(self, enabled: bool) -> ImageClassifier:
        """Store 4-D parameters (and convert conv inputs) channels_last, or back; returns self."""
        self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        self.channels_last = enabled
        return self

    def _to_memory_format(self, x: Tensor) -> Tensor:
        """Return a 4-D input in channels_last layout when the model is channels_last."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def tap_names(self) -> list[str]:
        """Every name :meth:`extract` accepts: penultimate, logits and all submodules."""
        return [PENULTIMATE, LOGITS] + [name for name, _ in self.named_modules() if name]

    def extract(self, x: Tensor, taps: str | Sequence[str]) -> dict[str, Tensor]:
        """Compute the requested taps of raw [0, 1] pixels in one forward pass.

        ``"penultimate"`` is the classifier's input, ``"logits"`` its output, and any
        other name is a submodule's dotted name (see :meth:`tap_names`) whose raw output
        is returned unflattened. Outputs stay in the autograd graph. The result maps
        each requested name to its tensor, in the order asked.
        """
        names = [taps] if isinstance(taps, str) else list(taps)
        modules = dict(self.named_modules())
        for name in names:
            if name in (PENULTIMATE, LOGITS) or (name and name in modules):
                continue
            raise ModelError(self._unknown_tap_message(name))

        outputs: dict[str, Tensor] = {}
        handles = []
        try:
            for name in dict.fromkeys(names):
                if name not in (PENULTIMATE, LOGITS):
                    hook = _output_recorder(outputs, name)
                    handles.append(modules[name].register_forward_hook(hook))
            outputs[PENULTIMATE] = self.features(x)
            outputs[LOGITS] = self.classifier(outputs[PENULTIMATE])
        finally:
            for handle in handles:
                handle.remove()

        not_run = [name for name in names if name not in outputs]
        if not_run:
            raise ModelError(
                f"tap(s) {not_run} of {self.arch} are modules the forward pass never runs; "
                "choose another name from tap_names()"
            )
        return {name: outputs[name] for name in names}

    def _unknown_tap_message(self, name: str) -> str:
        """One line naming the bad tap, close or example valid names, and tap_names()."""
        valid = self.tap_names()
        suggestions = difflib.get_close_matches(name, valid, n=5) or valid[:6]
        return (
            f"unknown tap {name!r} for {self.arch}; valid taps include "
            f"{', '.join(repr(s) for s in suggestions)}; model.tap_names() lists all {len(valid)}"
        )

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, num_classes={self.num_classes}, in_channels={self.in_channels}, "
            f"feature_dim={self.feature_dim}, normalization={self._normalization}"
        )


def _output_recorder(
    outputs: dict[str, Tensor], name: str
) -> Callable[[nn.Module, tuple, Tensor], None]:
    """A forward hook that stores the module's output under ``name``."""

    def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        outputs[name] = output

    return record
