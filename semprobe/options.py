"""Parsing of the numbers and names users type: epsilons, alpha lists, devices, seeds.

Pure functions that raise :class:`ConfigError` with a message saying what is accepted;
the CLI and the trainers both use them, so ``8/255`` means the same everywhere.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

from semprobe.errors import ConfigError

# Upper bounds on the sizes users type, refused before any work instead of running until
# killed (documented in each option's --help and in README.md, "Limits").

#: Most alphas one ``--alphas`` list may hold: each alpha is a full PGD run over the images.
MAX_ALPHAS = 1_000
#: Most steps an iterative attack may take (PGD-100 and the 500-step curves of SCARL
#: Fig. 4 c fit well below it).
MAX_ATTACK_STEPS = 10_000
#: Most bootstrap replicates or permutations one test may draw: a p-value resolution of
#: 1e-5, far below any threshold in use.
MAX_RESAMPLES = 100_000
#: Most random half splits one split-half similarity matrix may average.
MAX_HALF_SPLITS = 1_000
#: Largest side, in pixels, an ``imagefolder:PATH`` dataset's images may be resized to.
MAX_IMAGE_SIZE = 4096

#: Threat models of the attacks: the L-infinity ball (the default) and the L2 ball.
NORMS = ("Linf", "L2")
NORM_HELP = ("Threat model: Linf (each pixel moves at most eps) or L2 (the perturbation's Euclidean norm is at "
             "most eps, e.g. --eps 0.5 on CIFAR); the --step-size default stays relative to eps.")


def parse_fraction(text: str | float | int, what: str = "value") -> float:
    """A float from ``0.031``, ``8/255`` or a number; ConfigError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        spelled = str(text).strip()
        try:
            if "/" in spelled:
                numerator, denominator = spelled.split("/")
                value = float(Fraction(float(numerator)) / Fraction(float(denominator)))
            else:
                value = float(spelled)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"cannot read {what} {text!r}; write a number such as 0.031 or a fraction such as 8/255") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {text!r}")
    return value


def parse_norm(text: str) -> str:
    """The threat model's norm, ``Linf`` or ``L2``, from any case (``linf``, ``l2``); ConfigError otherwise."""
    spelled = str(text).strip().lower()
    for norm in NORMS:
        if spelled == norm.lower():
            return norm
    raise ConfigError(f"unknown norm {text!r}; use {' or '.join(NORMS)}")


def parse_eps(text: str | float, norm: str = "Linf") -> float:
    """An attack radius in [0, 1] pixel units from ``8/255``, ``0.031``, ``0.5``.

    Under ``Linf`` (the default) the radius bounds each pixel's change, so it lies in
    [0, 1]; under ``L2`` it bounds the Euclidean norm of the whole perturbation, which
    may exceed 1 (0.5 is usual on CIFAR-10, 3.0 on ImageNet), so only eps >= 0 is required.
    """
    norm = parse_norm(norm)
    value = parse_fraction(text, "eps")
    if norm == "Linf" and not 0.0 <= value <= 1.0:
        raise ConfigError(f"eps must be in [0, 1] (pixels are in [0,1]), got {text}")
    if norm == "L2" and value < 0.0:
        raise ConfigError(f"eps must be >= 0 (an L2 radius in [0,1] pixel units, e.g. 0.5), got {text}")
    return value


def norm_option():
    """The ``--norm Linf|L2`` click option of eval, alpha-curve, cca and simmatrix (read with :func:`parse_norm`)."""
    import click

    return click.option("--norm", "norm_text", default="Linf", show_default=True, help=NORM_HELP)


def parse_step_size(text: str | float, eps: float) -> float:
    """A PGD step size: a number, a fraction, or relative to eps (``eps/10``, ``eps/4``, ``2.5*eps``)."""
    spelled = str(text).strip().replace(" ", "")
    if spelled.startswith("eps/"):
        divisor = parse_fraction(spelled[4:], "step size divisor")
        if divisor <= 0:
            raise ConfigError(f"the step size divisor must be > 0, got {text!r}; write eps/4 or eps/10")
        value = eps / divisor
    elif spelled.endswith("*eps"):
        value = eps * parse_fraction(spelled[:-4], "step size factor")
    elif spelled == "eps":
        value = eps
    else:
        value = parse_fraction(spelled, "step size")
    if value <= 0:
        raise ConfigError(f"step size must be > 0, got {text}")
    return value


def parse_alphas(text: str) -> list[float]:
    """Label-smoothing alphas from ``0:1:0.1`` (start:stop:step, stop included) or ``0,0.2,1e-3``.

    Every alpha must lie in [0, 1]; the list must not be empty nor longer than
    :data:`MAX_ALPHAS` (a range's length is checked before it is built). Duplicates are
    dropped, the order is kept.
    """
    spelled = str(text).strip()
    if not spelled:
        raise ConfigError("the alpha list is empty; give START:STOP:STEP such as 0:1:0.1, or a list such as 0,0.2,0.8")
    if ":" in spelled:
        parts = spelled.split(":")
        if len(parts) != 3:
            raise ConfigError(f"cannot read alpha range {text!r}; use START:STOP:STEP such as 0:1:0.1")
        start, stop, step = (parse_fraction(p, "alpha") for p in parts)
        if step <= 0:
            raise ConfigError(f"the alpha step must be > 0, got {parts[2]}")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        _check_alpha_count(count, text)
        values = [round(start + i * step, 12) for i in range(max(count, 0))]
    else:
        values = [parse_fraction(p, "alpha") for p in spelled.split(",") if p.strip()]
    if not values:
        raise ConfigError(f"the alpha list {text!r} is empty")
    _check_alpha_count(len(values), text)
    outside = [v for v in values if not 0.0 <= v <= 1.0]
    if outside:
        raise ConfigError(f"alpha must be in [0, 1], got {', '.join(map(str, outside))}")
    return list(dict.fromkeys(values))


def _check_alpha_count(count: int, text: str) -> None:
    """Refuse an alpha list longer than :data:`MAX_ALPHAS` (before a range is built)."""
    if count > MAX_ALPHAS:
        raise ConfigError(f"--alphas {text} gives {count:,} alphas; at most {MAX_ALPHAS:,} alphas per run "
                          "(each is a full PGD run): use a coarser step")


def parse_int_list(text: str, what: str, minimum: int = 1, maximum: int | None = None, unit: str = "") -> list[int]:
    """Integers from ``10,20,50``, each at least ``minimum`` (and at most ``maximum``)."""
    try:
        values = [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"cannot read {what} {text!r}; give comma-separated integers such as 10,20,50") from None
    if not values or min(values) < minimum:
        raise ConfigError(f"{what} must be integers >= {minimum}, got {text!r}")
    if maximum is not None and max(values) > maximum:
        raise ConfigError(f"{what}: {max(values):,} is above the limit of {maximum:,}{' ' + unit if unit else ''}")
    return values


def resolve_device(spec: str = "auto"):
    """A ``torch.device`` from ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    spelled = (spec or "auto").strip().lower()
    if spelled == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spelled)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec} asked for, but CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for identical numbers on a rerun."""
    import numpy as np
    import torch

    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
