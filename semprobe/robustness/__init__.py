"""Robustness measurements: accuracy under attack (:mod:`.accuracy`), accuracy vs eps
and steps (:mod:`.curves`), attack success vs the smoothing alpha of PGD-LS
(:mod:`.alpha_curves`) and the trainers' run-folder metrics (:mod:`.run_metrics`).
"""
