"""Where ``semprobe cca`` and ``semprobe simmatrix`` get their features from.

Either checkpoints run over a dataset split (natural images and, with an attack, their
adversarial versions), or ``.npz`` files of features computed elsewhere. Both end up as
one :class:`FeatureSource` per checkpoint or file: the features, the class names and
the phrases to embed, and where they came from. Every check that can fail runs before
any feature is computed, so a mistake costs nothing and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from semprobe.cli.common import at_most, checkpoint_options
from semprobe.options import MAX_ATTACK_STEPS, norm_option


@dataclass
class FeatureSource:
    """Features of one checkpoint or file, ready for the statistics."""

    label: str
    features: object  # semprobe.models.features.FeatureSet
    classes: list[str]
    phrases: list[str]
    provenance: dict = field(default_factory=dict)

    @property
    def has_adversarial(self) -> bool:
        return self.features.features_adv is not None


def feature_source_options(default_n_help: str, attack_default: str = "pgd"):
    """The options that say where features come from (checkpoints or files) and how."""
    options = [
        click.option("--features", "features_files", multiple=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="An .npz with features (n x p), labels (n), optional features_adv and classes, in place "
                          "of --ckpt; repeat for several."),
        click.option("--dataset", default=None,
                     help="Dataset (default: the one the checkpoint records); with --features, where class names "
                          "come from when the file has none."),
        click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True),
        click.option("--layer", default="penultimate", show_default=True,
                     help="Layer whose output is the feature: penultimate, logits or a module name "
                          "(`semprobe info --ckpt C` lists them)."),
        click.option("--n", "--n-images", "n_images", type=click.IntRange(min=1), default=None,
                     help=f"Images of the split to extract features from, a seeded random sample ({default_n_help}; "
                          "under torchrun spell it --n-images)."),
        click.option("--attack", "attack_name", default=attack_default, show_default=True,
                     help="Attack for the adversarial features: pgd, cw, fgsm, pgd-kl, pgd-info, pgd-ls:ALPHA, "
                          "square, ... (see `semprobe eval --help`), or none."),
        click.option("--eps", "eps_text", default="8/255", show_default=True,
                     help="Attack radius in [0,1] pixels (L-inf); with --norm L2 an L2 radius, e.g. 0.5."),
        norm_option(),
        click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True,
                     callback=at_most(MAX_ATTACK_STEPS, "steps"),
                     help=f"Steps of an iterative attack; at most {MAX_ATTACK_STEPS:,}."),
        click.option("--step-size", "step_text", default="eps/4", show_default=True,
                     help="Step size: a number, or relative to eps (eps/4, eps/10)."),
        click.option("--aliases", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="File of 'class name = phrase' lines overriding the words looked up per class."),
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return checkpoint_options(multiple=True, required=False)(func)

    return decorate


@dataclass(frozen=True)
class AttackSettings:
    """The adversarial-feature attack as parsed from the options (``spec`` None: natural only).

    The threat model's norm travels in ``spec.norm`` and is recorded by :meth:`describe`.
    """

    spec: object  # semprobe.attacks.specs.AttackSpec or None
    eps: float
    step_size: float | None

    def describe(self) -> dict | None:
        return None if self.spec is None else self.spec.describe(self.eps, self.step_size)


def parse_attack_settings(attack_name: str, eps_text: str, steps: int, step_text: str,
                          norm_text: str = "Linf") -> AttackSettings:
    """``--attack/--eps/--norm/--steps/--step-size`` checked up front (``--norm`` even without an attack)."""
    from semprobe.attacks.specs import parse_attack
    from semprobe.errors import ConfigError
    from semprobe.options import parse_eps, parse_norm, parse_step_size

    norm = parse_norm(norm_text)
    if attack_name.strip().lower() in ("none", "natural"):
        return AttackSettings(None, 0.0, None)
    spec = parse_attack(attack_name, default_steps=steps, norm=norm)
    eps = parse_eps(eps_text, norm)
    if eps == 0:
        raise ConfigError("--eps must be > 0 for adversarial features (or pass --attack none)")
    return AttackSettings(spec, eps, parse_step_size(step_text, eps))


def collect_feature_sources(
    *, ckpt, arch, num_classes, in_channels, normalization, features_files, dataset, split, layer, n_images,
    attack: AttackSettings, aliases, data_dir, batch_size, seed, device, quiet, min_images: int | None = None,
) -> list[FeatureSource]:
    """One :class:`FeatureSource` per ``--ckpt`` and per ``--features``, all checks first.

    ``n_images`` None means the whole split. ``min_images`` names a smallest sample a
    command needs (``--n-pairs``), checked against the split before any work.
    """
    from semprobe.errors import ConfigError

    if not ckpt and not features_files:
        raise ConfigError("pass --ckpt (with a dataset) or --features FILE.npz")
    files = [_file_source(path, dataset, aliases, data_dir) for path in features_files]
    if not ckpt:
        _check_same_classes(files)
        return files
    return _checkpoint_sources(ckpt, arch, num_classes, in_channels, normalization, dataset, split, layer, n_images,
                               attack, aliases, data_dir, batch_size, seed, device, quiet, min_images, files)


def _file_source(path: Path, dataset, aliases, data_dir) -> FeatureSource:
    from semprobe.cli.common import dataset_meta
    from semprobe.errors import ConfigError
    from semprobe.models.features import load_features_file

    features = load_features_file(path)
    meta = dataset_meta(dataset, data_dir=data_dir, aliases=aliases) if dataset else None
    if features.classes is None and meta is None:
        raise ConfigError(f"features file {path} has no 'classes' array; pass --dataset to name its classes")
    classes = list(features.classes) if features.classes is not None else list(meta.classes)
    if meta is not None and classes == list(meta.classes):
        phrases = list(meta.phrases)
    else:
        phrases = [name.replace("_", " ").replace("/", " ") for name in classes]
    if int(features.labels.max(initial=0)) >= len(classes):
        raise ConfigError(f"features file {path}: labels go up to {int(features.labels.max())} but there are "
                          f"{len(classes)} classes")
    empty = [classes[k] for k in range(len(classes)) if not (features.labels == k).any()]
    if empty:
        raise ConfigError(f"features file {path}: class(es) {', '.join(empty[:10])} have no images; "
                          "every class needs images (or leave the class out of 'classes')")
    features.classes = classes
    return FeatureSource(path.stem, features, classes, phrases, {"features_file": str(path)})


def _check_same_classes(sources: list[FeatureSource]) -> None:
    from semprobe.errors import ConfigError

    first = sources[0]
    for other in sources[1:]:
        if other.classes != first.classes:
            raise ConfigError(f"{other.label} and {first.label} have different classes; "
                              "one figure needs one set of classes")
    labels = [s.label for s in sources]
    if len(set(labels)) < len(labels):
        for source in sources:
            source.label = str(source.provenance.get("features_file") or source.provenance.get("path"))


def _checkpoint_sources(ckpt, arch, num_classes, in_channels, normalization, dataset, split, layer, n_images, attack,
                        aliases, data_dir, batch_size, seed, device, quiet, min_images, files) -> list[FeatureSource]:
    from semprobe.cli.common import (
        attack_contexts, check_model_fits_data, common_dataset, dataset_meta, load_checkpoints, load_images,
        progress_factory,
    )
    from semprobe.errors import ConfigError
    from semprobe.cli import job
    from semprobe.models.features import check_layer, extract_features
    from semprobe.options import seed_everything

    torch_device = job.device_of(device)
    checkpoints = load_checkpoints(ckpt, arch, num_classes, in_channels, normalization, device=torch_device)
    dataset_name = common_dataset(checkpoints, dataset)
    for loaded in checkpoints.values():
        check_layer(loaded.model, layer)
    specs = [attack.spec] if attack.spec is not None else []
    contexts = attack_contexts(checkpoints, specs)
    meta = dataset_meta(dataset_name, data_dir=data_dir, aliases=aliases)
    if n_images is not None and min_images is not None and n_images < min_images:
        raise ConfigError(f"--n {n_images} is smaller than --n-pairs {min_images}")
    wanted = n_images if n_images is not None else min_images
    data, images, labels, indices = load_images(dataset_name, split, wanted, seed, data_dir,
                                                option_name="--n" if n_images is not None else "--n-pairs")
    for label, loaded in checkpoints.items():
        check_model_fits_data(label, loaded, data)
    classes, phrases = list(meta.classes), list(meta.phrases)
    sources = []
    for source in files:
        if source.classes != classes:
            raise ConfigError(f"features file {source.label} has other classes than {dataset_name}")

    processes = job.processes()
    processes.agree()  # every process is ready: a mistake in any of them stops all before the work
    seed_everything(seed)
    factory = progress_factory(quiet)
    for label, loaded in checkpoints.items():
        bar = factory(label, len(labels)) if factory else None
        features = extract_features(loaded.model, images, labels, layer=layer, attack=attack.spec, eps=attack.eps,
                                    step_size=attack.step_size, batch_size=batch_size, device=torch_device,
                                    seed=seed, context=contexts[label], classes=classes, progress=bar,
                                    processes=processes)
        if bar is not None:
            bar.close()
        sources.append(FeatureSource(label, features, classes, phrases, {
            "path": str(loaded.path), "sha256": loaded.sha256, "arch": loaded.arch, "dataset": dataset_name,
            "split": split, "n_images": len(labels), "sample": "whole split" if len(labels) == len(data) else "seeded random sample", "layer": layer, "attack": attack.describe(),
        }))
    sources += files
    _check_same_classes(sources)
    return sources


def class_vectors_for(sources: list[FeatureSource], embedding: str):
    """The class word vectors of ``embedding`` for the sources' (common) classes."""
    from semprobe.words import class_vectors

    first = sources[0]
    return class_vectors(embedding, first.classes, first.phrases)
