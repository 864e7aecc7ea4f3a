"""What every command shares: click settings, the checkpoint options, the output options."""

from __future__ import annotations

from pathlib import Path

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def command(**kwargs):
    """``click.command`` with semprobe's context settings."""
    return click.command(context_settings=CONTEXT_SETTINGS, **kwargs)


def click_error_line(exc: click.ClickException) -> str:
    """A click usage error as one line, naming the ``--help`` of the command it came from."""
    from semprobe.errors import one_line

    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{one_line(exc.format_message())}{hint}"


def at_most(maximum: int, unit: str):
    """A click callback that refuses a count above ``maximum`` before any work starts.

    The refusal names the option (click adds it) and the limit, e.g. ``Invalid value for
    '--n-perm': 1,000,000 is above the limit of 100,000 permutations``.
    """

    def check(ctx, param, value):
        if value is not None and value > maximum:
            raise click.BadParameter(f"{value:,} is above the limit of {maximum:,} {unit}", ctx=ctx, param=param)
        return value

    return check


ZOO_THREAT_MODELS = ("Linf", "L2")
# where the options that no command function takes (--threat-model, --model-dir,
# --download, --image-size) wait in click's context until data or a checkpoint is loaded
HIDDEN_OPTIONS_KEY = "semprobe.hidden_options"
ZOO_OPTION_NAMES = ("threat_model", "model_dir", "download")
DATA_OPTION_NAMES = ("download", "image_size")
ZOO_DATASETS = ("cifar10", "cifar100", "imagenet")


def _remember_option(ctx, param, value):
    """Keep a hidden option's value in ``ctx.meta`` for :func:`zoo_options` and :func:`data_options`.

    They are not passed to the command function, so every command that loads data or
    takes ``--ckpt`` gets them without a new argument.
    """
    ctx.meta.setdefault(HIDDEN_OPTIONS_KEY, {})[param.name] = value
    return value


def _hidden_options(names) -> dict:
    """The running command's values of the hidden options ``names`` (empty outside click)."""
    ctx = click.get_current_context(silent=True)
    stored = ctx.meta.get(HIDDEN_OPTIONS_KEY, {}) if ctx is not None else {}
    return {name: stored[name] for name in names if name in stored}


def zoo_options(dataset: str | None = None) -> dict:
    """The RobustBench options of the running command, for ``load_checkpoint``.

    ``dataset`` (else the command's ``--dataset``) is passed on only when it is a zoo
    dataset; outside a click command (from Python) nothing is set.
    """
    ctx = click.get_current_context(silent=True)
    options = _hidden_options(ZOO_OPTION_NAMES)
    if dataset is None and ctx is not None:
        dataset = ctx.params.get("dataset")
    options["dataset"] = dataset if dataset in ZOO_DATASETS else None
    return options


def data_options() -> dict:
    """``download`` and ``image_size`` of the running command, for ``load_dataset``/``dataset_info``."""
    return _hidden_options(DATA_OPTION_NAMES)


def download_option(func):
    """``--download``: one flag for every missing file (dataset, RobustBench weights).

    Added once even when two option groups of a command ask for it."""
    if any(param.name == "download" for param in getattr(func, "__click_params__", [])):
        return func
    return click.option(
        "--download", is_flag=True, default=False, expose_value=False, callback=_remember_option,
        help="Fetch missing files: the dataset (cifar10, cifar100, fashion-mnist, tinyimagenet) into --data-dir "
             "(else $SEMPROBE_DATA, else the cache) and a --ckpt robustbench:NAME file into --model-dir. "
             "Without it nothing is downloaded.")(func)


def image_size_option(func):
    """``--image-size``: the square size an ``imagefolder:PATH`` dataset's images are resized to."""
    from semprobe.options import MAX_IMAGE_SIZE

    return click.option(
        "--image-size", type=click.IntRange(1, MAX_IMAGE_SIZE), default=None, expose_value=False,
        callback=_remember_option,
        help="Resize the images of an imagefolder:PATH dataset to this many pixels square (default: the size "
             "of its first training image).")(func)


def checkpoint_options(multiple: bool = False, required: bool = True):
    """The options that identify checkpoints, ours or foreign (``--arch`` and friends),
    and a RobustBench zoo entry (``--ckpt robustbench:NAME``, ``--threat-model``,
    ``--model-dir``, ``--download``).

    With ``multiple``, ``--ckpt`` may be repeated and the foreign options apply to each;
    ``required=False`` when a command has another source (``--features``).
    """
    options = [
        click.option("--ckpt", "ckpt", required=required, multiple=multiple,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Checkpoint file (semprobe's, or a foreign state_dict with --arch), or "
                          "robustbench:NAME (a RobustBench zoo entry, installed as README says; "
                          "or robustbench:DATASET/THREAT_MODEL/NAME)"
                          + (" ; repeat for several." if multiple else ".")),
        click.option("--arch", default=None,
                     help="Architecture of a foreign checkpoint: a semprobe name (resnet18, wrn_34_10, ...), "
                          "torchvision:NAME (any torchvision.models classifier) or timm:NAME "
                          "(pip install semprobe[timm])."),
        click.option("--num-classes", type=click.IntRange(min=2), default=None,
                     help="Classes of a foreign checkpoint, when its weights do not say."),
        click.option("--in-channels", type=click.IntRange(min=1), default=None,
                     help="Input channels of a foreign checkpoint, when its weights do not say."),
        click.option("--normalization", default=None,
                     help="Input normalization of a foreign checkpoint: none, cifar10, cifar100, imagenet, "
                          "fashion-mnist, or MEAN,.../STD,..."),
        click.option("--threat-model", type=click.Choice(ZOO_THREAT_MODELS), default=None, expose_value=False,
                     callback=_remember_option,
                     help="Threat model of a --ckpt robustbench:NAME zoo entry (Linf by default). "
                          "The attack's norm is its own option."),
        click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_remember_option,
                     help="RobustBench's model folder (MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt) for "
                          "--ckpt robustbench:NAME; default $SEMPROBE_CACHE/robustbench."),
        download_option,
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


RUN_FILE_STEMS = {"best", "last"}


#: Entries of a semprobe checkpoint that loading reads without a default.
REQUIRED_CHECKPOINT_ENTRIES = ("arch", "num_classes", "in_channels", "model")


def load_one_checkpoint(path, **options):
    """:func:`semprobe.models.checkpoint.load_checkpoint`, with a file that claims the semprobe format
    but lacks a required entry refused as a CheckpointError instead of a KeyError.

    The running command's RobustBench options (:func:`zoo_options`) are passed on unless
    ``options`` sets them."""
    from semprobe.models.checkpoint import FORMAT, load_checkpoint
    from semprobe.errors import CheckpointError

    options = {**zoo_options(), **options}
    try:
        return load_checkpoint(path, **options)
    except KeyError as exc:
        missing = exc.args[0] if exc.args else None
        if missing not in REQUIRED_CHECKPOINT_ENTRIES:
            raise
        raise CheckpointError(f"{path} says it is a semprobe checkpoint but lacks its {missing!r} entry; a {FORMAT} "
                              f"file needs {', '.join(REQUIRED_CHECKPOINT_ENTRIES)}; re-save it with "
                              "semprobe.save_checkpoint") from None


def load_checkpoints(paths, arch, num_classes, in_channels, normalization, device="cpu") -> dict:
    """Load each checkpoint (all before any work starts); keys are short unique labels."""
    loaded = [load_one_checkpoint(p, arch=arch, num_classes=num_classes, in_channels=in_channels,
                                  normalization=normalization, device=device) for p in paths]
    labels = [p.stem for p in paths]
    # a trainer's run folder holds best.pt and last.pt: its name is what tells checkpoints apart
    if len(set(labels)) < len(labels) or set(labels) & RUN_FILE_STEMS:
        labels = [f"{p.parent.name}/{p.stem}" for p in paths]
    if len(set(labels)) < len(labels):
        labels = [str(p) for p in paths]
    return dict(zip(labels, loaded))


def common_run_options(func):
    """``--data-dir``, ``--download``, ``--image-size``, ``--batch-size``, ``--seed``, ``--device``, ``--quiet``."""
    options = [
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Where the dataset's files are (else $SEMPROBE_DATA, then system locations)."),
        download_option,
        image_size_option,
        click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
                     help="Images per batch."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed for sampling and random starts: same seed, same numbers."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def progress_factory(quiet: bool):
    """A ``(name, total) -> tqdm`` factory, or None when quiet, when stderr is not a terminal, or in
    a torchrun process other than the main one."""
    import sys

    from semprobe.cli.job import is_main

    if quiet or not sys.stderr.isatty() or not is_main():
        return None
    from tqdm import tqdm

    return lambda name, total: tqdm(total=total, desc=name, unit="img", leave=False)


def out_options(func):
    """``--out DIR`` (required) and ``--overwrite``."""
    func = click.option("--overwrite", is_flag=True, help="Replace files of an earlier run in --out.")(func)
    return click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                        help="Directory for the results (JSON, tables, figures).")(func)
def load_images(dataset: str, split: str, n: int | None, seed: int, data_dir=None, option_name: str = "--n"):
    """``(ImageDataset, images, labels, indices)``: ``n`` images of the split (all when None).

    A subset is drawn at random with ``seed`` (indices kept sorted) so that it is a
    fair sample of every class; ``n`` larger than the split is refused (the error names
    ``option_name``, the option the user set).
    """
    import torch

    from semprobe.data import load_dataset
    from semprobe.errors import ConfigError

    data = load_dataset(dataset, split, data_dir=data_dir, **data_options())
    total = len(data)
    if n is not None and n > total:
        raise ConfigError(f"{option_name} {n} is larger than the {split} split of {dataset} ({total} images)")
    if n is None or n == total:
        indices = torch.arange(total)
    else:
        indices = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    images, labels = data.tensors(indices)
    return data, images, labels, indices


def dataset_meta(dataset: str, data_dir=None, aliases=None):
    """:func:`semprobe.data.dataset_info` with the running command's ``--download`` and ``--image-size``."""
    from semprobe.data import dataset_info

    return dataset_info(dataset, data_dir=data_dir, aliases=aliases, **data_options())


def common_dataset(checkpoints: dict, dataset: str | None) -> str:
    """``--dataset`` if given, else the one dataset every checkpoint records; ConfigError otherwise."""
    from semprobe.errors import ConfigError

    names = {dataset or c.dataset for c in checkpoints.values()}
    if None in names:
        raise ConfigError("a checkpoint does not record its dataset; pass --dataset")
    if len(names) > 1:
        raise ConfigError(f"the checkpoints were trained on different datasets ({', '.join(sorted(names))}); "
                          "pass --dataset")
    return names.pop()


def attack_contexts(checkpoints: dict, specs, info_tau=None, info_c=None) -> dict:
    """Per checkpoint label, the :class:`AttackContext` its attacks need (SCARL heads, word
    vectors, L_info's tau and c); refuses attacks a checkpoint cannot run, before any work."""
    import torch

    from semprobe.errors import ConfigError
    from semprobe.robustness.accuracy import AttackContext

    needs_heads = [s.name for s in specs if s.needs_heads]
    contexts = {}
    for label, loaded in checkpoints.items():
        if needs_heads and (loaded.heads is None or loaded.word_vectors is None):
            raise ConfigError(f"{', '.join(needs_heads)} needs SCARL projection heads and word vectors, "
                              f"which {label} does not carry")
        tau = info_tau if info_tau is not None else loaded.config.get("tau")
        c = info_c if info_c is not None else loaded.config.get("c")
        if needs_heads and (tau is None or c is None):
            raise ConfigError(f"{label} does not record L_info's tau and c; pass --info-tau and --info-c")
        contexts[label] = AttackContext(
            heads=loaded.heads,
            word_vectors=torch.tensor(loaded.word_vectors.vectors) if loaded.word_vectors is not None else None,
            info_tau=tau, info_c=c,
        )
    return contexts


def check_model_fits_data(label: str, checkpoint, data) -> None:
    """Refuse a checkpoint whose classes or input channels differ from the dataset's."""
    from semprobe.errors import ConfigError

    if checkpoint.num_classes != data.info.num_classes:
        raise ConfigError(f"{label} has {checkpoint.num_classes} classes but {data.info.name} has "
                          f"{data.info.num_classes}")
    if checkpoint.in_channels != data.info.image_shape[0]:
        raise ConfigError(f"{label} takes {checkpoint.in_channels}-channel images but {data.info.name} has "
                          f"{data.info.image_shape[0]}")
