"""trainers: the part of the project that changes weights.

The SCARL and SPAT trainers and their baselines are built in this package, run as
``python -m trainers METHOD ...``; it imports ``semprobe`` (data, models, attacks,
checkpoints, word vectors) and ``semprobe`` never imports it. This version of the
project does not ship any trainer yet (see the issue "Trainers").
"""
