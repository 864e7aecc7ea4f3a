"""Which options a resumed run may change, and the configuration it continues with.

``python -m trainers METHOD ... --resume RUNDIR`` continues the stored run: the method,
dataset and architecture must be the run's, and any option given that changes what is
computed must equal its stored value; the runtime options below (a longer ``--epochs``,
another ``--device``, the speed options that do not change the arithmetic) are taken from
the command line.
"""

from __future__ import annotations

from typing import Any

from semprobe.errors import ConfigError
from trainers.config import FLAG_FIELDS, TrainConfig

#: options that may differ when a run is resumed (extending --epochs, another device, ...).
RUNTIME_OPTIONS = ("epochs", "device", "workers", "quiet", "data_dir", "download", "eval_test", "resume", "out",
                   "data_on_device", "channels_last", "compile")


def resumed_config(stored: dict[str, Any], config: TrainConfig, given: set[str]) -> TrainConfig:
    """The configuration to continue a stored run with, or ConfigError if the command disagrees.

    The method, dataset and architecture must be the run's; any other option given that
    changes what is computed must equal the stored value. Runtime options
    (:data:`RUNTIME_OPTIONS`, e.g. ``--epochs`` to extend the run, ``--device``) are taken
    from the command line.
    """
    for name in ("method", "dataset", "arch"):
        if stored.get(name) != getattr(config, name):
            raise ConfigError(
                f"{config.resume} holds a {stored.get('method')} run of {stored.get('arch')} on "
                f"{stored.get('dataset')}; it cannot be resumed as {config.method} of {config.arch} on {config.dataset}"
            )
    resumed = TrainConfig.from_dict(stored)  # a field the run predates takes its default (an old run's norm: Linf)
    changed = []
    for name in sorted(given - set(RUNTIME_OPTIONS)):
        field_name = FLAG_FIELDS.get(name, name)
        if getattr(config, field_name) != getattr(resumed, field_name):
            changed.append(
                f"--{name.replace('_', '-')} ({getattr(resumed, field_name)!r} in the run, "
                f"{getattr(config, field_name)!r} given)"
            )
    if changed:
        raise ConfigError(f"cannot resume {config.resume} with different settings: {'; '.join(changed)}")
    for name in RUNTIME_OPTIONS:
        if name in given or name in ("resume", "out"):
            setattr(resumed, name, getattr(config, name))
    return resumed
