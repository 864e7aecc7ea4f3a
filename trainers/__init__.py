"""trainers: the part of the project that changes weights.

SCARL, the SPAT trainers (Madry, TRADES and MART with a PGD-LS training attack) and the
baselines (natural, FGSM-AT, PGD-AT, TRADES, MART, TLA, RST), run as::

    python -m trainers METHOD --dataset D --arch A [options] --out RUNDIR
    torchrun --nproc_per_node N -m trainers METHOD ...       # DistributedDataParallel

``python -m trainers --help`` lists every method and option and the papers' presets
(without importing torch); ``--version`` prints semprobe's version. From Python::

    from trainers.config import parse_args
    from trainers.loop import train
    result = train(*parse_args(["pgd_at", "--dataset", "fashion-mnist", "--arch", "small_cnn",
                                "--epochs", "5", "--out", "runs/at"]))

The layers, from the method table down:

- :mod:`trainers.spec`: the method table (one :class:`~trainers.spec.MethodSpec` per
  method: step function, training-attack loss, default random start and beta, the
  method-specific options). No torch.
- :mod:`trainers.cli`: the click command line; parsing only (the options given), no torch.
- :mod:`trainers.config`: presets, defaults and validation into a ``TrainConfig``
  (torch only inside :func:`~trainers.config.resolve`), and resuming;
  :func:`~trainers.config.parse_args` is the command line and the resolution in one call.
- :mod:`trainers.losses` (the trainer-only loss terms; the shared formulas, L_info and
  L_struc included, are in :mod:`semprobe.losses`), :mod:`trainers.network` (what a step
  runs forward), :mod:`trainers.methods` (one step function per method),
  :mod:`trainers.validation` (the splits and the per-epoch clean/PGD accuracy, with the
  seeded random streams), :mod:`trainers.guards` (divergence, Ctrl-C held back while an
  epoch's files are written), :mod:`trainers.loop` (epochs, checkpoints, resume), :mod:`trainers.rundir`
  (the run folder's files) and :mod:`trainers.distributed` (torchrun, global-batch
  BatchNorm, collectives); :mod:`trainers.extra_data` reads pseudo-labelled extra images
  (``--extra-data``, safely) and mixes them into the batches as RST does.

It imports ``semprobe`` (data, models, attacks, loss formulas, checkpoints, word
vectors); ``semprobe`` never imports it.
"""
