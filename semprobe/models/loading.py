"""One entry point for any model: :func:`load_model`.

``load_model(source, **options)`` returns a ready model (an
:class:`~semprobe.models.base.ImageClassifier`, in eval mode, on ``device``) from

- a checkpoint file: semprobe's own, or a foreign state_dict with ``arch=`` (what
  :func:`semprobe.models.foreign_checkpoint.load_checkpoint` reads);
- ``robustbench:NAME`` (or ``robustbench:DATASET/THREAT_MODEL/NAME``): a RobustBench zoo
  entry from its file in RobustBench's layout (``dataset=``, ``threat_model=``,
  ``model_dir=``, ``download=``; see :mod:`semprobe.models.zoo`);
- an architecture: ``torchvision:NAME``, ``timm:NAME`` or a semprobe registry name, with
  ``num_classes=``; fresh weights with ``weights=None`` (the default, as torchvision's
  ``weights=None``), or the weights of the file ``weights=PATH``;
- a ``torch.nn.Module``: wrapped with :func:`semprobe.models.wrap_model`.

Loading and building are those of :mod:`semprobe.models.foreign_checkpoint` (with
:mod:`semprobe.models.checkpoint`'s schema) and :mod:`semprobe.models.foreign`; this module
only decides which applies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from semprobe.errors import CheckpointError, ConfigError, ModelError

ZOO_OPTIONS = ("threat_model", "model_dir", "download")
SOURCE_FORMS = ("a checkpoint file, robustbench:NAME, torchvision:NAME, timm:NAME, a semprobe architecture "
                "or a torch.nn.Module")


def load_model(
    source: Any,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    normalization: Any = None,
    weights: str | os.PathLike | None = None,
    strict: bool = True,
    device: Any = "cpu",
    dataset: str | None = None,
    threat_model: str | None = None,
    model_dir: str | os.PathLike | None = None,
    download: bool = False,
):
    """The model ``source`` names, ready for use (see the module docstring for the forms).

    ``normalization`` (``None``/``"none"``, a preset such as ``"cifar10"``, or
    ``"MEAN,.../STD,..."``) is applied in front of a foreign or freshly built model; a
    foreign state_dict needs it (see :func:`~semprobe.models.foreign_checkpoint.load_checkpoint`).
    ``dataset``, ``threat_model``, ``model_dir`` and ``download`` select a RobustBench
    entry. Bad input raises :class:`~semprobe.errors.SemprobeError` subclasses
    (ConfigError, ModelError, CheckpointError) with a one-line message.
    """
    import torch

    from semprobe.models.foreign_checkpoint import load_checkpoint
    from semprobe.models.registry import list_models
    from semprobe.models.zoo import is_zoo_spec

    if isinstance(source, torch.nn.Module):
        _refuse_options(source, arch=arch, weights=weights, num_classes=num_classes, in_channels=in_channels,
                        **_zoo_options(dataset, threat_model, model_dir, download))
        from semprobe.models.wrapper import wrap_model

        return wrap_model(source, normalization=normalization).to(device).eval()
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"load_model: cannot load a {type(source).__name__}; give {SOURCE_FORMS}")
    if is_zoo_spec(source):
        _refuse_options(source, weights=weights, num_classes=num_classes, in_channels=in_channels)
        return load_checkpoint(str(source), arch=arch, normalization=normalization, device=device, dataset=dataset,
                               threat_model=threat_model, model_dir=model_dir, download=download).model
    _refuse_options(source, **_zoo_options(dataset, threat_model, model_dir, download))
    if Path(source).is_file():
        _refuse_options(source, weights=weights)
        return load_checkpoint(source, arch=arch, num_classes=num_classes, in_channels=in_channels,
                               normalization=normalization, strict=strict, device=device).model
    if not is_architecture(str(source)):
        raise CheckpointError(f"load_model: {str(source)!r} is neither a checkpoint file nor an architecture "
                              f"(torchvision:NAME, timm:NAME or one of {', '.join(list_models())})")
    _refuse_options(source, arch=arch)
    if weights is not None:
        return load_checkpoint(weights, arch=str(source), num_classes=num_classes, in_channels=in_channels,
                               normalization=normalization, strict=strict, device=device).model
    return build_model(str(source), num_classes, in_channels, normalization).to(device).eval()


def is_architecture(name: str) -> bool:
    """Whether ``name`` is ``torchvision:NAME``, ``timm:NAME`` or a semprobe registry name.

    Only the form is checked (a ``torchvision:``/``timm:`` name is looked up when built);
    another ``LIBRARY:`` prefix is refused by :func:`~semprobe.models.foreign.split_arch`.
    """
    from semprobe.models.foreign import split_arch
    from semprobe.models.registry import list_models

    library, bare = split_arch(name) if ":" in name and not Path(name).parent.name else (None, name)
    return library is not None or bare in list_models()


def build_model(arch: str, num_classes: int | None, in_channels: int | None = None, normalization: Any = None):
    """``arch`` with fresh weights: :func:`~semprobe.models.create_model` for a semprobe name,
    :func:`~semprobe.models.foreign.build_foreign` (wrapped) for ``torchvision:``/``timm:``."""
    from semprobe.models.foreign import build_foreign, split_arch, wrap_foreign
    from semprobe.models.registry import create_model

    if num_classes is None:
        raise ModelError(f"load_model({arch!r}) builds fresh weights: pass num_classes= (or weights=PATH)")
    if split_arch(arch)[0] is None:
        return create_model(arch, num_classes=num_classes, in_channels=in_channels or 3, normalization=normalization)
    return wrap_foreign(build_foreign(arch, num_classes, in_channels), arch, num_classes, normalization)


def _zoo_options(dataset, threat_model, model_dir, download) -> dict:
    """The RobustBench-only options, ``None`` where not given (``download=False`` is not given)."""
    return {"dataset": dataset, "threat_model": threat_model, "model_dir": model_dir, "download": download or None}


def _refuse_options(source: Any, **given: Any) -> None:
    """A ConfigError naming the options that ``source``'s form does not take (those not None)."""
    extra = [name for name, value in given.items() if value is not None]
    if extra:
        what = type(source).__name__ if not isinstance(source, (str, os.PathLike)) else repr(str(source))
        raise ConfigError(f"load_model({what}) does not take {', '.join(f'{n}=' for n in extra)}; leave "
                          f"{'it' if len(extra) == 1 else 'them'} out")
