"""The format of a training run folder, written by ``python -m trainers`` and read by
:mod:`semprobe.robustness.run_metrics` (SCARL Fig. 4 a, d; SPAT Fig. 5), ``semprobe figures``
and the demo. No third-party imports: the trainers' command line reads it before torch."""

#: every option of the run, resolved (rewritten on resume)
CONFIG = "config.json"
#: one JSON object per completed epoch
METRICS = "metrics.jsonl"
#: the weights after the last completed epoch, and after the best one
LAST = "last.pt"
BEST = "best.pt"
#: the validation accuracies (fractions) in each metrics line
VAL_CLEAN = "val_clean_acc"
VAL_PGD = "val_pgd_acc"
