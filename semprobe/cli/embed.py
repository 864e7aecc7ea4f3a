"""``semprobe embed``: class word vectors of a dataset and their cosine matrix."""

from __future__ import annotations

from pathlib import Path

import click

from semprobe import __version__
from semprobe.cli.common import command, download_option
from semprobe.errors import SemprobeError


def _print_cosine_matrix(vectors) -> None:
    import numpy as np

    from semprobe.cli.tables import format_table

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


@command()
@click.option("--dataset", required=True, help="Dataset whose class names are embedded (see the README's list).")
@click.option("--embedding", default="glove", show_default=True,
              help="Word-vector provider: glove, glove:PATH, clip:MODEL[:PRETRAINED], random[:DIM[:SEED]], "
                   "onehot, file:PATH.npy.")
@click.option("--aliases", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of 'class name = phrase' lines (or JSON) overriding the words looked up per class.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the dataset's files are (needed for tinyimagenet class names).")
@download_option
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

    from semprobe.cli.common import dataset_meta
    from semprobe.words import class_vectors

    meta = dataset_meta(dataset, data_dir=data_dir, aliases=aliases)
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


