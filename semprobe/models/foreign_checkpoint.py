"""Loading any checkpoint file: semprobe's own, a foreign state_dict, a RobustBench zoo entry.

:func:`load_checkpoint` decides which a file is and loads it. A semprobe checkpoint (the
schema of :mod:`semprobe.models.checkpoint`) is read back by
:func:`~semprobe.models.checkpoint.load_own`. Foreign checkpoints (a bare ``state_dict``,
or one stored under ``state_dict``, ``model`` or ``net``, possibly with the ``module.``
prefix of DataParallel/DDP or the ``_orig_mod.`` prefix of ``torch.compile``) load when
the architecture is named: a semprobe registry name, ``torchvision:NAME`` or
``timm:NAME``; the load is strict and a mismatch names the missing and unexpected keys.
``robustbench:NAME`` loads a RobustBench zoo entry from its file.

Every file is read with ``torch.load(..., weights_only=True)``
(:func:`~semprobe.models.checkpoint.read_checkpoint_file`), and weights holding NaN or inf
are refused (:func:`~semprobe.models.checkpoint.load_weights`). The names here are also
importable from :mod:`semprobe.models.checkpoint`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from semprobe.errors import CheckpointError
from semprobe.models.checkpoint import Checkpoint, load_own, load_weights, read_checkpoint_file

FOREIGN_CONTAINER_KEYS = ("state_dict", "model", "net", "model_state_dict")
STRIPPABLE_PREFIXES = ("module.", "_orig_mod.")
CLASSIFIER_WEIGHT_KEYS = ("linear.weight", "fc.weight")
FIRST_CONV_KEY = "conv1.weight"


def load_checkpoint(
    path: str | os.PathLike,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    normalization: str | dict | None = None,
    strict: bool = True,
    device: str | torch.device = "cpu",
    dataset: str | None = None,
    threat_model: str | None = None,
    model_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> Checkpoint:
    """Load a semprobe checkpoint, a foreign one when ``arch`` is given, or a RobustBench model.

    ``arch`` is a semprobe registry name, ``torchvision:NAME`` or ``timm:NAME`` (see
    :func:`load_foreign_module`). ``path`` may be ``robustbench:NAME`` (or
    ``robustbench:DATASET/THREAT_MODEL/NAME``): ``dataset``, ``threat_model``,
    ``model_dir`` and ``download`` then say which zoo entry and where its file is (see
    :func:`load_zoo_model`); they are ignored for files.

    For a semprobe checkpoint the options must agree with what it records (or be left
    ``None``). For a foreign one, ``num_classes`` and ``in_channels`` are read off the
    weights when not given; ``normalization`` (``"none"``, a preset such as
    ``"cifar10"``, or ``"MEAN,.../STD,..."``) must be given, since weights do not say
    which input scaling the model was trained with.
    """
    from semprobe.models import create_model, parse_normalization
    from semprobe.models.foreign import split_arch
    from semprobe.models.zoo import is_zoo_spec

    if is_zoo_spec(path):
        return load_zoo_model(str(path), dataset=dataset, threat_model=threat_model, model_dir=model_dir,
                              download=download, arch=arch, normalization=normalization, device=device)
    if arch is not None:
        split_arch(arch)  # an unknown library prefix is refused before the file is read
    path = Path(path)
    raw = read_checkpoint_file(path)
    if isinstance(raw, Mapping) and str(raw.get("format", "")).startswith("semprobe-checkpoint/"):
        return load_own(path, raw, arch, num_classes, in_channels, normalization, strict, device)

    state = strip_prefixes(find_state_dict(raw, path))
    if arch is None:
        from semprobe.models import list_models

        raise CheckpointError(
            f"{path} is a foreign checkpoint (plain weights); pass --arch (one of: {', '.join(list_models())}, "
            "torchvision:NAME, timm:NAME)"
        )
    if split_arch(arch)[0] is not None:
        return load_foreign_module(path, state, arch, num_classes, in_channels, normalization, strict, device)
    inferred_classes, inferred_channels = _infer_shapes(state)
    num_classes = num_classes or inferred_classes
    in_channels = in_channels or inferred_channels
    if num_classes is None:
        raise CheckpointError(f"cannot infer the number of classes of {path}; pass --num-classes")
    if in_channels is None:
        raise CheckpointError(f"cannot infer the input channels of {path}; pass --in-channels")
    if normalization is None:
        raise CheckpointError(
            f"cannot infer the input normalization of foreign checkpoint {path}; pass --normalization "
            "none, a preset (cifar10, cifar100, imagenet, fashion-mnist) or MEAN,.../STD,..."
        )
    arch_kwargs = {"sub_block1": True} if any(k.startswith("sub_block1.") for k in state) else {}
    model = create_model(
        arch, num_classes=num_classes, in_channels=in_channels,
        normalization=parse_normalization(normalization, in_channels), **arch_kwargs,
    )
    load_weights(model, state, path, strict)
    model.to(device).eval()
    return Checkpoint(
        path=path, model=model, arch=arch, num_classes=num_classes, in_channels=in_channels,
        normalization=model.normalization, arch_kwargs=arch_kwargs, foreign=True,
    )


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def find_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The model weights inside a foreign checkpoint: bare, or under a known container key."""
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in FOREIGN_CONTAINER_KEYS:
            if _is_state_dict(obj.get(key)):
                return dict(obj[key])
    keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"{path} holds no model weights semprobe recognises (top-level: {keys}); expected a state_dict, "
        f"or one under {', '.join(repr(k) for k in FOREIGN_CONTAINER_KEYS)}"
    )


def strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove ``module.`` / ``_orig_mod.`` when they prefix *every* key (repeatedly, in any order).

    A prefix found on only some keys is a real module name and is kept.
    """
    state = dict(state_dict)
    changed = True
    while changed:
        changed = False
        for prefix in STRIPPABLE_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _infer_shapes(state: Mapping[str, torch.Tensor]) -> tuple[int | None, int | None]:
    num_classes = next((int(state[k].shape[0]) for k in CLASSIFIER_WEIGHT_KEYS if k in state), None)
    in_channels = int(state[FIRST_CONV_KEY].shape[1]) if FIRST_CONV_KEY in state else None
    return num_classes, in_channels


NORMALIZATION_NEEDED = ("none, a preset (cifar10, cifar100, imagenet, fashion-mnist) or MEAN,.../STD,...")


def load_foreign_module(path, state, arch, num_classes, in_channels, normalization, strict, device) -> Checkpoint:
    """A ``torchvision:NAME`` or ``timm:NAME`` state_dict: the module built with fresh
    weights, loaded strictly, wrapped with :func:`semprobe.models.wrap_model`.

    ``num_classes`` is read off the weights when not given; ``normalization`` must be
    given (``none`` for a module trained on raw [0, 1] pixels).
    """
    from semprobe.models.foreign import build_foreign, infer_num_classes, wrap_foreign

    if normalization is None:
        raise CheckpointError(f"cannot infer the input normalization of foreign checkpoint {path}; pass "
                              f"--normalization {NORMALIZATION_NEEDED}")
    num_classes = num_classes or infer_num_classes(arch, state, in_channels)
    if num_classes is None:
        raise CheckpointError(f"cannot infer the number of classes of {path} for {arch}; pass --num-classes")
    module = build_foreign(arch, num_classes, in_channels)
    load_weights(module, state, path, strict)
    model = wrap_foreign(module, arch, num_classes, normalization)
    model.to(device).eval()
    return Checkpoint(
        path=path, model=model, arch=arch, num_classes=num_classes, in_channels=model.in_channels,
        normalization=model.normalization, foreign=True,
    )


def load_zoo_model(spec, *, dataset=None, threat_model=None, model_dir=None, download=False, arch=None,
                   normalization=None, device="cpu") -> Checkpoint:
    """A RobustBench zoo entry (``robustbench:NAME``) from its file in RobustBench's layout.

    The architecture comes from RobustBench's registry, the weights from
    ``MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt`` (fetched only with ``download``), read with
    ``weights_only=True`` and loaded strictly. The model is wrapped with
    ``normalization=None``: zoo models take [0, 1] pixels and normalize inside, so
    ``normalization`` other than none and ``arch`` are refused.
    """
    from semprobe.models import parse_normalization, wrap_model
    from semprobe.models.zoo import build_zoo_model, locate_zoo_file, parse_zoo_spec, zoo_state_dict

    if arch is not None:
        raise CheckpointError(f"{spec} brings its own architecture; leave --arch out")
    if parse_normalization(normalization) is not None:
        raise CheckpointError(f"{spec} normalizes inside (RobustBench models take [0,1] pixels); leave "
                              "--normalization out, or it would be normalized twice")
    entry = parse_zoo_spec(spec, dataset, threat_model, model_dir)
    path = locate_zoo_file(entry, download)
    module = build_zoo_model(entry)
    load_weights(module, zoo_state_dict(read_checkpoint_file(path), module, path), path, strict=True)
    model = wrap_model(module, normalization=None)
    model.arch = entry.spec
    model.num_classes = _zoo_num_classes(entry.dataset)
    model.to(device).eval()
    return Checkpoint(
        path=path, model=model, arch=entry.spec, num_classes=model.num_classes, in_channels=model.in_channels or 3,
        normalization=None, dataset=entry.dataset, foreign=True, threat_model=entry.threat_model, source=entry.spec,
    )


def _zoo_num_classes(dataset: str) -> int:
    """Classes of a RobustBench dataset."""
    return {"cifar10": 10, "cifar100": 100, "imagenet": 1000}[dataset]
