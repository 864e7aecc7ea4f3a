"""Attacks in [0,1] pixel space: PGD and FGSM under L-inf and L2 with their surrogate
losses (:mod:`.gradient`; the loss functions themselves, with their equation numbers, are
:mod:`semprobe.losses`), the attack names of the command line as a table (:mod:`.specs`),
and AutoAttack (:mod:`.autoattack`).

``from semprobe import attacks; attacks.pgd(...)`` reaches :mod:`.gradient`'s functions.
"""

from semprobe.attacks.gradient import (  # noqa: F401
    CarliniWagner,
    CrossEntropy,
    InfoBound,
    KLDivergence,
    LabelSmoothed,
    NAMED_LOSSES,
    NORM_FLOOR,
    Objective,
    Observer,
    RANDOM_STARTS,
    Surrogate,
    TRADES_START_STD,
    ce,
    check_budget,
    cw,
    fgsm,
    info,
    iterate,
    kl,
    l2_norms,
    l2_step,
    ls,
    model_mode,
    per_example,
    pgd,
    project_l2,
    random_start,
    resolve_loss,
    uniform_l2_ball,
)
