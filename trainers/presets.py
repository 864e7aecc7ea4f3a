"""The papers' training settings, as ``--preset NAME`` (read by :func:`trainers.config.resolve`).

A preset fills in options that are not given on the command line; a value that is a dict
is looked up by method (and absent for other methods). The dataset is always named with
``--dataset``; a preset may name the architecture (``arch``), which ``--arch`` overrides.
No torch here: the command line lists the presets at once.

- ``scarl-cifar10``, ``scarl-cifar100`` (SCARL section 3.1): 100 epochs, SGD lr 0.1
  momentum 0.9, weight decay 5e-4, lr x0.1 at epochs 75 and 90, batch 128, eps 8/255,
  PGD 10 steps of 2/255, beta 6, lambda_1 = lambda_2 = 1.
- ``scarl-tinyimagenet``: the same with 60 epochs and decays at 50 and 55.
- ``spat-cifar10`` (SPAT section 5.1.1, MART's settings): 100 epochs, SGD lr 0.1
  momentum 0.9, weight decay 7e-4, decays at 75 and 90, batch 128, eps 8/255, PGD-LS
  10 steps of eps/4 with random start, beta 6 (TRADES) / 5 (MART), alpha 0.1 for
  spat_trades and 0.3 for spat_mart (Table 3). The paper states no total epoch count;
  100 is the count its decay epochs come from (TRADES, MART).
- ``spat-cifar100``: as spat-cifar10 with alpha 0.2 for spat_mart. The paper says the
  CIFAR-100 weight decay "follows the original implementations" without a number;
  this preset uses 5e-4. Neither SPAT preset gives spat_madry an alpha (the paper
  reports none for Madry + SPAT on these sets): pass ``--alpha``.
- ``trades-awp-cifar10`` (TRADES-AWP, Wu et al. 2020, as its code trains it; SCARL Table 6's
  baseline): WideResNet-34-10 (``--arch`` overrides), 200 epochs, SGD lr 0.1 momentum 0.9,
  weight decay 5e-4, lr x0.1 at epochs 100 and 150, batch 128, eps 8/255, PGD 10 steps of
  2/255, beta 6, AWP gamma 5e-3 after a warm-up of 9 epochs (the code's ``--awp-warmup 10``
  counts epochs from 1).
- ``scarl-awp-cifar10`` (SCARL + AWP, SCARL Table 6, which states no settings): the
  TRADES-AWP recipe above with SCARL's lambda_1 = lambda_2 = 1.
- ``spat-rst-cifar10`` (SPAT section 5.1.2, Table 4: "exact same settings in RST"; RST's
  ``robust_self_training.py`` defaults): 200 epochs of RST's length, SGD lr 0.1 with Nesterov
  momentum 0.9 and a cosine decay, weight decay 5e-4, batch 256 of which half pseudo-labelled
  (``--extra-fraction 0.5``), eps 0.031, PGD 10 steps of 0.007, beta 6; alpha 0.1 for
  spat_trades and spat_mart (Table 4), on WideResNet-28-10 (``--arch`` overrides). Name
  ``--extra-data`` (RST's ``ti_500K_pseudo_labeled.pickle``).
"""

from __future__ import annotations

from typing import Any

_SCARL_CIFAR = {
    "epochs": 100, "milestones": [75, 90], "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
    "batch_size": 128, "eps": "8/255", "step_size": "2/255", "steps": 10, "beta": 6.0,
    "lambda1": 1.0, "lambda2": 1.0,
}  # fmt: skip
_SPAT_CIFAR10 = {
    "epochs": 100, "milestones": [75, 90], "lr": 0.1, "momentum": 0.9, "weight_decay": 7e-4,
    "batch_size": 128, "eps": "8/255", "step_size": "eps/4", "steps": 10, "random_start": "uniform",
    "beta": {"trades": 6.0, "spat_trades": 6.0, "mart": 5.0, "spat_mart": 5.0},
    "alpha": {"spat_trades": 0.1, "spat_mart": 0.3},
}  # fmt: skip
# TRADES-AWP (Wu et al. 2020; csdongxian/AWP, trades_AWP/train_trades_cifar.py): WideResNet-34-10, 200
# epochs, lr 0.1 x0.1 at epochs 100 and 150, wd 5e-4, batch 128, eps 8/255, 10 steps of 2/255, beta 6,
# gamma 5e-3, AWP from the code's (1-based) epoch 10 on, i.e. after 9 epochs without it.
_TRADES_AWP_CIFAR10 = {
    "arch": "wrn_34_10", "epochs": 200, "milestones": [100, 150], "lr": 0.1, "momentum": 0.9,
    "weight_decay": 5e-4, "batch_size": 128, "eps": "8/255", "step_size": "2/255", "steps": 10, "beta": 6.0,
    "awp_gamma": 5e-3, "awp_warmup": 9,
}  # fmt: skip
#: A preset value that is a dict is looked up by method (and absent for other methods). A preset may
#: name the architecture (``arch``), which ``--arch`` overrides.
PRESETS: dict[str, dict[str, Any]] = {
    "scarl-cifar10": _SCARL_CIFAR,
    "scarl-cifar100": _SCARL_CIFAR,
    "scarl-tinyimagenet": {**_SCARL_CIFAR, "epochs": 60, "milestones": [50, 55]},
    "spat-cifar10": _SPAT_CIFAR10,
    "spat-cifar100": {**_SPAT_CIFAR10, "weight_decay": 5e-4, "alpha": {"spat_trades": 0.1, "spat_mart": 0.2}},
    "trades-awp-cifar10": _TRADES_AWP_CIFAR10,
    # SCARL Table 6 gives no AWP settings; SCARL's loss (its beta, lambda_1 = lambda_2 = 1) on the TRADES-AWP recipe
    "scarl-awp-cifar10": {**_TRADES_AWP_CIFAR10, "lambda1": 1.0, "lambda2": 1.0},
}
# SPAT Table 4 trains on CIFAR-10 plus RST's 500K pseudo-labelled TinyImages "in the exact same settings
# [as] RST": the defaults of yaircarmon/semisup-adv's robust_self_training.py (WideResNet-28-10, 200 epochs
# of ceil(50000 / 256) batches, batch 256 with unsup_fraction 0.5, SGD lr 0.1, momentum 0.9, nesterov,
# weight decay 5e-4, lr_schedule 'cosine', epsilon 0.031, pgd_num_steps 10, pgd_step_size 0.007, beta 6),
# which the repository's README runs (with --epsilon 0.031) to get its RST_adv(50K+500K) model at epoch 200
# (the paper's appendix was not consulted here). No alpha for rst: `rst --preset spat-rst-cifar10` is the
# table's RST row, `spat_trades` (or `rst --alpha 0.1`) its RST + SPAT row.
PRESETS["spat-rst-cifar10"] = {
    "arch": "wrn_28_10", "epochs": 200, "lr_schedule": "cosine", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
    "batch_size": 256, "extra_fraction": 0.5, "eps": "0.031", "step_size": "0.007", "steps": 10,
    "beta": {"rst": 6.0, "trades": 6.0, "spat_trades": 6.0, "mart": 5.0, "spat_mart": 5.0},
    "alpha": {"spat_trades": 0.1, "spat_mart": 0.1},
}  # fmt: skip
