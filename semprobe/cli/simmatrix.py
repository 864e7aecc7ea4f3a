"""``semprobe simmatrix``: class-similarity matrices of features and of word vectors (SCARL Fig. 2)."""

from __future__ import annotations

import click

from semprobe.cli.common import at_most, command, common_run_options, out_options
from semprobe.cli.feature_sources import feature_source_options
from semprobe.options import MAX_HALF_SPLITS, MAX_RESAMPLES

ADVERSARIAL_SUFFIX = " (adversarial)"


@command(name="simmatrix")
@feature_source_options(default_n_help="default: the whole split", attack_default="pgd")
@click.option("--embedding", "embeddings", multiple=True, default=("glove",), show_default=True,
              help="Word vectors of the class names; repeat to compare several (glove, clip:MODEL[:PRETRAINED], "
                   "file:PATH.npy, ...).")
@click.option("--adversarial", is_flag=True,
              help="Also the class means of adversarial features (attack set by --attack/--eps/--steps).")
@click.option("--centre", is_flag=True, help="Subtract the mean of the class means before normalizing.")
@click.option("--split-half", is_flag=True,
              help="Cross-validated similarity: inner products between class means of disjoint halves "
                   "(unbiased when classes have few images).")
@click.option("--n-splits", type=click.IntRange(min=1), default=10, show_default=True,
              callback=at_most(MAX_HALF_SPLITS, "splits"),
              help=f"Random half splits averaged with --split-half; at most {MAX_HALF_SPLITS:,}.")
@click.option("--n-boot", type=click.IntRange(min=0), default=1000, show_default=True,
              callback=at_most(MAX_RESAMPLES, "replicates"),
              help=f"Bootstrap replicates of the RSA (images resampled within class); 0 skips; at most "
                   f"{MAX_RESAMPLES:,}.")
@click.option("--n-perm", type=click.IntRange(min=0), default=1000, show_default=True,
              callback=at_most(MAX_RESAMPLES, "permutations"),
              help=f"Class relabellings of the RSA null (all K! when K <= 8); 0 skips; at most {MAX_RESAMPLES:,}.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the bootstrap interval.")
@common_run_options
@out_options
def simmatrix_command(ckpt, arch, num_classes, in_channels, normalization, features_files, dataset, split, layer,
                      n_images, attack_name, eps_text, norm_text, steps, step_text, aliases, embeddings, adversarial, centre,
                      split_half, n_splits, n_boot, n_perm, confidence, data_dir, batch_size, seed, device, quiet,
                      out, overwrite) -> None:
    """Class-similarity matrices of features and of word vectors, and how well they agree.

    The feature matrix holds the inner products of the L2-normalized class-mean features
    (SCARL Fig. 2 a, b); the word matrix the cosines of each embedding's class vectors
    (Fig. 2 c, d). RSA is the Spearman correlation of their off-diagonal entries, with a
    bootstrap CI and the p-value of the null that permutes which class is which. Writes
    simmatrix.json, simmatrix.png and simmatrix.pdf (one colour scale, one class order,
    plus a scatter of feature against word entries).

    \b
    Examples:
      semprobe simmatrix --ckpt runs/trades/best.pt --ckpt runs/scarl/best.pt --n 2000 --out sim/
      semprobe simmatrix --ckpt best.pt --embedding glove --embedding clip:ViT-B-32:openai --adversarial --out sim/
      semprobe simmatrix --features feats.npz --dataset fashion-mnist --split-half --out sim/
    """
    from semprobe.cli.feature_sources import (
        AttackSettings, class_vectors_for, collect_feature_sources, parse_attack_settings,
    )
    from semprobe.errors import ConfigError
    from semprobe.cli import job
    from semprobe.options import parse_norm
    from semprobe.cli.outputs import OutputDir, run_metadata
    from semprobe.plots.semantic import similarity_grid
    from semprobe.stats import similarity_report

    if len(set(embeddings)) < len(embeddings):
        raise ConfigError("an --embedding is given twice")
    parse_norm(norm_text)  # a bad --norm is refused even without --adversarial
    attack = (parse_attack_settings(attack_name, eps_text, steps, step_text, norm_text) if adversarial
              else AttackSettings(None, 0.0, None))
    if adversarial and attack.spec is None:
        raise ConfigError("--adversarial needs an attack; --attack none gives natural features only")
    output = (OutputDir(out, overwrite=overwrite, expected=["simmatrix.json", "simmatrix.png", "simmatrix.pdf"])
              if job.is_main() else None)
    sources = collect_feature_sources(
        ckpt=ckpt, arch=arch, num_classes=num_classes, in_channels=in_channels, normalization=normalization,
        features_files=features_files, dataset=dataset, split=split, layer=layer, n_images=n_images, attack=attack,
        aliases=aliases, data_dir=data_dir, batch_size=batch_size, seed=seed, device=device, quiet=quiet)
    if not job.main_continues():
        return
    vectors = {embedding: class_vectors_for(sources, embedding) for embedding in embeddings}

    feature_sets = {}
    for source in sources:
        feature_sets[source.label] = (source, source.features.features)
        if adversarial:
            if not source.has_adversarial:
                raise ConfigError(f"--adversarial: {source.label} has no adversarial features (features_adv)")
            feature_sets[source.label + ADVERSARIAL_SUFFIX] = (source, source.features.features_adv)

    reports, results, rows, warnings = {}, {}, [], []
    for label, (source, matrix) in feature_sets.items():
        reports[label], results[label] = {}, {"source": source.provenance, "embeddings": {}}
        for embedding, words in vectors.items():
            report = similarity_report(matrix, source.features.labels, words.vectors, centre=centre,
                                       split_half=split_half, n_splits=n_splits, n_boot=n_boot, n_perm=n_perm,
                                       confidence=confidence, random_state=seed)
            reports[label][embedding] = report
            results[label]["embeddings"][embedding] = report.to_dict()
            ci = f"[{report.rsa_ci[0]:.2f}, {report.rsa_ci[1]:.2f}]" if report.rsa_ci is not None else "-"
            p = f"{report.relabel.p_value:.3g}" if report.relabel is not None else "-"
            value = "undefined (see warning)" if report.rsa_note is not None else f"{report.rsa:.3f} {ci}"
            rows.append([label, embedding, sum(report.class_counts), value, p])
            warnings += [f"{label} vs {embedding}: {w}" for w in report.warnings]

    from semprobe.cli.tables import format_table

    click.echo(format_table(["features", "embedding", "images", "RSA (Spearman) [CI]", "p relabel"], rows))
    for warning in dict.fromkeys(warnings):
        click.echo(f"warning: {warning}")
    figure = similarity_grid(reports, sources[0].classes)
    document = {
        "metadata": run_metadata(embeddings=list(embeddings), adversarial=adversarial, attack=attack.describe(),
                                 centre=centre, split_half=split_half, n_splits=n_splits, n_boot=n_boot,
                                 n_perm=n_perm, confidence=confidence, seed=seed, layer=layer,
                                 processes=job.processes().world_size),
        "classes": sources[0].classes,
        "phrases": {embedding: list(words.phrases) for embedding, words in vectors.items()},
        "features": results,
    }
    with output:
        output.write_json("simmatrix.json", document)
        output.save_figure("simmatrix", figure)
    click.echo(f"wrote {', '.join(output.names)} to {out}")
