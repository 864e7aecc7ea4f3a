"""The method table: what each ``python -m trainers METHOD`` is, in one place.

One :class:`MethodSpec` per method names its step function (defined in
:mod:`trainers.methods`, which builds ``METHOD_STEPS`` from this table), the loss its
training attack maximises, the attack's default random start and step size, its default
beta, and the method-specific options it accepts (any other method refuses them). Adding
a method, or an option of some methods, is one entry here plus its code: the step
function, the click option (:mod:`trainers.cli`), the field of
:class:`~trainers.config.TrainConfig` and its resolution (:func:`trainers.config.resolve`).
``python -m trainers --help`` prints each method's summary from here, and each
method-specific option the methods that take it.

The attacks: ``natural`` has none; FGSM-AT takes one CE step of 1.25 eps (Wong et al.
2020); PGD-AT, MART and TLA run PGD-CE (Madry et al. 2018, SCARL eq. 1); TRADES runs PGD
on its KL term (SCARL eq. 12); the SPAT methods run PGD-LS, PGD on the label-smoothed CE
of SPAT eq. 8-10 (section 3.3); SCARL runs the attack of its ``--base``; RST (Carmon et al.
2019) runs TRADES' PGD-KL, or PGD-LS when given ``--alpha`` (RST + SPAT, SPAT Table 4).
Random starts: TRADES', MART's and RST's code start at x + 0.001 N(0, 1) (``normal``); Madry's
PGD, FGSM-AT (Wong et al. 2020) and SPAT (so RST with ``--alpha``) draw uniformly from the
eps-ball (``uniform``).

This module imports neither torch nor semprobe's heavy modules, so that
``python -m trainers --help`` answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from semprobe.robustness.run_folder import VAL_CLEAN, VAL_PGD

# the loss a method's training attack maximises (trainers.methods.training_surrogate)
NO_ATTACK = "none"
CE = "ce"  # PGD-CE, or one FGSM step
TRADES_KL = "trades_kl"  # PGD on KL(P(x) || P(x')), the TRADES code's attack (SCARL eq. 12)
PGD_LS = "pgd_ls"  # PGD on the label-smoothed CE of SPAT eq. 8-10, smoothing --alpha
FROM_BASE = "base"  # SCARL: the attack of the method named by --base
KL_OR_LS = "trades_kl_or_pgd_ls"  # RST: PGD-KL, or PGD-LS(--alpha) when --alpha is given (RST + SPAT)
ATTACK_LOSSES = (NO_ATTACK, CE, TRADES_KL, PGD_LS, FROM_BASE, KL_OR_LS)

#: The random starts of :func:`semprobe.attacks.gradient.pgd` (``semprobe.attacks.gradient.RANDOM_STARTS``;
#: repeated here so that the command line does not import torch, and checked equal by the tests).
RANDOM_STARTS = ("uniform", "normal", "none")
#: The label-smoothing parametrizations of PGD-LS (``semprobe.losses.LS_PARAMETRIZATIONS``, likewise).
LS_PARAMETRIZATIONS = ("spat", "torch")

#: SCARL's --base choices (L_adv of eq. 15: eq. 12, Madry's CE, or CE on natural images, Tables 2 and 7).
SCARL_BASES = ("trades", "pgd_at", "natural")
#: SCARL's --info choices: Lemma 2.1's bound (eq. 13) or InfoNCE (Table 4).
INFO_LOSSES = ("bound", "infonce")
#: The --embedding name of the learned class embedding (SCARL Table 5).
LEARNED_EMBEDDING = "nn"

#: The PGD step size of a method that does not name its own.
PGD_STEP_SIZE = "eps/4"
#: FGSM-AT with random start takes one step of 1.25 eps (Wong et al. 2020).
FGSM_STEP_SIZE = "1.25*eps"

# the method-specific options (click parameter names), grouped by who uses them
ATTACK_OPTIONS = ("steps", "step_size", "random_start")
BETA_OPTIONS = ("beta",)
SPAT_OPTIONS = ("alpha", "ls_parametrization")
#: Adversarial Weight Perturbation (Wu et al. 2020; trainers.awp), for the methods with an adversarial loss.
AWP_OPTIONS = ("awp_gamma", "awp_warmup")
TLA_OPTIONS = ("tla_margin", "tla_weight", "tla_pool", "tla_regularization")
SCARL_OPTIONS = (
    "base", "embedding", "nn_dim", "tau", "c", "centre_momentum", "lambda1", "lambda2", "ramp_epochs",
    "info", "no_info", "no_struc", "proj_dim",
)  # fmt: skip


@dataclass(frozen=True)
class MethodSpec:
    """One training method.

    ``step`` is the name of its step function in :mod:`trainers.methods`;
    ``attack_loss`` the loss its training attack maximises (one of :data:`ATTACK_LOSSES`;
    :data:`FROM_BASE` for SCARL, whose attack is its ``--base``'s); ``random_start`` and
    ``step_size`` the attack's defaults (None without an own attack); ``steps`` a fixed
    step count (FGSM's 1; None: ``--steps``, default 10); ``beta`` the default weight of
    its KL term (None: it has none); ``options`` the method-specific options it accepts.
    """

    name: str
    step: str
    attack_loss: str
    random_start: str | None
    beta: float | None
    options: tuple[str, ...]
    summary: str
    step_size: str | None = PGD_STEP_SIZE
    steps: int | None = None


_SPECS = (
    MethodSpec("natural", "natural", NO_ATTACK, None, None, (), "standard training: CE(f(x), y)", step_size=None),
    MethodSpec("fgsm", "adversarial_ce", CE, "uniform", None, ("step_size", "random_start"),
               "FGSM-AT: CE(f(x'), y), x' one FGSM step of 1.25 eps from a random start (Wong et al. 2020)",
               step_size=FGSM_STEP_SIZE, steps=1),
    MethodSpec("pgd_at", "adversarial_ce", CE, "uniform", None, ATTACK_OPTIONS + AWP_OPTIONS,
               "PGD-AT: CE(f(x'), y), x' = PGD-CE (Madry et al. 2018; SCARL eq. 1)"),
    MethodSpec("trades", "trades", TRADES_KL, "normal", 6.0, ATTACK_OPTIONS + BETA_OPTIONS + AWP_OPTIONS,
               "TRADES: CE(f(x), y) + beta KL(P(x) || P(x')), x' = PGD-KL (Zhang et al. 2019; SCARL eq. 12)"),
    MethodSpec("mart", "mart", CE, "normal", 5.0, ATTACK_OPTIONS + BETA_OPTIONS + AWP_OPTIONS,
               "MART: BCE(f(x'), y) + beta KL(P(x) || P(x')) (1 - p_y(x)), x' = PGD-CE (Wang et al. 2020)"),
    MethodSpec("tla", "tla", CE, "uniform", None, ATTACK_OPTIONS + TLA_OPTIONS,
               "TLA: CE(f(x'), y) + triplet terms on the features, x' = PGD-CE (Mao et al. 2019)"),
    MethodSpec("scarl", "scarl", FROM_BASE, None, 6.0, ATTACK_OPTIONS + BETA_OPTIONS + SCARL_OPTIONS + AWP_OPTIONS,
               "SCARL eq. 15: L_adv + lambda_1(t) L_info + lambda_2(t) L_struc, L_adv and its attack from --base",
               step_size=None),
    MethodSpec("spat_madry", "adversarial_ce", PGD_LS, "uniform", None, ATTACK_OPTIONS + SPAT_OPTIONS + AWP_OPTIONS,
               "Madry + SPAT: as pgd_at with x' = PGD-LS(--alpha) (SPAT section 3.3, eq. 8-10)"),
    MethodSpec("spat_trades", "trades", PGD_LS, "uniform", 6.0, ATTACK_OPTIONS + BETA_OPTIONS + SPAT_OPTIONS + AWP_OPTIONS,
               "TRADES + SPAT: as trades with x' = PGD-LS(--alpha) (SPAT section 3.3)"),
    MethodSpec("spat_mart", "mart", PGD_LS, "uniform", 5.0, ATTACK_OPTIONS + BETA_OPTIONS + SPAT_OPTIONS + AWP_OPTIONS,
               "MART + SPAT: as mart with x' = PGD-LS(--alpha) (SPAT section 3.3)"),
)
# RST (Carmon et al. 2019): TRADES on batches that mix the labelled images with --extra-data's pseudo-labelled
# ones (trainers.extra_data). With --alpha its attack is PGD-LS from SPAT's uniform start, i.e. spat_trades.
_SPECS += (
    MethodSpec("rst", "trades", KL_OR_LS, "normal", 6.0, ATTACK_OPTIONS + BETA_OPTIONS + SPAT_OPTIONS + AWP_OPTIONS,
               "RST: as trades on batches mixed with the pseudo-labelled --extra-data (Carmon et al. 2019); "
               "with --alpha, x' = PGD-LS (RST + SPAT, SPAT Table 4)"),
)

#: Every method by name, in the order the help lists them.
METHOD_SPECS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}
METHODS = tuple(METHOD_SPECS)
SPAT_METHODS = tuple(name for name, spec in METHOD_SPECS.items() if spec.attack_loss == PGD_LS)

#: option -> the methods that accept it (in table order); an option not here is common to all.
OPTION_METHODS: dict[str, tuple[str, ...]] = {}
for _spec in _SPECS:
    for _option in _spec.options:
        OPTION_METHODS.setdefault(_option, ())
        OPTION_METHODS[_option] += (_spec.name,)
del _spec, _option


def attack_spec(method: str, base: str | None = None) -> MethodSpec:
    """The spec whose training attack ``method`` runs: its own, or for SCARL its ``--base``'s."""
    spec = METHOD_SPECS[method]
    return METHOD_SPECS[base] if spec.attack_loss == FROM_BASE else spec


def selection_key(method: str, base: str | None = None) -> str:
    """The validation metric that picks ``best.pt``: clean accuracy for a run that trains on no
    attacked images (``natural``, SCARL on the natural base), PGD accuracy for every other
    (whose clean accuracy would pick an early, barely robust epoch)."""
    return VAL_CLEAN if attack_spec(method, base).attack_loss == NO_ATTACK else VAL_PGD
