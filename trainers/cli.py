"""The ``python -m trainers`` command line, in click: parsing only.

:func:`parse_command_line` turns the arguments into the method and the options *given*
(name -> value as typed; an option left out is absent, not its default: the precedence
given > ``--preset`` > method default, the method-option check and ``--resume`` all
depend on what was given). Resolving them is :func:`trainers.config.resolve`'s job.

This module imports click, the method table (:mod:`trainers.spec`) and semprobe's light
modules only (no torch), so ``python -m trainers --help`` and ``--version`` answer at
once. It uses semprobe's click settings (``-h/--help``, the width). A click usage error
becomes a :class:`~semprobe.errors.ConfigError`, printed by :mod:`trainers.__main__` as
one line ``trainers: error: ...`` with exit code 2.
"""

from __future__ import annotations

from typing import Any, Sequence

import click
from click.core import ParameterSource

from semprobe import __version__
from semprobe.cli.common import CONTEXT_SETTINGS, click_error_line
from semprobe.errors import ConfigError
from semprobe.options import NORMS
from trainers.config import LR_SCHEDULES
from trainers.presets import PRESETS
from trainers.spec import (
    INFO_LOSSES, LS_PARAMETRIZATIONS, METHOD_SPECS, METHODS, OPTION_METHODS, RANDOM_STARTS, SCARL_BASES,
)  # fmt: skip

PROG = "python -m trainers"
#: --amp and --data-on-device choices (trainers.speed and trainers.resident read them; no torch here)
AMP_MODES = ("off", "bf16", "fp16")
DATA_ON_DEVICE = ("auto", "on", "off")

EXAMPLES = """\
  python -m trainers pgd_at --dataset fashion-mnist --arch small_cnn --eps 0.1 --epochs 10 --out runs/at
  python -m trainers scarl --dataset cifar10 --arch preact_resnet18 --preset scarl-cifar10 --out runs/scarl
  python -m trainers scarl --dataset cifar10 --arch preact_resnet18 --preset scarl-cifar10 \\
      --embedding nn --no-struc --out runs/scarl_nn_info
  python -m trainers spat_mart --dataset cifar10 --arch wrn_34_10 --preset spat-cifar10 --out runs/spat_mart
  python -m trainers scarl --dataset cifar10 --arch preact_resnet18 --resume runs/scarl
  python -m trainers trades --dataset cifar10 --preset trades-awp-cifar10 --out runs/trades_awp
  torchrun --nproc_per_node 4 -m trainers trades --dataset cifar10 --arch preact_resnet18 --out runs/trades
  python -m trainers spat_trades --dataset cifar10 --arch wrn_28_10 --preset spat-rst-cifar10 \\
      --extra-data ti_500K_pseudo_labeled.pickle --out runs/rst_spat
"""


def _methods_phrase(users: tuple[str, ...]) -> str:
    """``users`` in words: the SPAT trio as ``spat_*``, or ``all but ...`` when that is shorter."""
    others = [m for m in METHODS if m not in users]
    if len(others) < len(users) and len(others) <= 2:
        return "all but " + ", ".join(others)
    spat = [m for m in METHODS if m.startswith("spat_")]
    names = list(users)
    if all(m in names for m in spat):
        names = [m for m in names if m not in spat[1:]]
        names[names.index(spat[0])] = "spat_*"
    return ", ".join(names)


class _Option(click.Option):
    """A click option that belongs to a help section (``group``); a method-specific option
    (one in :data:`trainers.spec.OPTION_METHODS`) says in its help which methods take it."""

    def __init__(self, *args: Any, group: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        users = OPTION_METHODS.get(self.name)
        if record is None or users is None or _group_methods(ctx.command, self.group) is not None:
            return record
        return record[0], f"{record[1]} [{_methods_phrase(users)}]"


def _group_methods(command: click.Command, group: str) -> tuple[str, ...] | None:
    """The methods that take every option of ``group``, when they are the same for all its options."""
    users = {OPTION_METHODS.get(p.name) for p in command.params if getattr(p, "group", None) == group}
    return users.pop() if len(users) == 1 and None not in users else None


class _GroupedCommand(click.Command):
    """A click command whose help lists the options in sections, as ``--help`` always has."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("METHOD (the table in trainers/spec.py)"):
            formatter.write_dl([(name, spec.summary) for name, spec in METHOD_SPECS.items()])
        sections: dict[str, list[tuple[str, str]]] = {"options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                sections.setdefault(getattr(param, "group", "options"), []).append(record)
        for title, records in sections.items():
            users = _group_methods(self, title)
            heading = f"{title} [{_methods_phrase(users)} only]" if users else title
            with formatter.section(heading):
                formatter.write_dl(records)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Examples"):
            for line in EXAMPLES.splitlines():
                formatter.write(line + "\n")


def _option(group: str):
    def option(*declarations: str, **kwargs: Any):
        return click.option(*declarations, cls=_Option, group=group, **kwargs)

    return option


_run = _option("data, model and run")
_opt = _option("optimisation (SGD with a piecewise-constant or cosine learning rate)")
_attack = _option("training attack")
_eval = _option("per-epoch evaluation (clean and PGD-CE accuracy)")
_extra = _option("extra pseudo-labelled data (RST, Carmon et al. 2019)")
_scarl = _option("SCARL")
_tla = _option("TLA")
_speed = _option("speed (mostly for GPUs)")
_awp = _option("adversarial weight perturbation (AWP, Wu et al. 2020)")


HELP = (
    "Train SCARL, SPAT and the baselines (natural, FGSM-AT, PGD-AT, TRADES, MART, TLA, RST).\n\n"
    "Writes last.pt, best.pt (best validation PGD accuracy; clean accuracy for natural), metrics.jsonl and "
    "config.json into --out. Pixels are in [0,1]; --eps and step sizes accept fractions such as 8/255. "
    "An option given overrides the --preset, which overrides the method's default."
)


@click.command(PROG, cls=_GroupedCommand, context_settings=CONTEXT_SETTINGS, help=HELP)
@click.version_option(__version__, "--version", prog_name="trainers", message="%(prog)s (semprobe) %(version)s")
@click.argument("method", metavar="METHOD", type=click.Choice(METHODS))
@_run("--dataset", metavar="NAME", required=True, help="dataset name (semprobe.data: cifar10, fashion-mnist, ...)")
@_run("--arch", metavar="NAME", help="architecture (semprobe.models: preact_resnet18, small_cnn, ...); "
      "required unless the --preset names one")
@_run("--out", metavar="RUNDIR", help="run folder (required unless --resume names it)")
@_run("--preset", type=click.Choice(sorted(PRESETS)), metavar="PRESET",
      help=f"the papers' settings: {', '.join(sorted(PRESETS))}")
@_run("--resume", metavar="RUNDIR", help="continue the run in RUNDIR from its last.pt")
@_run("--overwrite", is_flag=True, default=None, help="replace the run files in --out")
@_run("--data-dir", metavar="DIR", help="where the dataset files are (else $SEMPROBE_DATA, system folders)")
@_run("--download", is_flag=True, default=None,
      help="fetch a missing dataset (cifar10, cifar100, fashion-mnist, tinyimagenet) into --data-dir "
           "(else $SEMPROBE_DATA, else the cache)")
@_run("--image-size", type=int, metavar="N", help="resize an imagefolder:PATH dataset's images to this many "
      "pixels square (default: the size of its first training image)")
@_run("--max-train-images", type=int, metavar="N", help="train on a seeded random subset of this many images")
@_run("--val-size", type=int, metavar="N",
      help="validation images held out of the training set (default 2%, at most 1000)")
@_run("--augment/--no-augment", default=None,
      help="random crop + flip (default: the dataset's own: on for CIFAR/TinyImageNet)")
@_run("--seed", type=int, metavar="N", help="seed of initialisation, data order and attacks (default 0)")
@_run("--device", metavar="DEVICE", help="auto (default), cpu, cuda or cuda:N")
@_run("--workers", type=int, metavar="N", help="DataLoader worker processes (default 0)")
@_speed("--amp", type=click.Choice(AMP_MODES), help="mixed precision for training: autocast in bf16 or fp16 "
        "(with a gradient scaler), fp32 weights; the per-epoch evaluation stays fp32 (default off)")
@_speed("--data-on-device", type=click.Choice(DATA_ON_DEVICE), help="hold the training split on the device as one "
        "tensor and augment whole batches there: auto (default: on CUDA for in-memory splits up to 2 GB), on, off")
@_speed("--channels-last/--no-channels-last", default=None, help="channels-last memory format for the "
        "classifier (default: the architecture's measured preference, see benchmarks/RESULTS.md)")
@_speed("--compile", is_flag=True, default=None, help="torch.compile the network (see benchmarks/RESULTS.md)")
@_run("--quiet", is_flag=True, default=None, help="no progress bar or epoch lines")
@_extra("--extra-data", metavar="FILE",
        help="pseudo-labelled images mixed into every training batch, as RST does (any method; rst needs it): "
             "an .npz with 'images' (N x H x W x C uint8, or N x C x H x W float in [0,1]) and 'labels', or "
             "RST's ti_500K_pseudo_labeled.pickle (read without running any code it holds)")
@_extra("--extra-fraction", type=float, metavar="F",
        help="share of each batch drawn from --extra-data, in (0, 1) (default 0.5, RST's); an epoch has as many "
             "batches as the labelled training split fills")
@_opt("--epochs", type=int, metavar="N", help="epochs (default 100)")
@_opt("--batch-size", type=int, metavar="N", help="global batch size, split over processes (default 128)")
@_opt("--lr", type=float, metavar="X", help="initial learning rate (default 0.1)")
@_opt("--momentum", type=float, metavar="X", help="SGD momentum (default 0.9)")
@_opt("--weight-decay", type=float, metavar="X", help="weight decay (default 5e-4)")
@_opt("--milestones", metavar="E,E", help="epochs at which the lr is multiplied by --lr-gamma, e.g. 75,90 "
      "(default: 75% and 90% of --epochs)")
@_opt("--lr-gamma", type=float, metavar="X", help="lr factor at each milestone (default 0.1)")
@_opt("--lr-schedule", type=click.Choice(LR_SCHEDULES),
      help="piecewise (x --lr-gamma at each milestone, default) or cosine (RST's: lr (1 + cos(pi e / epochs)) / 2 "
           "in epoch e)")
@_opt("--nesterov/--no-nesterov", default=None, help="Nesterov momentum (default off; RST's schedule uses it)")
@_attack("--norm", metavar="NORM", help=f"threat model of the training attack and the per-epoch PGD evaluation: "
         f"{' or '.join(NORMS)} (any case; default Linf)")
@_attack("--eps", metavar="EPS", help="radius in [0,1] pixel units (default 8/255): per pixel under Linf, "
         "of the whole perturbation under --norm L2 (may exceed 1)")
@_attack("--steps", type=int, metavar="N", help="PGD steps (default 10)")
@_attack("--step-size", metavar="STEP", help="PGD step: a number, 2/255, or eps/4 (default eps/4; fgsm 1.25*eps)")
@_attack("--random-start", type=click.Choice(RANDOM_STARTS),
         help="uniform in the ball, TRADES' 0.001*N(0,1), or none (default: the method's)")
@_attack("--beta", type=float, metavar="X", help="weight of the KL term (TRADES/SCARL 6, MART 5)")
@_attack("--alpha", type=float, metavar="X", help="SPAT: label smoothing of PGD-LS, in [0,1]")
@_attack("--ls-parametrization", type=click.Choice(LS_PARAMETRIZATIONS),
         help="SPAT: 'spat' (eq. 9, default) or 'torch' label smoothing")
@_eval("--eval-steps", type=int, metavar="N", help="PGD steps (default 10)")
@_eval("--eval-step-size", metavar="STEP", help="PGD step (default eps/4)")
@_eval("--eval-batch-size", type=int, metavar="N", help="images per evaluation batch (default 256)")
@_eval("--eval-test", is_flag=True, default=None, help="evaluate the test split every epoch too")
@_scarl("--base", type=click.Choice(SCARL_BASES),
        help="base loss: trades (eq. 12, default), pgd_at or natural (Tables 2, 7)")
@_scarl("--embedding", metavar="NAME", help="class word vectors: glove (default), glove:PATH, clip:..., "
        "random[:DIM[:SEED]], onehot, file:PATH.npy, or nn (learned, Table 5)")
@_scarl("--nn-dim", type=int, metavar="N", help="size of the learned nn embedding (default 50)")
@_scarl("--tau", type=float, metavar="X", help="temperature of L_info (default 0.1; the paper gives none)")
@_scarl("--c", type=float, metavar="X", help="constant c of L_info (default: the training-set size)")
@_scarl("--centre-momentum", type=float, metavar="X", help="momentum m of the word centres, eq. 6 (default 0.1)")
@_scarl("--lambda1", type=float, metavar="X", help="weight of L_info (default 1)")
@_scarl("--lambda2", type=float, metavar="X", help="weight of L_struc (default 1)")
@_scarl("--ramp-epochs", type=float, metavar="T", help="length T of the Gaussian ramp-up (default --epochs)")
@_scarl("--info", type=click.Choice(INFO_LOSSES), help="bound (Lemma 2.1, default) or infonce (Table 4)")
@_scarl("--no-info", is_flag=True, default=None, help="drop L_info (Table 4)")
@_scarl("--no-struc", is_flag=True, default=None, help="drop L_struc (Table 4)")
@_scarl("--proj-dim", type=int, metavar="N", help="output size of the projection heads (default 64)")
@_awp("--awp-gamma", type=float, metavar="X",
      help="AWP: move each layer's weights by X times its norm towards a higher adversarial loss before "
      "every update, then back (the reference's 5e-3 for TRADES, 1e-2 for Madry AT; default: no AWP)")
@_awp("--awp-warmup", type=int, metavar="N", help="AWP: train the first N epochs without it (default 0)")
@_tla("--tla-margin", type=float, metavar="X", help="triplet margin on the angular distance (default 0.03)")
@_tla("--tla-weight", type=float, metavar="X", help="weight of each of the two triplet terms (default 2)")
@_tla("--tla-pool", type=int, metavar="N",
      help="hard negatives are mined among this many batches of random training images (default 10)")
@_tla("--tla-regularization", type=float, metavar="X",
      help="weight of the penalty on the features' squared entries (default 1e-3)")
def command(method: str, **values: Any) -> tuple[str, dict[str, Any]]:
    """The method and the options given on the command line (name -> value as parsed), in the
    order of the options in the help (so that the first of several mistakes reported does
    not depend on the order they were typed in)."""
    ctx = click.get_current_context()
    given = {param.name: values[param.name] for param in ctx.command.params
             if param.name in values and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE}
    return method, given


def parse_command_line(argv: Sequence[str] | None = None) -> tuple[str, dict[str, Any]] | int:
    """Parse ``argv`` (default ``sys.argv[1:]``): ``(method, given)``, or the exit code 0
    after ``--help`` or ``--version`` printed their text.

    ``given`` holds only the options on the command line, as click typed them (ints,
    floats, flags as True, ``--augment/--no-augment`` as a bool; ``--eps``,
    ``--step-size`` and ``--milestones`` as the text typed). A usage error (an unknown
    method, option or choice, a missing ``--dataset``, a number that does not parse) is
    a :class:`ConfigError`.
    """
    try:
        result = command.main(args=None if argv is None else list(argv), prog_name=PROG, standalone_mode=False)
    except click.ClickException as exc:
        raise ConfigError(click_error_line(exc)) from None
    except click.Abort:
        raise KeyboardInterrupt from None
    return result
