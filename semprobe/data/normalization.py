"""Input normalization: the per-channel mean/std presets and the parser of their spellings.

A normalization is ``{"mean": [...], "std": [...]}`` (one float per channel, pixels in
[0,1]) or ``None``. Models hold it as non-saved buffers and checkpoints record it;
datasets name their preset here so the two never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from semprobe.errors import ModelError

# Per-channel mean and std of the training images, for pixels in [0, 1].
NORMALIZATION_PRESETS: dict[str, dict[str, list[float]]] = {
    "cifar10": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]},
    "cifar100": {"mean": [0.5071, 0.4865, 0.4409], "std": [0.2673, 0.2564, 0.2762]},
    "imagenet": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    # TinyImageNet models are conventionally trained with the ImageNet constants.
    "tinyimagenet": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "fashion-mnist": {"mean": [0.2860], "std": [0.3530]},
}

_ACCEPTED_FORMS = (
    "'none', a preset (" + ", ".join(sorted(NORMALIZATION_PRESETS)) + "), "
    "'MEAN/STD' with comma-separated per-channel values "
    "(e.g. '0.4914,0.4822,0.4465/0.2470,0.2435,0.2616'), "
    "or a dict {'mean': [...], 'std': [...]}"
)


def parse_normalization(
    text: str | Mapping[str, Sequence[float]] | None, in_channels: int | None = None
) -> dict[str, list[float]] | None:
    """Return ``{"mean": [...], "std": [...]}`` (floats, one per channel) or ``None``.

    Accepts ``None`` or ``"none"`` (no normalization), a preset name (``cifar10``,
    ``cifar100``, ``imagenet``, ``tinyimagenet``, ``fashion-mnist``), the literal
    ``"MEAN/STD"`` form such as ``"0.4914,0.4822,0.4465/0.2470,0.2435,0.2616"`` (a single
    value on each side for one channel), or a dict with keys ``mean`` and ``std``.
    When ``in_channels`` is given, the number of values must equal it. Every std must be
    positive and every value finite; anything else raises :class:`ModelError`.
    """
    if text is None:
        return None
    if isinstance(text, Mapping):
        if set(text) != {"mean", "std"}:
            raise ModelError(
                f"normalization dict has keys {sorted(text)}; it needs exactly 'mean' and "
                "'std', each a list of per-channel floats"
            )
        mean, std = _as_floats(text["mean"], "mean"), _as_floats(text["std"], "std")
    elif isinstance(text, str):
        spelled = text.strip().lower()
        if spelled == "none":
            return None
        if spelled in NORMALIZATION_PRESETS:
            preset = NORMALIZATION_PRESETS[spelled]
            mean, std = list(preset["mean"]), list(preset["std"])
        else:
            mean, std = _parse_mean_std_text(text)
    else:
        raise ModelError(
            f"normalization must be text, a dict or None, not {type(text).__name__}; "
            f"use {_ACCEPTED_FORMS}"
        )
    _check_mean_std(mean, std, in_channels)
    return {"mean": mean, "std": std}


def _parse_mean_std_text(text: str) -> tuple[list[float], list[float]]:
    """Split ``"m1,m2,m3/s1,s2,s3"`` into the mean and std lists."""
    parts = text.split("/")
    try:
        if len(parts) != 2:
            raise ValueError
        mean, std = ([float(v) for v in part.split(",")] for part in parts)
    except ValueError:
        raise ModelError(f"cannot read normalization {text!r}; use {_ACCEPTED_FORMS}") from None
    return mean, std


def _as_floats(values: object, what: str) -> list[float]:
    """Convert a sequence of numbers to a list of floats, or raise ModelError."""
    message = f"normalization {what} must be a list of per-channel floats, got {values!r}"
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ModelError(message)
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise ModelError(message) from None


def _check_mean_std(mean: list[float], std: list[float], in_channels: int | None) -> None:
    """Refuse empty, mismatched, non-finite or non-positive-std normalizations."""
    if not mean or len(mean) != len(std):
        raise ModelError(
            f"normalization has {len(mean)} mean and {len(std)} std values; "
            "give one of each per channel"
        )
    if in_channels is not None and len(mean) != in_channels:
        raise ModelError(
            f"normalization has {len(mean)} channel(s) but the model takes {in_channels}; "
            f"give {in_channels} mean and std values"
        )
    if not all(math.isfinite(v) for v in mean + std):
        raise ModelError(f"normalization values must be finite, got mean {mean} std {std}")
    if min(std) <= 0:
        raise ModelError(f"normalization std values must be > 0, got {std}")
