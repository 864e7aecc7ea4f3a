"""The ``semprobe`` command line: a thin click layer over the library.

Each command parses its options, calls the library and writes its outputs. Heavy
packages (torch, gensim, open_clip, seaborn) are imported inside the commands, so
``semprobe --help`` answers at once. A user mistake (a :class:`SemprobeError` or a
click usage error) is printed as one line on stderr with exit code 2, no traceback,
and nothing is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from semprobe import __version__
from semprobe.errors import SemprobeError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
USER_ERROR_EXIT_CODE = 2


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="semprobe")
def cli() -> None:
    """semprobe: how much do a robust model's features carry the semantics of its class names?

    Diagnose image classifiers (CCA and class-similarity against word vectors, attack
    curves), evaluate their robustness, and regenerate the SCARL and SPAT papers'
    figures. Pixels are in [0,1]; every command writes JSON with the settings it used.

    \b
    Examples:
      semprobe embed --dataset fashion-mnist --embedding glove
      semprobe info --ckpt runs/scarl/best.pt
    """


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


def _format_mapping(mapping: dict) -> str:
    if not mapping:
        return "-"
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in mapping.items())


@cli.command(context_settings=CONTEXT_SETTINGS)
@checkpoint_options
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info(ckpt, arch, num_classes, in_channels, normalization, as_json) -> None:
    """Describe a checkpoint: arch, classes, dataset, normalization, heads, config, metrics.

    \b
    Examples:
      semprobe info --ckpt runs/scarl/best.pt
      semprobe info --ckpt trades_wrn.pt --arch wrn_34_10 --normalization none --json
    """
    from semprobe.checkpoint import load_checkpoint

    loaded = load_checkpoint(
        ckpt, arch=arch, num_classes=num_classes, in_channels=in_channels, normalization=normalization
    )
    summary = loaded.summary()
    summary["sha256"] = loaded.sha256
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    norm = summary["normalization"]
    heads = summary["heads"]
    words = summary["word_embedding"]
    rows = [
        ("checkpoint", summary["path"]),
        ("sha256", summary["sha256"]),
        ("format", summary["format"]),
        ("arch", f"{summary['arch']} {_format_mapping(summary['arch_kwargs']) if summary['arch_kwargs'] else ''}".strip()),
        ("parameters", f"{summary['parameters']:,}"),
        ("input", f"{summary['in_channels']} channels, pixels in [0,1]"),
        ("normalization", f"mean {norm['mean']} std {norm['std']}" if norm else "none"),
        ("classes", f"{summary['num_classes']}: " + ", ".join(summary["classes"]) if summary["classes"]
         else str(summary["num_classes"])),
        ("dataset", summary["dataset"] or "-"),
        ("heads", f"image {heads['image_dim']} -> {heads['out_dim']}, word {heads['word_dim']} -> {heads['out_dim']}"
         if heads else "none"),
        ("word vectors", f"{words['name']} ({words['dim']}-d)" if words else "none"),
        ("epoch", "-" if summary["epoch"] is None else str(summary["epoch"])),
        ("config", _format_mapping(summary["config"])),
        ("metrics", _format_mapping(summary["metrics"])),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


def _print_cosine_matrix(vectors) -> None:
    import numpy as np

    from semprobe.tables import format_table

    cosine = vectors.cosine_matrix()
    labels = [name if len(name) <= 14 else name[:13] + "." for name in vectors.classes]
    if len(labels) <= 20:
        click.echo(format_table([""] + labels, [[lab] + list(map(float, row)) for lab, row in zip(labels, cosine)]))
        return
    click.echo(f"cosine matrix is {len(labels)}x{len(labels)}; nearest classes by cosine:")
    masked = cosine - 2 * np.eye(len(labels))
    rows = [[name] + [f"{labels[j]} {cosine[i, j]:.2f}" for j in np.argsort(-masked[i])[:3]]
            for i, name in enumerate(labels)]
    click.echo(format_table(["class", "1st", "2nd", "3rd"], rows))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--dataset", required=True, help="Dataset whose class names are embedded (see the README's list).")
@click.option("--embedding", default="glove", show_default=True,
              help="Word-vector provider: glove, glove:PATH, clip:MODEL[:PRETRAINED], random[:DIM[:SEED]], "
                   "onehot, file:PATH.npy.")
@click.option("--aliases", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of 'class name = phrase' lines (or JSON) overriding the words looked up per class.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the dataset's files are (needed for tinyimagenet class names).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the K x d class-vector matrix to this .npy (plus a .json with classes and phrases).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def embed(dataset, embedding, aliases, data_dir, out, overwrite) -> None:
    """Class word vectors of a dataset, and their cosine matrix as a table.

    \b
    Examples:
      semprobe embed --dataset fashion-mnist --embedding glove
      semprobe embed --dataset cifar10 --embedding clip:ViT-B-32:openai --out clip_cifar10.npy
    """
    from semprobe.io import atomic_path, check_writable, write_json_atomic

    if out is not None:
        if out.suffix != ".npy":
            raise SemprobeError(f"--out must end in .npy, got {out}")
        check_writable(out, overwrite)
        check_writable(out.with_suffix(".json"), overwrite)

    import numpy as np

    from semprobe.data import dataset_info
    from semprobe.words import class_vectors

    meta = dataset_info(dataset, data_dir=data_dir, aliases=aliases)
    vectors = class_vectors(embedding, meta.classes, meta.phrases)

    click.echo(f"{dataset}: {len(meta.classes)} classes embedded with {embedding} "
               f"({vectors.vectors.shape[1]}-d vectors)")
    _print_cosine_matrix(vectors)
    if out is not None:
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, vectors.vectors)
        write_json_atomic(out.with_suffix(".json"), {
            "provider": embedding, "dataset": dataset, "classes": list(vectors.classes),
            "phrases": list(vectors.phrases), "shape": list(vectors.vectors.shape),
            "semprobe_version": __version__,
        })
        click.echo(f"wrote {out} and {out.with_suffix('.json')}")


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the click group, turning user errors into one line + exit 2."""
    try:
        code = cli.main(args=argv, prog_name="semprobe", standalone_mode=False)
    except SemprobeError as exc:
        click.echo(f"semprobe: error: {_one_line(exc)}", err=True)
        sys.exit(USER_ERROR_EXIT_CODE)
    except click.ClickException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        click.echo(f"semprobe: error: {_one_line(exc.format_message())}{hint}", err=True)
        sys.exit(USER_ERROR_EXIT_CODE)
    except click.Abort:
        click.echo("semprobe: aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
