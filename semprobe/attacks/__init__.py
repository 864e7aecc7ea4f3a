"""Attacks in [0,1] pixel space: PGD and FGSM under L-inf and L2 (:mod:`.gradient`) with
their surrogate losses (:mod:`.surrogates`; the loss functions themselves, with their
equation numbers, are :mod:`semprobe.losses`), the attack names of the command line as a
table (:mod:`.specs`), and AutoAttack (:mod:`.autoattack`).

``from semprobe import attacks; attacks.pgd(...)`` reaches :mod:`.gradient`'s and
:mod:`.surrogates`' functions (``attacks.ls(0.2)``).
"""

from semprobe.attacks.gradient import (  # noqa: F401
    NORM_FLOOR,
    Observer,
    RANDOM_STARTS,
    TRADES_START_STD,
    check_budget,
    fgsm,
    iterate,
    l2_norms,
    l2_step,
    model_mode,
    per_example,
    pgd,
    project_l2,
    random_start,
    uniform_l2_ball,
)
from semprobe.attacks.surrogates import (  # noqa: F401
    CarliniWagner,
    CrossEntropy,
    InfoBound,
    KLDivergence,
    LabelSmoothed,
    NAMED_LOSSES,
    Objective,
    Surrogate,
    ce,
    cw,
    info,
    kl,
    ls,
    resolve_loss,
)
