"""Architectures from other libraries, by name: ``torchvision:NAME`` and ``timm:NAME``.

``build_foreign(arch, num_classes)`` builds the plain module with fresh weights
(``weights=None`` / ``pretrained=False``: nothing is downloaded); the checkpoint loader
fills in the weights and wraps it with :func:`semprobe.models.wrap_model`. timm is an
optional extra (``pip install semprobe[timm]``) and is imported only when asked for.
"""

from __future__ import annotations

import difflib
import warnings

from torch import nn

from semprobe.errors import ModelError

FOREIGN_LIBRARIES = ("torchvision", "timm")
TIMM_EXTRA = "pip install semprobe[timm]"


def split_arch(arch: str) -> tuple[str | None, str]:
    """``"torchvision:resnet18"`` -> ``("torchvision", "resnet18")``; a semprobe name -> ``(None, name)``.

    A prefix other than ``torchvision`` or ``timm`` is refused (one line).
    """
    if ":" not in arch:
        return None, arch
    library, name = arch.split(":", 1)
    if library not in FOREIGN_LIBRARIES or not name:
        raise ModelError(f"unknown architecture {arch!r}: use a semprobe name, torchvision:NAME or timm:NAME")
    return library, name


def close_matches(name: str, candidates: list[str], limit: int = 5) -> str:
    """``"; close matches: a, b"`` for the candidates nearest ``name`` (empty text when none)."""
    lowered = {c.lower(): c for c in candidates}
    similar = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
    containing = [c for c in lowered if name.lower() in c]
    found = list(dict.fromkeys(lowered[c] for c in similar + containing))[:limit]
    return f"; close matches: {', '.join(found)}" if found else ""


def torchvision_classifiers() -> list[str]:
    """Names of torchvision's image classification constructors (``torchvision.models``)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def timm_models() -> list[str]:
    """Names timm can build; a ModelError naming the pip command when timm is missing."""
    return sorted(_import_timm().list_models())


def _import_timm():
    """The ``timm`` module, or a one-line ModelError saying how to install it."""
    try:
        with warnings.catch_warnings():  # its import's deprecation notices say nothing about the user's model
            warnings.simplefilter("ignore")
            import timm
    except ImportError:
        raise ModelError(f"timm: architectures need the timm package; install it with: {TIMM_EXTRA}") from None
    return timm


def build_foreign(arch: str, num_classes: int, in_channels: int | None = None) -> nn.Module:
    """The plain module of ``torchvision:NAME`` or ``timm:NAME`` with fresh weights.

    Unknown names are refused with the close matches. torchvision's classifiers take
    3-channel images only; timm's take ``in_channels`` (default 3).
    """
    library, name = split_arch(arch)
    if library == "torchvision":
        return _build_torchvision(name, num_classes, in_channels)
    if library == "timm":
        return _build_timm(name, num_classes, in_channels)
    raise ModelError(f"{arch!r} is not a torchvision: or timm: architecture")


def _build_torchvision(name: str, num_classes: int, in_channels: int | None) -> nn.Module:
    """``torchvision.models.get_model(name, weights=None, num_classes=...)`` with checked inputs."""
    import torchvision

    names = torchvision_classifiers()
    if name not in names:
        raise ModelError(f"unknown torchvision classifier {name!r}{close_matches(name, names)}")
    if in_channels not in (None, 3):
        raise ModelError(f"torchvision:{name} takes 3-channel images, not --in-channels {in_channels}")
    try:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"torchvision:{name} cannot be built with num_classes={num_classes}: {exc}") from None


def _build_timm(name: str, num_classes: int, in_channels: int | None) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=..., in_chans=...)`` with checked inputs."""
    timm = _import_timm()
    if not timm.is_model(name):
        raise ModelError(f"unknown timm model {name!r}{close_matches(name, timm_models())}")
    try:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels or 3)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"timm:{name} cannot be built with num_classes={num_classes}: {exc}") from None


def wrap_foreign(module: nn.Module, arch: str, num_classes: int, normalization=None):
    """``module`` (built by :func:`build_foreign`) behind semprobe's interface, named ``arch``.

    :func:`semprobe.models.wrap_model` with ``normalization`` (``None``, a preset, or
    mean/std) in front; ``arch`` and ``num_classes`` are recorded on the wrapper, so the
    model describes itself before it has seen a batch.
    """
    from semprobe.models.wrapper import wrap_model
    from semprobe.data.normalization import parse_normalization

    model = wrap_model(module, normalization=parse_normalization(normalization))
    model.arch = arch
    model.num_classes = num_classes
    return model


def infer_num_classes(arch: str, state: dict, in_channels: int | None = None) -> int | None:
    """Classes of a torchvision/timm state_dict: the size its classifier has where the
    architecture built with 1000 classes has 1000 (``None`` when the weights do not say)."""
    reference = build_foreign(arch, 1000, in_channels).state_dict()
    sizes = {int(state[k].shape[0]) for k, v in reference.items()
             if k in state and v.dim() >= 1 and v.shape[0] == 1000 and state[k].shape[1:] == v.shape[1:]}
    return sizes.pop() if len(sizes) == 1 else None
