"""trainers: the part of the project that changes weights.

SCARL, the SPAT trainers (Madry, TRADES and MART with a PGD-LS training attack) and the
baselines (natural, FGSM-AT, PGD-AT, TRADES, MART, TLA), run as::

    python -m trainers METHOD --dataset D --arch A [options] --out RUNDIR
    torchrun --nproc_per_node N -m trainers METHOD ...       # DistributedDataParallel

``python -m trainers --help`` lists every option and the papers' presets. From Python::

    from trainers.config import parse_args
    from trainers.loop import train
    result = train(*parse_args(["pgd_at", "--dataset", "fashion-mnist", "--arch", "small_cnn",
                                "--epochs", "5", "--out", "runs/at"]))

Modules: :mod:`trainers.config` (options, presets, validation), :mod:`trainers.losses`
(the trainer-only loss terms), :mod:`trainers.network` (what a step runs forward),
:mod:`trainers.methods` (one step function per method), :mod:`trainers.loop` (epochs,
evaluation, checkpoints, resume), :mod:`trainers.rundir` (the run folder's files) and
:mod:`trainers.distributed` (torchrun, global-batch BatchNorm, collectives).

It imports ``semprobe`` (data, models, attacks, loss formulas, checkpoints, word
vectors); ``semprobe`` never imports it.
"""
