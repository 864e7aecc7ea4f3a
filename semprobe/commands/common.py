"""What every command shares: click settings, the checkpoint options, the output options."""

from __future__ import annotations

from pathlib import Path

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def command(**kwargs):
    """``click.command`` with semprobe's context settings."""
    return click.command(context_settings=CONTEXT_SETTINGS, **kwargs)


def checkpoint_options(func):
    """The options that identify a checkpoint, ours or foreign (``--arch`` and friends)."""
    options = [
        click.option("--ckpt", "ckpt", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Checkpoint file (semprobe's, or a foreign state_dict with --arch)."),
        click.option("--arch", default=None, help="Architecture of a foreign checkpoint (see `semprobe info --help`)."),
        click.option("--num-classes", type=click.IntRange(min=2), default=None,
                     help="Classes of a foreign checkpoint, when its weights do not say."),
        click.option("--in-channels", type=click.IntRange(min=1), default=None,
                     help="Input channels of a foreign checkpoint, when its weights do not say."),
        click.option("--normalization", default=None,
                     help="Input normalization of a foreign checkpoint: none, cifar10, cifar100, imagenet, "
                          "fashion-mnist, or MEAN,.../STD,..."),
    ]
    for option in reversed(options):
        func = option(func)
    return func



def out_options(func):
    """``--out DIR`` (required) and ``--overwrite``."""
    func = click.option("--overwrite", is_flag=True, help="Replace files of an earlier run in --out.")(func)
    return click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                        help="Directory for the results (JSON, tables, figures).")(func)
