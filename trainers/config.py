"""Training options resolved: the papers' presets, the defaults, validation, resuming.

:func:`parse_args` turns ``python -m trainers METHOD ...`` (parsed by :mod:`trainers.cli`)
into a :class:`TrainConfig` holding every option resolved to a plain value, in this order
of precedence: an option given on the command line, then the ``--preset``, then the
method's default (its entry in :data:`trainers.spec.METHOD_SPECS`, which also says which
methods take which options). Anything wrong (an unknown name, a number out of range, an
option the method does not use) is a :class:`~semprobe.errors.ConfigError` raised before
any file is written.

This module imports torch (through semprobe's data and model registries) only inside
:func:`resolve`, so that the command line can read the presets without it.

The papers' presets are :data:`trainers.presets.PRESETS` (their settings and sources are
there).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from semprobe.errors import ConfigError
from semprobe.options import parse_eps, parse_int_list, parse_norm, parse_step_size
from trainers.presets import PRESETS
from trainers.spec import (
    KL_OR_LS, LEARNED_EMBEDDING, METHOD_SPECS, NO_ATTACK, OPTION_METHODS, PGD_LS, attack_spec,
)  # fmt: skip

#: --lr-schedule: x lr_gamma at each milestone, or RST's cosine lr * (1 + cos(pi * epoch / epochs)) / 2.
LR_SCHEDULES = ("piecewise", "cosine")

#: command-line flags stored under another field name.
FLAG_FIELDS = {"no_info": "use_info", "no_struc": "use_struc"}


@dataclass
class TrainConfig:
    """Every option of a training run, resolved to plain values (stored in checkpoints).

    Options a method does not use are ``None``. ``c`` (SCARL) is filled in with the
    training-set size when the data are loaded, if not given.
    """

    method: str
    dataset: str
    arch: str
    out: str
    preset: str | None = None
    # optimisation
    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: list[int] = field(default_factory=lambda: [75, 90])
    lr_gamma: float = 0.1
    lr_schedule: str = "piecewise"
    nesterov: bool = False
    # training attack (and the per-epoch evaluation's threat model)
    norm: str = "Linf"
    eps: float = 8 / 255
    steps: int | None = 10
    step_size: float | None = 2 / 255
    random_start: str | None = "uniform"
    beta: float | None = None
    alpha: float | None = None
    ls_parametrization: str | None = None
    # adversarial weight perturbation (trainers.awp)
    awp_gamma: float | None = None
    awp_warmup: int | None = None
    # per-epoch evaluation
    eval_steps: int = 10
    eval_step_size: float = 2 / 255
    eval_batch_size: int = 256
    eval_test: bool = False
    # SCARL
    base: str | None = None
    embedding: str | None = None
    nn_dim: int | None = None
    tau: float | None = None
    c: float | None = None
    centre_momentum: float | None = None
    lambda1: float | None = None
    lambda2: float | None = None
    ramp_epochs: float | None = None
    info: str | None = None
    use_info: bool | None = None
    use_struc: bool | None = None
    proj_dim: int | None = None
    # TLA
    tla_margin: float | None = None
    tla_weight: float | None = None
    tla_pool: int | None = None
    tla_regularization: float | None = None
    # extra pseudo-labelled training images (trainers.extra_data); the file's SHA-256 is filled in when it is read
    extra_data: str | None = None
    extra_fraction: float | None = None
    extra_data_sha256: str | None = None
    # data and run
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None
    max_train_images: int | None = None
    val_size: int | None = None
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    # speed (trainers.speed, trainers.resident): mixed precision changes the numbers, the others do not
    amp: str = "off"
    data_on_device: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    quiet: bool = False
    resume: str | None = None
    overwrite: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _method_check(method: str, given: dict[str, Any]) -> None:
    for name in given:
        users = OPTION_METHODS.get(name)
        if users is not None and method not in users:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} applies to {', '.join(users)}, not to {method}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _default_milestones(epochs: int) -> list[int]:
    """The papers' decays at 75% and 90% of training, as epochs in [1, epochs)."""
    return sorted({m for m in (round(0.75 * epochs), round(0.9 * epochs)) if 1 <= m < epochs})


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, set[str]]:
    """Parse the command line into a :class:`TrainConfig`, and the names of the options given.

    Raises ConfigError for any mistake, before anything is read or written; ``--help``
    and ``--version`` print their text and raise ``SystemExit(0)``.
    """
    from trainers.cli import parse_command_line  # the command line imports this module's presets

    parsed = parse_command_line(argv)
    if isinstance(parsed, int):
        raise SystemExit(parsed)
    method, given = parsed
    return resolve(method, given), set(given)


def resolve(method: str, given: dict[str, Any]) -> TrainConfig:
    """Resolve the options ``given`` (name -> value as parsed) for ``method``.

    Precedence: given, then the preset (a dict entry by method), then the method default
    (:data:`trainers.spec.METHOD_SPECS`: beta, the training attack's random start, step size
    and step count).
    """
    from semprobe.data import dataset_info  # imported here: they import torch
    from semprobe.models import list_models

    spec = METHOD_SPECS[method]
    _method_check(method, given)
    preset = PRESETS[given["preset"]] if "preset" in given else {}

    def pick(name: str, default: Any, use_preset: bool = True) -> Any:
        if name in given:
            return given[name]
        value = preset.get(name) if use_preset else None
        if isinstance(value, dict):
            value = value.get(method)
        return default if value is None else value

    if given.get("resume") and given.get("out") and given["out"] != given["resume"]:
        raise ConfigError("--out must name the resumed run's folder (or be left out with --resume)")
    _require(not (given.get("resume") and given.get("overwrite")), "--resume and --overwrite exclude each other")
    out = given.get("out") or given.get("resume")
    _require(out is not None, "--out RUNDIR is required (or --resume RUNDIR to continue a run)")
    arch = given.get("arch") or preset.get("arch")
    _require(arch is not None, "--arch is required (unless the --preset names one)")
    _require(arch in list_models(), f"unknown arch {arch!r}; choose one of {', '.join(list_models())}")
    info = dataset_info(given["dataset"], given.get("data_dir"), image_size=given.get("image_size"),
                        download=bool(given.get("download")))

    norm = parse_norm(pick("norm", "Linf"))
    eps = parse_eps(pick("eps", "8/255"), norm)
    _require(eps > 0, "eps must be > 0: training and the per-epoch PGD evaluation need a non-empty ball")
    epochs = pick("epochs", 100)
    _require(epochs >= 1, f"epochs must be >= 1, got {epochs}")
    milestones = pick("milestones", None)
    if isinstance(milestones, str):
        milestones = parse_int_list(milestones, "milestones", minimum=1)
    milestones = _default_milestones(epochs) if milestones is None else list(milestones)
    _require(milestones == sorted(set(milestones)), f"milestones must increase, got {milestones}")

    config = TrainConfig(
        method=method, dataset=given["dataset"], arch=arch, out=str(out), preset=given.get("preset"),
        epochs=epochs, batch_size=pick("batch_size", 128), lr=pick("lr", 0.1), momentum=pick("momentum", 0.9),
        weight_decay=pick("weight_decay", 5e-4), milestones=milestones, lr_gamma=pick("lr_gamma", 0.1), norm=norm,
        eps=eps,
        steps=None, step_size=None, random_start=None,
        eval_steps=pick("eval_steps", 10), eval_step_size=parse_step_size(pick("eval_step_size", "eps/4"), eps),
        eval_batch_size=pick("eval_batch_size", 256), eval_test=bool(pick("eval_test", False)),
        data_dir=given.get("data_dir"), download=bool(given.get("download")), image_size=given.get("image_size"),
        max_train_images=given.get("max_train_images"),
        val_size=given.get("val_size"), augment=pick("augment", info.augmentation != "none"),
        seed=pick("seed", 0), device=pick("device", "auto"), workers=pick("workers", 0),
        quiet=bool(pick("quiet", False)), resume=given.get("resume"), overwrite=bool(pick("overwrite", False)),
        amp=pick("amp", "off"), data_on_device=pick("data_on_device", "auto"),
        channels_last=pick("channels_last", None), compile=bool(pick("compile", False)),
    )
    if spec.beta is not None:
        config.beta = pick("beta", spec.beta)
    if method == "scarl":
        _resolve_scarl(config, pick)
    attack = attack_spec(method, config.base)
    if attack.steps is not None:
        config.steps, config.random_start = attack.steps, pick("random_start", attack.random_start)
        # a preset's PGD step does not apply to a single-step attack (FGSM)
        config.step_size = parse_step_size(pick("step_size", attack.step_size, use_preset=False), eps)
    elif attack.attack_loss != NO_ATTACK:
        config.steps = pick("steps", 10)
        config.step_size = parse_step_size(pick("step_size", attack.step_size), eps)
        config.random_start = pick("random_start", attack.random_start)
    if spec.attack_loss == PGD_LS:  # PGD-LS needs its label smoothing (SPAT eq. 9)
        alpha = pick("alpha", None)
        _require(alpha is not None or "resume" in given,  # a resumed run keeps its own alpha
                 f"{method} needs --alpha, the label smoothing of its PGD-LS attack, in [0, 1]"
                 " (the spat presets give it for spat_trades and spat_mart only)")
        _require(alpha is None or 0.0 <= alpha <= 1.0, f"alpha must be in [0, 1], got {alpha}")
        config.alpha = None if alpha is None else float(alpha)
        config.ls_parametrization = pick("ls_parametrization", "spat")
    _resolve_awp(config, pick, given)
    if method == "tla":
        config.tla_margin, config.tla_weight = pick("tla_margin", 0.03), pick("tla_weight", 2.0)
        config.tla_pool, config.tla_regularization = pick("tla_pool", 10), pick("tla_regularization", 1e-3)
    _resolve_schedule(config, pick, given)
    _resolve_extra_data(config, pick, given)
    _check_numbers(config)
    return config


def _resolve_scarl(config: TrainConfig, pick) -> None:
    """Fill in SCARL's options (section 3.1 and the ablations of Tables 4, 5 and 7)."""
    config.base = pick("base", "trades")
    config.embedding = pick("embedding", "glove")
    config.nn_dim = pick("nn_dim", 50) if config.embedding == LEARNED_EMBEDDING else None
    config.tau = pick("tau", 0.1)
    config.c = pick("c", None)
    config.centre_momentum = pick("centre_momentum", 0.1)
    config.lambda1 = pick("lambda1", 1.0)
    config.lambda2 = pick("lambda2", 1.0)
    config.ramp_epochs = float(pick("ramp_epochs", config.epochs))
    config.info = pick("info", "bound")
    config.use_info = not pick("no_info", False)
    config.use_struc = not pick("no_struc", False)
    config.proj_dim = pick("proj_dim", 64)


def _resolve_awp(config: TrainConfig, pick, given: dict[str, Any]) -> None:
    """AWP's gamma and warm-up (:mod:`trainers.awp`): off unless ``--awp-gamma`` (or the preset) sets it."""
    if "awp_gamma" not in OPTION_METHODS or config.method not in OPTION_METHODS["awp_gamma"]:
        return
    gamma = pick("awp_gamma", None)
    if gamma is None:
        _require("awp_warmup" not in given, "--awp-warmup needs --awp-gamma")
        return
    _require(math.isfinite(gamma) and gamma >= 0, f"--awp-gamma must be a finite number >= 0, got {gamma}")
    _require(not (config.method == "scarl" and config.base == "natural"),
             "--awp-gamma needs an adversarial loss to perturb the weights against: "
             "not scarl with --base natural")
    config.awp_gamma, config.awp_warmup = float(gamma), pick("awp_warmup", 0)
    _require(config.awp_warmup >= 0, f"--awp-warmup must be >= 0, got {config.awp_warmup}")


def _check_finite(config: TrainConfig) -> None:
    """Refuse NaN and infinite values of every float option (``--lr inf``, ``--tau nan``, ...)."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if isinstance(value, float) and not math.isfinite(value):
            flag = "--" + {v: k for k, v in FLAG_FIELDS.items()}.get(item.name, item.name).replace("_", "-")
            raise ConfigError(f"{flag} must be a finite number, got {value}")


def _check_numbers(config: TrainConfig) -> None:
    """Refuse non-finite numbers and numbers out of range, with the option's name."""
    _check_finite(config)
    checks = [
        ("batch-size", config.batch_size, config.batch_size >= 1, ">= 1"),
        ("lr", config.lr, config.lr > 0, "> 0"),
        ("momentum", config.momentum, 0 <= config.momentum < 1, "in [0, 1)"),
        ("weight-decay", config.weight_decay, config.weight_decay >= 0, ">= 0"),
        ("lr-gamma", config.lr_gamma, config.lr_gamma > 0, "> 0"),
        ("eval-steps", config.eval_steps, config.eval_steps >= 1, ">= 1"),
        ("eval-batch-size", config.eval_batch_size, config.eval_batch_size >= 1, ">= 1"),
        ("seed", config.seed, config.seed >= 0, ">= 0"),
        ("workers", config.workers, config.workers >= 0, ">= 0"),
    ]
    optional = [
        ("steps", config.steps, lambda v: v >= 1, ">= 1"),
        ("beta", config.beta, lambda v: v >= 0, ">= 0"),
        ("max-train-images", config.max_train_images, lambda v: v >= 2, ">= 2"),
        ("val-size", config.val_size, lambda v: v >= 1, ">= 1"),
        ("nn-dim", config.nn_dim, lambda v: v >= 1, ">= 1"),
        ("tau", config.tau, lambda v: v > 0, "> 0"),
        ("c", config.c, lambda v: v > 0, "> 0"),
        ("centre-momentum", config.centre_momentum, lambda v: 0 <= v < 1, "in [0, 1)"),
        ("lambda1", config.lambda1, lambda v: v >= 0, ">= 0"),
        ("lambda2", config.lambda2, lambda v: v >= 0, ">= 0"),
        ("ramp-epochs", config.ramp_epochs, lambda v: v > 0, "> 0"),
        ("proj-dim", config.proj_dim, lambda v: v >= 1, ">= 1"),
        ("tla-margin", config.tla_margin, lambda v: v >= 0, ">= 0"),
        ("tla-weight", config.tla_weight, lambda v: v >= 0, ">= 0"),
        ("tla-pool", config.tla_pool, lambda v: 1 <= v <= 1000, "in [1, 1000]"),
        ("tla-regularization", config.tla_regularization, lambda v: v >= 0, ">= 0"),
    ]
    checks += [(name, value, test(value), rule) for name, value, test, rule in optional if value is not None]
    for name, value, ok, rule in checks:
        _require(ok, f"--{name} must be {rule}, got {value}")


def _resolve_schedule(config: TrainConfig, pick, given: dict[str, Any]) -> None:
    """``--lr-schedule`` (piecewise, or RST's cosine, which has no milestones) and ``--nesterov``."""
    config.lr_schedule = pick("lr_schedule", "piecewise")
    if config.lr_schedule == "cosine":
        for name in ("milestones", "lr_gamma"):
            _require(name not in given, f"--{name.replace('_', '-')} applies to --lr-schedule piecewise, not cosine")
        config.milestones = []
    config.nesterov = bool(pick("nesterov", False))
    _require(not config.nesterov or config.momentum > 0, "--nesterov needs a --momentum > 0")


def _resolve_extra_data(config: TrainConfig, pick, given: dict[str, Any]) -> None:
    """``--extra-data`` and ``--extra-fraction`` (:mod:`trainers.extra_data`; the file is read,
    and the batch composition checked against the processes, when training starts), and the
    attack of ``rst``: PGD-KL, or with ``--alpha`` PGD-LS from SPAT's uniform start (spat_trades')."""
    resuming = "resume" in given  # a resumed run keeps its own file, fraction and alpha
    config.extra_data = given.get("extra_data")
    if config.extra_data is None and not resuming:
        _require(config.method != "rst", "rst needs --extra-data FILE: its pseudo-labelled images (an .npz, or "
                 "RST's ti_500K_pseudo_labeled.pickle)")
        _require("extra_fraction" not in given, "--extra-fraction needs --extra-data")
    if config.extra_data is not None or "extra_fraction" in given:
        config.extra_fraction = float(pick("extra_fraction", 0.5))
        fraction = config.extra_fraction
        _require(0 < fraction < 1, f"--extra-fraction must be in (0, 1), got {fraction}")
        _require(int(config.batch_size * fraction) >= 1,
                 f"--extra-fraction {fraction} of --batch-size {config.batch_size} takes no extra image per batch "
                 f"(RST takes int(batch size x fraction) of them); raise either")
    if config.extra_data is not None:
        _require(Path(config.extra_data).exists(), f"--extra-data {config.extra_data}: no such file")
        _require(not Path(config.extra_data).is_dir(), f"--extra-data {config.extra_data} is a folder, not a file")
    if METHOD_SPECS[config.method].attack_loss == KL_OR_LS:
        alpha = pick("alpha", None)
        if alpha is None:
            _require("ls_parametrization" not in given, f"--ls-parametrization needs --alpha ({config.method} "
                     "runs PGD-KL without it)")
            return
        _require(0.0 <= alpha <= 1.0, f"alpha must be in [0, 1], got {alpha}")
        config.alpha, config.ls_parametrization = float(alpha), pick("ls_parametrization", "spat")
        config.random_start = pick("random_start", "uniform")
