"""``semprobe alpha-curve``: PGD-LS attack success against alpha (SPAT Fig. 4, Tables 1-2)."""

from __future__ import annotations

import click

from semprobe.cli.common import (
    at_most, check_model_fits_data, checkpoint_options, common_dataset, command, common_run_options, load_checkpoints, load_images,
    out_options, progress_factory,
)
from semprobe.options import MAX_ALPHAS, MAX_ATTACK_STEPS, norm_option


@command(name="alpha-curve")
@checkpoint_options(multiple=True)
@click.option("--dataset", default=None, help="Dataset (default: the one the checkpoint records).")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--alphas", "alpha_texts", multiple=True, default=("0:1:0.1",), show_default=True,
              help=f"START:STOP:STEP or a comma list, each alpha in [0,1]; repeat to combine "
                   f"(e.g. --alphas 0:1:0.1 --alphas 1e-5,1e-4,1e-3); at most {MAX_ALPHAS:,} alphas in all.")
@click.option("--eps", "eps_text", default="8/255", show_default=True,
              help="Attack radius in [0,1] pixels (L-inf); with --norm L2 an L2 radius, e.g. 0.5.")
@norm_option()
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True,
              callback=at_most(MAX_ATTACK_STEPS, "steps"), help=f"PGD steps; at most {MAX_ATTACK_STEPS:,}.")
@click.option("--step-size", "step_text", default="eps/10", show_default=True,
              help="PGD step size: a number or relative to eps (SPAT evaluates with eps/10).")
@click.option("--ls-parametrization", type=click.Choice(["spat", "torch"]), default="spat", show_default=True,
              help="spat: true class 1-alpha, others alpha/(K-1) (SPAT eq. 9); torch: alpha/K + (1-alpha) on the "
                   "true class.")
@click.option("--n", "--n-images", "n_images", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Seeded random sample of N images of the split (under torchrun spell it --n-images).")
@common_run_options
@out_options
def alpha_curve_command(ckpt, arch, num_classes, in_channels, normalization, dataset, split, alpha_texts, eps_text,
                        norm_text, steps, step_text, ls_parametrization, n_images, data_dir, batch_size, seed, device, quiet,
                        out, overwrite) -> None:
    """Attack success of PGD-LS at every alpha, with PGD-CE and PGD-KL as references.

    All attacks start from the same random start per image. Success is given over all
    images (1 - robust accuracy) and over the images the model classifies correctly;
    per checkpoint, the alpha at which PGD-LS matches PGD-KL's robust accuracy is found
    by linear interpolation. Writes alpha_curve.json, alpha_curve.png and alpha_curve.pdf.

    \b
    Examples:
      semprobe alpha-curve --ckpt natural.pt --ckpt pgd_at.pt --alphas 0:1:0.1 --eps 8/255 --out alpha/
      semprobe alpha-curve --ckpt pgd_at.pt --alphas 0:1:0.1 --alphas 1e-5,5e-5,1e-4,1e-3,1e-2 --n 500 --out a/
    """
    from semprobe.robustness.alpha_curves import alpha_curve
    from semprobe.plots.curves import alpha_curve_figure
    from semprobe.errors import ConfigError
    from semprobe.options import parse_alphas, parse_eps, parse_norm, parse_step_size, seed_everything
    from semprobe.cli import job
    from semprobe.cli.outputs import OutputDir, run_metadata
    from semprobe.cli.tables import format_table

    alphas = sorted(set(a for text in alpha_texts for a in parse_alphas(text)))
    norm = parse_norm(norm_text)
    eps = parse_eps(eps_text, norm)
    if eps == 0:
        raise ConfigError("eps must be > 0 for an attack")
    step_size = parse_step_size(step_text, eps)
    torch_device = job.device_of(device)
    processes = job.processes()
    output = (OutputDir(out, overwrite=overwrite, expected=[f"alpha_curve.{e}" for e in ("json", "png", "pdf")])
              if processes.is_main else None)
    checkpoints = load_checkpoints(ckpt, arch, num_classes, in_channels, normalization, device=torch_device)
    dataset_name = common_dataset(checkpoints, dataset)
    data, images, labels, _ = load_images(dataset_name, split, n_images, seed, data_dir)
    for label, loaded in checkpoints.items():
        check_model_fits_data(label, loaded, data)

    processes.agree()  # every process is ready: a mistake in any of them stops all before the work
    seed_everything(seed)
    factory = progress_factory(quiet)
    curves = []
    for label, loaded in checkpoints.items():
        bar = factory(label, len(labels)) if factory else None
        curves.append(alpha_curve(loaded.model, images, labels, alphas, eps=eps, step_size=step_size, steps=steps,
                                  batch_size=batch_size, device=torch_device, seed=seed, label=label,
                                  ls_parametrization=ls_parametrization, progress=bar, norm=norm,
                                  processes=processes))
        if bar is not None:
            bar.close()
    if not job.main_continues():
        return

    rows = []
    for curve in curves:
        rows += [[curve.label, f"{a:g}", r.robust_accuracy, r.success_all, r.success_correct]
                 for a, r in zip(curve.alphas, curve.ls)]
        rows += [[curve.label, name, r.robust_accuracy, r.success_all, r.success_correct]
                 for name, r in (("PGD-CE", curve.ce), ("PGD-KL", curve.kl))]
    click.echo(f"{dataset_name} {split}, {len(labels)} images, {norm} eps {eps:.5g}, PGD-{steps}, step {step_size:.5g}")
    click.echo(format_table(["checkpoint", "alpha", "robust acc %", "success % (all)", "success % (correct)"], rows))
    for curve in curves:
        match = curve.matching_alpha()
        found = f"{match['alpha']:.4g}" if match["alpha"] is not None else f"none ({match['reason']})"
        click.echo(f"{curve.label}: alpha matching PGD-KL = {found}")

    report = {
        "metadata": run_metadata(dataset=dataset_name, split=split, n=len(labels), alphas=alphas, norm=norm, eps=eps,
                                 steps=steps, step_size=step_size, ls_parametrization=ls_parametrization,
                                 batch_size=batch_size, seed=seed, device=str(torch_device),
                                 processes=processes.world_size),
        "success_definitions": {
            "success_all": "percent of all evaluated images misclassified after the attack (1 - robust accuracy)",
            "success_correct": "percent of the correctly classified images that the attack makes misclassified",
        },
        "checkpoints": {label: {"path": str(c.path), "sha256": c.sha256} for label, c in checkpoints.items()},
        "curves": [c.to_dict() for c in curves],
    }
    with output:
        output.write_json("alpha_curve.json", report)
        output.save_figure("alpha_curve", alpha_curve_figure(
            curves, title=f"{dataset_name}: PGD-LS success vs alpha ({norm} eps {eps:.4g}, {steps} steps)"))
    click.echo(f"wrote {', '.join(output.names)} to {out}")
