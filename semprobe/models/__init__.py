"""Image classifiers for semprobe: registry, in-model normalization, taps, SCARL heads,
and :func:`wrap_model` for any other classifier module; :func:`load_model` loads or builds any
of them from a file, a RobustBench name or an architecture name.

Every model takes pixels in [0, 1] and holds its mean/std normalization as non-persistent
buffers, so its ``state_dict`` keys are those of the public code it reproduces::

    from semprobe.models import create_model
    model = create_model("preact_resnet18", num_classes=10, normalization="cifar10")
    taps = model.extract(images, ["layer3", "penultimate", "logits"])

This package imports torch; ``import semprobe`` does not import it.
"""

from semprobe.models.base import ImageClassifier, parse_normalization
from semprobe.models.heads import ProjectionHead, ProjectionHeads
from semprobe.models.loading import load_model
from semprobe.models.registry import create_model, list_models
from semprobe.models.wrapper import WrappedModel, wrap_model

__all__ = [
    "ImageClassifier",
    "ProjectionHead",
    "ProjectionHeads",
    "create_model",
    "list_models",
    "load_model",
    "WrappedModel",
    "parse_normalization",
    "wrap_model",
]
