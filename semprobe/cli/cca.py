"""``semprobe cca``: CCA between image features and their classes' word vectors (SCARL Fig. 1, Fig. 5)."""

from __future__ import annotations

import click

from semprobe.cli.common import at_most, command, common_run_options, out_options
from semprobe.cli.feature_sources import feature_source_options
from semprobe.options import MAX_RESAMPLES

COLUMNS = ("natural", "adversarial")
PROJECTED = "adversarial, natural weights"


def parse_ridge_option(text: str):
    """``--ridge``: ``auto`` (Ledoit-Wolf on the image side), ``none``, ``C`` or ``CX,CY`` in [0, 1]."""
    from semprobe.errors import ConfigError

    def side(value: str):
        value = value.strip().lower()
        if value == "auto":
            return "auto"
        if value in ("none", "0"):
            return None
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not 0.0 <= number <= 1.0:
            raise ConfigError(f"--ridge takes auto, none or a number in [0, 1] (or X,Y for the two sides), got {text!r}")
        return number

    parts = text.split(",")
    if len(parts) == 1:
        return (side(parts[0]), None) if parts[0].strip().lower() == "auto" else (side(parts[0]), side(parts[0]))
    if len(parts) == 2:
        return side(parts[0]), side(parts[1])
    raise ConfigError(f"--ridge takes one value or two (image side, word side), got {text!r}")


def _summary_row(label: str, column: str, report) -> list:
    in_sample, held_out = report.in_sample, report.held_out
    ci = f"[{held_out.ci[0]:.2f}, {held_out.ci[1]:.2f}]" if held_out.ci is not None else "-"

    def p(test) -> str:
        return "-" if test is None else f"{test.p_value:.3g}"

    return [label, column, in_sample.diagnostics.n, f"{in_sample.r:.3f}", f"{in_sample.diagnostics.chance_level:.3f}",
            f"{held_out.r:.3f} {ci}", p(held_out.pair_shuffle), p(held_out.relabel)]


@command(name="cca")
@feature_source_options(default_n_help="default: --n-pairs images")
@click.option("--embedding", default="glove", show_default=True,
              help="Word vectors of the class names: glove, glove:PATH, clip:MODEL[:PRETRAINED], file:PATH.npy, ...")
@click.option("--n-pairs", type=click.IntRange(min=2), default=500, show_default=True,
              help="Image/word pairs sampled (stratified by class) for the CCA; SCARL uses 500.")
@click.option("--held-out-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Fraction of the pairs held out to compute the held-out r.")
@click.option("--n-boot", type=click.IntRange(min=0), default=1000, show_default=True,
              callback=at_most(MAX_RESAMPLES, "replicates"),
              help=f"Bootstrap replicates of the held-out r (images resampled within class); 0 skips; "
                   f"at most {MAX_RESAMPLES:,}.")
@click.option("--n-perm", type=click.IntRange(min=0), default=1000, show_default=True,
              callback=at_most(MAX_RESAMPLES, "permutations"),
              help=f"Permutations of each null (pair shuffle; class relabelling, all K! when K <= 8); 0 skips; "
                   f"at most {MAX_RESAMPLES:,}.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the bootstrap interval.")
@click.option("--ridge", "ridge_text", default="auto", show_default=True,
              help="Shrinkage of the held-out fit: auto (Ledoit-Wolf, image side), none, C, or CX,CY.")
@click.option("--pca", type=click.IntRange(min=1), default=None,
              help="Keep this many principal components of each side before the held-out fit (SVCCA style); "
                   "more than a side has features keeps them all, with a note.")
@click.option("--method", type=click.Choice(["svd", "cov", "cholesky"]), default="svd", show_default=True,
              help="Whitening of the closed form: svd (most accurate), cov, cholesky (fastest, no --pca).")
@click.option("--project-adversarial", is_flag=True,
              help="Also draw the adversarial features projected with the weights fitted on the natural ones.")
@common_run_options
@out_options
def cca_command(ckpt, arch, num_classes, in_channels, normalization, features_files, dataset, split, layer, n_images,
                attack_name, eps_text, norm_text, steps, step_text, aliases, embedding, n_pairs, held_out_fraction, n_boot,
                n_perm, confidence, ridge_text, pca, method, project_adversarial, data_dir, batch_size, seed, device,
                quiet, out, overwrite) -> None:
    """CCA of image features (natural and adversarial) against their classes' word vectors.

    For each checkpoint or features file and for natural and adversarial images: SCARL's
    statistic (the first canonical correlation of --n-pairs image/word pairs, in sample)
    and beside it what a reviewer asks for: the random-matrix chance level, the held-out r
    (fit on part of the pairs, correlate on the rest) with a bootstrap CI, and two
    permutation nulls: shuffling the image/word pairing, and permuting which word belongs
    to which class (the one that tests semantics). Diagnostics warn when n <= rank_x +
    rank_y (in-sample r is then 1 whatever the data) and when the word side merely spans
    the labels (then CCA measures class separability, not semantics). The natural and
    adversarial features of a checkpoint come from the same images and the same pairs.
    Writes cca.json (every setting and number), cca.png and cca.pdf (SCARL Fig. 1 layout).

    \b
    Examples:
      semprobe cca --ckpt runs/trades/best.pt --ckpt runs/scarl/best.pt --eps 0.1 --out cca/
      semprobe cca --ckpt best.pt --dataset cifar10 --embedding clip:ViT-B-32:openai --n-pairs 500 --out cca/
      semprobe cca --features feats.npz --n-pairs 1000 --n-perm 200 --out cca/
    """
    from semprobe.cli.feature_sources import class_vectors_for, collect_feature_sources, parse_attack_settings
    from semprobe.errors import ConfigError
    from semprobe.cli import job
    from semprobe.cli.outputs import OutputDir, run_metadata

    ridge = parse_ridge_option(ridge_text)
    if pca is not None and method == "cholesky":
        raise ConfigError("--pca needs --method svd or cov (the Cholesky factor gives no principal components)")
    attack = parse_attack_settings(attack_name, eps_text, steps, step_text, norm_text)
    output = OutputDir(out, overwrite=overwrite, expected=["cca.json", "cca.png", "cca.pdf"]) if job.is_main() else None
    sources = collect_feature_sources(
        ckpt=ckpt, arch=arch, num_classes=num_classes, in_channels=in_channels, normalization=normalization,
        features_files=features_files, dataset=dataset, split=split, layer=layer, n_images=n_images, attack=attack,
        aliases=aliases, data_dir=data_dir, batch_size=batch_size, seed=seed, device=device, quiet=quiet,
        min_images=n_pairs)
    if not job.main_continues():
        return
    for source in sources:
        if n_pairs > source.features.n:
            raise ConfigError(f"--n-pairs {n_pairs} is larger than the {source.features.n} images of {source.label}")
    vectors = class_vectors_for(sources, embedding)
    reports, results, rows, warnings = _reports(sources, vectors.vectors, n_pairs, held_out_fraction, n_boot, n_perm,
                                                confidence, ridge, pca, method, seed, project_adversarial)
    _print_summary(rows, warnings, sources)

    from semprobe.plots.semantic import cca_grid

    figure = cca_grid(reports, sources[0].classes, random_state=seed)
    document = {
        "metadata": run_metadata(embedding=embedding, n_pairs=n_pairs, held_out_fraction=held_out_fraction,
                                 n_boot=n_boot, n_perm=n_perm, confidence=confidence, ridge=list(ridge), pca=pca,
                                 method=method, seed=seed, layer=layer, attack=attack.describe(),
                                 project_adversarial=project_adversarial, processes=job.processes().world_size),
        "classes": sources[0].classes,
        "phrases": list(vectors.phrases),
        "sources": results,
    }
    with output:
        output.write_json("cca.json", document)
        output.save_figure("cca", figure)
    click.echo(f"wrote {', '.join(output.names)} to {out}")


def _reports(sources, class_vectors, n_pairs, held_out_fraction, n_boot, n_perm, confidence, ridge, pca, method, seed,
             project_adversarial):
    """Every source's CCA reports: ``({label: {column: report}}, JSON results, table rows, warnings)``."""
    from semprobe.stats import cca_report

    reports, results, rows, warnings = {}, {}, [], []
    for source in sources:
        features = source.features
        columns = {"natural": features.features}
        if features.features_adv is not None:
            columns["adversarial"] = features.features_adv
        reports[source.label], entry = {}, {"source": source.provenance, "n_images": features.n, "columns": {}}
        for column, matrix in columns.items():
            report = cca_report(matrix, features.labels, class_vectors, n_pairs=n_pairs,
                                held_out_fraction=held_out_fraction, n_boot=n_boot, n_perm=n_perm,
                                confidence=confidence, ridge=ridge, pca=pca, method=method, random_state=seed)
            reports[source.label][column] = report
            entry["columns"][column] = report.to_dict()
            rows.append(_summary_row(source.label, column, report))
            warnings += [(f"{source.label} {column}", w) for w in report.warnings]
        if project_adversarial and features.features_adv is not None:
            natural = reports[source.label]["natural"]
            projected = natural.project(features.features_adv[natural.test], features.labels[natural.test],
                                        "adversarial test images, weights fitted on natural training pairs")
            reports[source.label][PROJECTED] = projected
            entry["columns"][PROJECTED] = projected.to_dict()
        elif project_adversarial:
            warnings.append((source.label, "no adversarial features, nothing to project"))
        results[source.label] = entry
    return reports, results, rows, warnings


def _print_summary(rows, warnings, sources) -> None:
    from semprobe.cli.tables import format_table

    click.echo(format_table(["source", "features", "n pairs", "r in sample", "chance", "held-out r [CI]",
                             "p pair-shuffle", "p relabel"], rows))
    for source in sources:
        if not source.has_adversarial:
            click.echo(f"note: {source.label} has no adversarial features (natural only)")
    for message, places in _group_warnings(warnings).items():
        click.echo(f"warning ({'; '.join(places)}): {message}")


def _group_warnings(warnings) -> dict:
    """``{message: [where, ...]}``: each distinct warning once, with every fit it concerns."""
    grouped: dict = {}
    for where, text in warnings:
        fit, separator, message = text.partition(" fit: ")
        if separator:
            where, text = f"{where} {fit}", message
        grouped.setdefault(text, []).append(where)
    return grouped
