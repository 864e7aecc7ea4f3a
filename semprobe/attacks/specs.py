"""Attacks by name, as typed on the command line: ``pgd20``, ``cw100``, ``pgd-kl``, ``aa``, ...

:func:`parse_attack` turns a name into an :class:`AttackSpec`, which knows how to run
itself on a batch. The names follow the columns of SCARL Table 1 and Table 3:

==================  =============================================================
``natural``         no attack (clean accuracy)
``fgsm``            FGSM, no random start
``pgdN``            PGD-N on cross-entropy, uniform random start (``pgd`` = PGD-20)
``cwN``             PGD-N on the CW margin loss (CW-inf; ``cw`` = CW-30)
``pgd-ce[N]``       the adaptive attacks of SCARL Table 3: PGD-N (default 20) on CE,
``pgd-kl[N]``       on the TRADES KL,
``pgd-info[N]``     on SCARL's L_info through the checkpoint's heads and word vectors
``pgd-ls:A[:N]``    PGD-LS with smoothing A (SPAT eq. 8-10), N steps (default 20)
``squareN[xR]``     AutoAttack's Square alone: N queries (``square`` = 5,000), R restarts
                    (default 1); ``square20000x3`` is AutoAttack's advice when Square beats
                    the gradient attacks
``aa``              AutoAttack, standard version
``apgd-ce`` ...     any single AutoAttack component (apgd-ce, apgd-dlr, apgd-t, fab, fab-t)
==================  =============================================================

Every attack runs in the L-inf ball (the default) or, with ``norm="L2"`` (``--norm L2``),
in the L2 ball: PGD and FGSM step along the L2-normalized gradient, AutoAttack runs with
``norm="L2"``. The norm is recorded in the attack's settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from semprobe import attacks
from semprobe.options import MAX_ATTACK_STEPS, parse_norm
from semprobe.attacks.autoattack import AUTOATTACK_ATTACKS, autoattack, check_square_budget
from semprobe.errors import ConfigError

DEFAULT_PGD_STEPS = 20
DEFAULT_CW_STEPS = 30
KNOWN_ATTACK_FORMS = ("natural", "fgsm", "pgdN", "cwN", "pgd-ce[N]", "pgd-kl[N]", "pgd-info[N]",
                      "pgd-ls:ALPHA[:N]", "squareN[xR]", "aa") + AUTOATTACK_ATTACKS


@dataclass(frozen=True)
class AttackSpec:
    """One named attack: its kind (natural, fgsm, pgd, autoattack), steps, surrogate loss and norm."""

    name: str
    kind: str
    steps: int = 0
    loss: str = "ce"
    alpha: float | None = None
    autoattack_attacks: tuple[str, ...] | None = None
    norm: str = "Linf"
    queries: int | None = None  # Square alone: its queries and restarts (None: AutoAttack's 5,000 and 1)
    restarts: int | None = None

    @property
    def needs_heads(self) -> bool:
        """Whether the attack needs the checkpoint's SCARL heads and word vectors."""
        return self.loss == "info"

    def describe(self, eps: float, step_size: float | None) -> dict:
        """The settings recorded in results."""
        out = {"name": self.name, "kind": self.kind, "eps": eps, "norm": self.norm}
        if self.kind == "pgd":
            out.update(steps=self.steps, step_size=step_size, loss=self.loss, random_start="uniform")
            if self.alpha is not None:
                out.update(alpha=self.alpha, ls_parametrization="spat")
        elif self.kind == "autoattack":
            out.update(attacks=list(self.autoattack_attacks) if self.autoattack_attacks else "standard",
                       implementation="pyautoattack")
            if self.autoattack_attacks == ("square",):
                out.update(zip(("queries", "restarts"), check_square_budget(self.queries, self.restarts)))
        return out

    def surrogate(self, heads=None, word_vectors=None, info_tau=None, info_c=None) -> attacks.Surrogate:
        """The PGD surrogate loss of this attack."""
        if self.loss == "info":
            if heads is None or word_vectors is None:
                raise ConfigError(f"{self.name} needs a checkpoint with SCARL projection heads and word vectors")
            return attacks.info(heads, word_vectors, tau=info_tau, c=info_c)
        if self.loss == "ls":
            return attacks.ls(self.alpha)
        return attacks.resolve_loss(self.loss)

    def run(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        step_size: float | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        heads=None,
        word_vectors=None,
        info_tau: float | None = None,
        info_c: float | None = None,
        warnings: list[str] | None = None,
    ) -> torch.Tensor:
        """The adversarial images for the batch ``(x, y)`` (``x`` itself for ``natural``).

        ``warnings``, a list, receives the attack's own reliability warnings (AutoAttack's
        checks; the other attacks have none)."""
        if self.kind == "natural":
            return x
        if self.kind == "fgsm":
            return attacks.fgsm(model, x, y, eps=eps, norm=self.norm)
        if self.kind == "pgd":
            return attacks.pgd(
                model, x, y, eps=eps, step_size=step_size if step_size is not None else eps / 4, steps=self.steps,
                loss=self.surrogate(heads, word_vectors, info_tau, info_c), generator=generator, norm=self.norm,
            )
        return autoattack(model, x, y, eps=eps, attacks=self.autoattack_attacks, batch_size=len(x), seed=seed,
                          norm=self.norm, warnings=warnings, square_queries=self.queries,
                          square_restarts=self.restarts)


def _steps(text: str | None, default: int, name: str) -> int:
    """The step count written in an attack name (``default`` when none), within [1, MAX_ATTACK_STEPS]."""
    steps = int(text) if text else default
    if steps < 1:
        raise ConfigError(f"attack {name!r} asks for {steps} steps; steps must be >= 1")
    if steps > MAX_ATTACK_STEPS:
        raise ConfigError(f"attack {name!r} asks for {steps:,} steps; at most {MAX_ATTACK_STEPS:,} steps")
    return steps


def parse_attack(name: str, default_steps: int | None = None, norm: str = "Linf") -> AttackSpec:
    """The :class:`AttackSpec` of ``name``; ConfigError listing the known forms otherwise.

    ``default_steps`` replaces the default step count of forms written without one
    (``pgd``, ``cw``, ``pgd-kl``...); ``norm`` (``Linf`` or ``L2``) is the threat model
    the attack runs in.
    """
    return replace(_parse_name(name, default_steps), norm=parse_norm(norm))


def _parse_name(name: str, default_steps: int | None) -> AttackSpec:
    """The :class:`AttackSpec` (L-inf) that the attack name ``name`` spells."""
    spelled = name.strip().lower()
    if spelled in ("natural", "clean"):
        return AttackSpec(spelled, "natural")
    if spelled == "fgsm":
        return AttackSpec(spelled, "fgsm", steps=1)
    if spelled == "aa":
        return AttackSpec(spelled, "autoattack")
    if spelled in AUTOATTACK_ATTACKS:
        return AttackSpec(spelled, "autoattack", autoattack_attacks=(spelled,))
    match = re.fullmatch(r"square(\d+)?(?:x(\d+))?", spelled)
    if match:
        queries, restarts = (int(v) if v else None for v in match.groups())
        try:
            check_square_budget(queries, restarts)
        except ConfigError as error:
            raise ConfigError(f"attack {name!r}: {error}") from None
        return AttackSpec(spelled, "autoattack", autoattack_attacks=("square",), queries=queries, restarts=restarts)
    match = re.fullmatch(r"pgd(\d*)", spelled)
    if match:
        return AttackSpec(spelled, "pgd", _steps(match[1], default_steps or DEFAULT_PGD_STEPS, name), "ce")
    match = re.fullmatch(r"cw(\d*)", spelled)
    if match:
        return AttackSpec(spelled, "pgd", _steps(match[1], default_steps or DEFAULT_CW_STEPS, name), "cw")
    match = re.fullmatch(r"pgd-(ce|kl|info)(\d*)", spelled)
    if match:
        return AttackSpec(spelled, "pgd", _steps(match[2], default_steps or DEFAULT_PGD_STEPS, name), match[1])
    match = re.fullmatch(r"pgd-ls:([0-9.e-]+)(?::(\d+))?", spelled)
    if match:
        try:
            alpha = float(match[1])
        except ValueError:
            alpha = None
        if alpha is None or not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"attack {name!r}: alpha must be a number in [0, 1]")
        return AttackSpec(spelled, "pgd", _steps(match[2], default_steps or DEFAULT_PGD_STEPS, name), "ls", alpha)
    raise ConfigError(f"unknown attack {name!r}; known attacks: {', '.join(KNOWN_ATTACK_FORMS)}")


def parse_attack_list(text: str, norm: str = "Linf") -> list[AttackSpec]:
    """Comma-separated attack names, each parsed (in the threat model ``norm``); duplicates refused."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError(f"no attack named in {text!r}; known attacks: {', '.join(KNOWN_ATTACK_FORMS)}")
    specs = [parse_attack(n, norm=norm) for n in names]
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"attack {spec.name} is listed twice")
        seen.add(spec.name)
    return specs


def resolve_attacks(attacks: str | AttackSpec | Sequence[str | AttackSpec], norm: str = "Linf") -> list[AttackSpec]:
    """The Python API's attack argument as specs: a comma list (``"natural,pgd20"``), one name,
    an :class:`AttackSpec`, or a sequence of names and specs. Names are parsed in the threat
    model ``norm`` (:func:`parse_attack`); specs keep their own."""
    if isinstance(attacks, str):
        return parse_attack_list(attacks, norm=norm)
    if isinstance(attacks, AttackSpec):
        return [attacks]
    specs = [a if isinstance(a, AttackSpec) else parse_attack(str(a), norm=norm) for a in attacks]
    if not specs:
        raise ConfigError(f"no attack given; known attacks: {', '.join(KNOWN_ATTACK_FORMS)}")
    names = [spec.name for spec in specs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"attack {', '.join(twice)} is listed twice")
    return specs
