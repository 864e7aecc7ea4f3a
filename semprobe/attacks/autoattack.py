"""AutoAttack (Croce & Hein, 2020) through the official implementation, ``pyautoattack``.

``autoattack(model, x, y, eps=...)`` runs the standard ensemble (APGD-CE, APGD-T, FAB-T,
Square) or any subset of its attacks (``attacks=[...]``, run as AutoAttack's ``custom``
version with the standard version's settings), in [0,1] pixel space, in the L-infinity
ball (``norm="Linf"``, the default) or the L2 ball (``norm="L2"``, AutoAttack's own L2
threat model), and returns the adversarial images. Square alone is ``attacks=["square"]``
(``square_queries``, ``square_restarts``: more than the standard 5,000 queries and 1
restart). AutoAttack's own progress goes to the ``auto-attack`` logger; ``verbose=True``
shows it on stderr.

AutoAttack also checks its own reliability (Croce & Hein's flags, ``flags_doc.md`` of the
official code): a randomized or dynamic model, outputs that are not logits, zero
gradients, and Square (a black-box attack) succeeding where APGD and FAB failed, a sign
of gradient masking. ``autoattack(..., warnings=[])`` collects these messages in the list
given (instead of printing them); :func:`semprobe.evaluate` records them with the result.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator, Sequence

import torch

from semprobe.attacks.gradient import check_budget, model_mode
from semprobe.errors import ConfigError
from semprobe.options import parse_norm

AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
STANDARD_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
# AutoAttack's standard version targets the 9 most likely wrong classes.
STANDARD_TARGET_CLASSES = 9
STANDARD_SQUARE_QUERIES = 5000
# the most a Square attack may ask for: an attack name is user input, and each query is one
# forward pass of every image still unbroken
MAX_SQUARE_QUERIES = 100_000
MAX_SQUARE_RESTARTS = 10
LOGGER_NAME = "auto-attack"


@contextlib.contextmanager
def _log_to_stderr(enabled: bool) -> Iterator[None]:
    """Show AutoAttack's progress messages on stderr for the duration of the block."""
    if not enabled:
        yield
        return
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("autoattack: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


class _Collector(logging.Handler):
    """Appends the message of every record that its own thread logs to a list (the logger is
    shared by all threads; an attack in another thread keeps its warnings)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.messages = messages
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collect_warnings(messages: list[str] | None) -> Iterator[None]:
    """Append AutoAttack's warnings (its reliability checks) to ``messages`` during the block."""
    if messages is None:
        yield
        return
    logger = logging.getLogger(LOGGER_NAME)
    handler = _Collector(messages)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def check_attacks(attacks: Sequence[str] | None, num_classes: int) -> tuple[str, ...]:
    """Validate an AutoAttack subset (``None`` = standard) against the number of classes."""
    chosen = tuple(STANDARD_ATTACKS if attacks is None else attacks)
    unknown = [a for a in chosen if a not in AUTOATTACK_ATTACKS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown AutoAttack attack(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(AUTOATTACK_ATTACKS)}"
        )
    if num_classes < 4 and any(a in ("apgd-dlr", "apgd-t") for a in chosen):
        raise ConfigError(f"the DLR losses of apgd-dlr and apgd-t need at least 4 classes, the model has {num_classes}")
    return chosen


def check_square_budget(queries: int | None, restarts: int | None) -> tuple[int, int]:
    """Square's queries and restarts (``None``: the standard 5,000 and 1), within their limits."""
    queries = STANDARD_SQUARE_QUERIES if queries is None else int(queries)
    restarts = 1 if restarts is None else int(restarts)
    if not 1 <= queries <= MAX_SQUARE_QUERIES:
        raise ConfigError(f"Square takes 1 to {MAX_SQUARE_QUERIES:,} queries, got {queries:,}")
    if not 1 <= restarts <= MAX_SQUARE_RESTARTS:
        raise ConfigError(f"Square takes 1 to {MAX_SQUARE_RESTARTS} restarts, got {restarts}")
    return queries, restarts


def autoattack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    attacks: Sequence[str] | None = None,
    batch_size: int = 250,
    seed: int = 0,
    verbose: bool = False,
    norm: str = "Linf",
    warnings: list[str] | None = None,
    square_queries: int | None = None,
    square_restarts: int | None = None,
) -> torch.Tensor:
    """Adversarial images from AutoAttack (``attacks=None``: the standard version) in the
    ``norm`` ball (``Linf`` or ``L2``) of radius ``eps``.

    A subset runs with the standard version's settings (1 restart of APGD, 9 target
    classes, or K-1 when the model has fewer classes, 5,000 Square queries). ``warnings``,
    a list, receives AutoAttack's reliability warnings instead of stderr. ``square_queries``
    and ``square_restarts`` give a subset's Square more queries and restarts than the
    standard 5,000 and 1 (what AutoAttack's flags advise when Square beats the gradient
    attacks); the standard version keeps its own.
    """
    from pyautoattack import AutoAttack

    norm = parse_norm(norm)
    check_budget(eps, norm=norm)
    with torch.no_grad():
        num_classes = model(x[:1]).shape[1]
    chosen = check_attacks(attacks, num_classes)
    queries, restarts = check_square_budget(square_queries, square_restarts)
    if attacks is None and (square_queries is not None or square_restarts is not None):
        raise ConfigError("Square's queries and restarts are set on a subset (attacks=[...]); "
                          "the standard version keeps AutoAttack's own")
    if attacks is None:
        adversary = AutoAttack(model, device=x.device, eps=eps, norm=norm, seed=seed, version="standard")
    else:
        adversary = AutoAttack(model, attacks=list(chosen), device=x.device, eps=eps, norm=norm, seed=seed,
                               version="custom")
        # the custom version starts from 5 restarts; use the standard version's settings
        adversary.apgd.n_restarts = 1
        adversary.fab.n_restarts = 1
        adversary.apgd_targeted.n_restarts = 1
        adversary.square.n_queries = queries
        adversary.square.n_restarts = restarts
    targets = min(STANDARD_TARGET_CLASSES, num_classes - 1)
    adversary.apgd_targeted.n_target_classes = targets
    adversary.fab.n_target_classes = targets
    with model_mode(model, train=False), _log_to_stderr(verbose), _collect_warnings(warnings):
        x_adv, _ = adversary.run_standard_evaluation(x.detach(), y, batch_size=batch_size)
    return x_adv.detach()
