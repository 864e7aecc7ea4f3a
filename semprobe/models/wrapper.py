"""Any ``torch.nn.Module`` classifier as a semprobe :class:`ImageClassifier`.

:func:`wrap_model` turns a module that maps [0, 1] pixels (or, with ``normalization``,
normalized pixels) to logits into a model semprobe can diagnose::

    import torchvision
    from semprobe.models import wrap_model
    model = wrap_model(torchvision.models.resnet18(num_classes=10), normalization="cifar10")
    taps = model.extract(images, ["layer4", "avgpool", "penultimate", "logits"])

- **Normalization.** ``normalization=None`` (the default) hands the module the raw
  [0, 1] pixels: use it for a module that normalizes inside (RobustBench models do).
  Otherwise the mean/std is applied once, in front of the module, with the same buffers
  as semprobe's own models.
- **Taps.** Any ``named_modules()`` name of the module (``layer4``, ``avgpool``,
  ``blocks.11``), recorded with forward hooks, plus ``penultimate`` and ``logits``.
- **Penultimate.** The input of the last ``nn.Linear`` that produces the logits, found on
  the first batch the model sees: one forward with a hook on every ``nn.Linear``; the
  Linear whose output is the model's output is the classifier. The choice is logged
  (logger ``semprobe.models.wrapper``) and kept in ``penultimate_module``. When no
  Linear, or more than one, produces the logits, :class:`ModelError` names the
  candidates and asks for ``penultimate="module.path"`` (the layer whose input the
  penultimate features are).

An :class:`ImageClassifier` (semprobe's own models, or an already wrapped module)
passes through :func:`wrap_model` unchanged.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from semprobe.errors import ModelError
from semprobe.models.base import LOGITS, PENULTIMATE, ImageClassifier, _output_recorder
from semprobe.data.normalization import parse_normalization

logger = logging.getLogger(__name__)

# Buffer names by which a module usually holds its own input normalization.
INNER_NORMALIZATION_NAMES = ("mean", "std", "mu", "sigma", "input_mean", "input_std")

Normalization = str | Mapping[str, Sequence[float]] | None


class WrappedModel(ImageClassifier):
    """A plain classifier module behind semprobe's :class:`ImageClassifier` interface.

    ``forward(x)`` is ``module(normalize(x))``; ``features(x)`` is the input of the
    classifier layer (``penultimate_module``) in that same forward pass, and
    ``classifier`` is that layer, so ``classifier(features(x)) == forward(x)`` whenever
    the module ends with it. ``num_classes`` and ``feature_dim`` are read off the first
    batch that locates the classifier (``None`` before).

    Attributes:
        module: the wrapped module (its parameters are this model's, under ``module.``).
        penultimate_module: dotted name of the classifier layer, or ``None`` until found.
    """

    def __init__(
        self, module: nn.Module, *, normalization: Normalization = None, penultimate: str | None = None
    ) -> None:
        nn.Module.__init__(self)
        self.module = module
        self.arch = f"wrapped:{type(module).__name__}"
        self.in_channels = _infer_in_channels(module, normalization)
        self.num_classes: int | None = None
        self.feature_dim: int | None = None
        self.channels_last = False
        self._register_normalization(normalization, self.in_channels)
        self.to(_module_device(module))
        self.penultimate_module: str | None = None
        if penultimate is not None:
            self._module_named(penultimate)
            self.penultimate_module = penultimate
        self.training = module.training  # the wrapper is in the mode the module was given in (not nn.Module's train)

    @property
    def classifier(self) -> nn.Module:
        """The layer whose input is the penultimate features (found on the first batch)."""
        if self.penultimate_module is None:
            raise ModelError(
                f"the classifier of {self.arch} is found on the first batch it sees; call "
                "model.locate_penultimate(images) first, or wrap_model(..., penultimate='module.path')"
            )
        return self.module.get_submodule(self.penultimate_module)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of raw [0, 1] pixels: the module's output on the (normalized) input."""
        return self.module(self.normalize(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """Penultimate features of an already normalized input (the classifier's input)."""
        return self._run(x, [PENULTIMATE], normalized=True)[PENULTIMATE]

    def tap_names(self) -> list[str]:
        """Every name :meth:`extract` accepts: penultimate, logits and the module's submodules."""
        return [PENULTIMATE, LOGITS] + [name for name, _ in self.module.named_modules() if name]

    def extract(self, x: Tensor, taps: str | Sequence[str]) -> dict[str, Tensor]:
        """The requested taps of raw [0, 1] pixels, from one forward pass of the module.

        Names are those of :meth:`tap_names`; module outputs are returned unflattened and
        stay in the autograd graph. Only a request for ``penultimate`` needs the
        classifier, so taps of a module whose classifier is ambiguous still work.
        """
        names = [taps] if isinstance(taps, str) else list(taps)
        valid = set(self.tap_names())
        for name in names:
            if name not in valid:
                raise ModelError(self._unknown_tap_message(name))
        return self._run(x, names, normalized=False)

    def locate_penultimate(self, x: Tensor) -> str:
        """Find (once) the ``nn.Linear`` producing the logits of raw pixels ``x``; return its name."""
        return self._locate(self.normalize(x))

    def _locate(self, inputs: Tensor) -> str:
        """:meth:`locate_penultimate` on an already normalized input (two images suffice)."""
        if self.penultimate_module is None:
            with torch.no_grad(), _eval_mode(self.module):
                self.penultimate_module = find_classifier_linear(self.module, inputs[:2])
            logger.info("%s: penultimate = input of %r", self.arch, self.penultimate_module)
        return self.penultimate_module

    def _run(self, x: Tensor, names: Sequence[str], *, normalized: bool) -> dict[str, Tensor]:
        """One forward of the module with hooks on the requested taps and the classifier."""
        inputs = x if normalized else self.normalize(x)
        outputs: dict[str, Tensor] = {}
        handles = []
        try:
            for name in dict.fromkeys(names):
                if name not in (PENULTIMATE, LOGITS):
                    handles.append(self._module_named(name).register_forward_hook(_output_recorder(outputs, name)))
            if PENULTIMATE in names:
                self._locate(inputs)
                handles.append(self.classifier.register_forward_hook(_input_recorder(outputs, PENULTIMATE)))
            outputs[LOGITS] = self.module(inputs)
        finally:
            for handle in handles:
                handle.remove()
        self._record_sizes(outputs)
        not_run = [name for name in names if name not in outputs]
        if not_run:
            raise ModelError(f"tap(s) {not_run} of {self.arch} are modules the forward pass never runs; "
                             "choose another name from tap_names()")
        return {name: outputs[name] for name in names}

    def _record_sizes(self, outputs: dict[str, Tensor]) -> None:
        """Set ``num_classes`` and ``feature_dim`` from a forward's logits and features."""
        logits = outputs.get(LOGITS)
        if isinstance(logits, Tensor) and logits.dim() == 2:
            self.num_classes = int(logits.shape[1])
        features = outputs.get(PENULTIMATE)
        if isinstance(features, Tensor):
            self.feature_dim = int(features[0].numel())

    def _module_named(self, name: str) -> nn.Module:
        """The submodule of the wrapped module at dotted path ``name``, or a ModelError."""
        modules = dict(self.module.named_modules())
        if not name or name not in modules:
            raise ModelError(self._unknown_tap_message(name))
        return modules[name]


def wrap_model(
    module: nn.Module, *, normalization: Normalization = None, penultimate: str | None = None
) -> ImageClassifier:
    """Return ``module`` as an :class:`ImageClassifier` (see the module docstring).

    An :class:`ImageClassifier` is returned unchanged; asking it for a different
    normalization or classifier than its own is refused, since that would normalize
    twice or lie about the features. ``normalization`` (a preset name, ``"MEAN/STD"``
    or a dict) is applied in front of ``module``; leave it ``None`` for a module that
    normalizes inside. ``penultimate`` names the layer whose input are the penultimate
    features, when the automatic search cannot tell.
    """
    if isinstance(module, ImageClassifier):
        _check_passthrough(module, normalization, penultimate)
        return module
    if not isinstance(module, nn.Module):
        raise ModelError(f"wrap_model needs a torch.nn.Module, got {type(module).__name__}")
    if parse_normalization(normalization) is not None:
        _warn_if_normalizing_inside(module)
    return WrappedModel(module, normalization=normalization, penultimate=penultimate)


def find_classifier_linear(module: nn.Module, x: Tensor) -> str:
    """Dotted name of the one ``nn.Linear`` whose output is ``module(x)``, or a ModelError.

    Runs one forward with a hook on every ``nn.Linear``. A Linear whose output is the
    returned tensor itself wins; failing that, one whose output equals it. None, several,
    or one called more than once (its input is not one tensor) is refused, naming the
    candidates.
    """
    linears = [name for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(f"{type(module).__name__} has no nn.Linear to take the penultimate features from; "
                         "pass penultimate='module.path' naming the layer whose input they are")
    calls: dict[str, list[Tensor]] = {name: [] for name in linears}
    handles = [module.get_submodule(name).register_forward_hook(_call_recorder(calls[name])) for name in linears]
    try:
        logits = module(x)
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(logits, Tensor):
        raise ModelError(f"{type(module).__name__} returns {type(logits).__name__}, not a logits tensor; "
                         "wrap it in a module that returns the logits")
    matches = [name for name in linears if any(out is logits for out in calls[name])]
    matches = matches or [name for name in linears if any(_same(out, logits) for out in calls[name])]
    if len(matches) != 1:
        raise ModelError(_ambiguity_message(module, matches, [name for name in linears if calls[name]]))
    chosen = matches[0]
    if len(calls[chosen]) > 1:
        raise ModelError(f"the classifier {chosen!r} of {type(module).__name__} runs {len(calls[chosen])} times "
                         "in one forward, so its input is not one feature tensor; pass penultimate='module.path'")
    return chosen


def _ambiguity_message(module: nn.Module, matches: list[str], called: list[str]) -> str:
    """One line saying why no single Linear was chosen, naming the candidates."""
    name = type(module).__name__
    if matches:
        what = f"several nn.Linear layers of {name} produce its logits: {', '.join(map(repr, matches))}"
    else:
        shown = ", ".join(map(repr, called)) or "none ran"
        what = f"no nn.Linear of {name} produces its logits (the Linear layers that ran: {shown})"
    return f"{what}; pass penultimate='module.path' naming the layer whose input are the penultimate features"


def _same(output: Tensor, logits: Tensor) -> bool:
    """Whether a Linear's output has the logits' shape and values."""
    return isinstance(output, Tensor) and output.shape == logits.shape and torch.equal(output, logits)


def _call_recorder(calls: list[Tensor]):
    """A forward hook appending each output of the module to ``calls``."""

    def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        calls.append(output)

    return record


def _input_recorder(outputs: dict[str, Tensor], name: str):
    """A forward hook storing the module's (first) input under ``name``; refuses a second call."""

    def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if name in outputs:
            raise ModelError("the classifier layer runs more than once in one forward, so its input is not one "
                             "feature tensor; pass penultimate='module.path' naming another layer")
        outputs[name] = inputs[0]

    return record


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for every submodule during the block (no BatchNorm update, no dropout), then restore."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _infer_in_channels(module: nn.Module, normalization: Normalization) -> int | None:
    """Input channels: the first Conv2d's, else the normalization's, else ``None`` (unknown)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    parsed = parse_normalization(normalization)
    return len(parsed["mean"]) if parsed else None


def _module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (CPU for an empty module)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _warn_if_normalizing_inside(module: nn.Module) -> None:
    """Warn when ``module`` holds buffers that look like its own input mean/std."""
    inside = [name for name, _ in module.named_buffers() if name.rsplit(".", 1)[-1] in INNER_NORMALIZATION_NAMES]
    if inside:
        warnings.warn(f"{type(module).__name__} holds {', '.join(inside)}, which look like its own input "
                      "normalization; with normalization= given as well, inputs are normalized twice. "
                      "Pass normalization=None if the module normalizes inside.", UserWarning, stacklevel=3)


def _check_passthrough(model: ImageClassifier, normalization: Normalization, penultimate: str | None) -> None:
    """Refuse a normalization or classifier that contradicts an ImageClassifier's own."""
    if normalization is not None and parse_normalization(normalization, model.in_channels) != model.normalization:
        raise ModelError(f"{model.arch} already normalizes with {model.normalization}; wrapping it with "
                         f"normalization={normalization!r} would normalize twice: leave normalization=None")
    own = getattr(model, "penultimate_module", None) or model.classifier_name
    if penultimate is not None and penultimate != own:
        raise ModelError(f"{model.arch} already takes its penultimate features at the input of {own!r}, "
                         f"not {penultimate!r}; leave penultimate=None")
