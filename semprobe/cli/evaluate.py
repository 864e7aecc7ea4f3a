"""``semprobe eval``: accuracy under attacks (SCARL Table 1 and 3) and robustness curves (Fig. 4 b, c)."""

from __future__ import annotations

import csv
import io

import click

from semprobe.cli.common import (
    attack_contexts, check_model_fits_data, common_dataset, checkpoint_options, command, common_run_options, load_checkpoints, load_images,
    out_options, progress_factory,
)
from semprobe.options import MAX_ATTACK_STEPS, norm_option

DEFAULT_ATTACKS = "natural,fgsm,pgd20,cw30"


def _cell(result) -> str:
    return f"{result.accuracy:.2f} [{result.ci95[0]:.1f}, {result.ci95[1]:.1f}]"


def results_table(rows: dict, attack_names: list[str], markdown: bool = False) -> str:
    """Checkpoints x attacks, each cell 'accuracy [95% CI]' in percent."""
    from semprobe.cli.tables import format_table

    body = [[label] + [_cell(r) for r in results] for label, results in rows.items()]
    return format_table(["checkpoint"] + attack_names, body, markdown=markdown)


def per_class_table(results, attack_names: list[str], classes: list[str]) -> str:
    """Classes x attacks accuracy (%) as a markdown table."""
    from semprobe.cli.tables import format_table

    body = [[name] + ["-" if r.per_class[k] is None else f"{r.per_class[k]:.1f}" for r in results]
            for k, name in enumerate(classes)]
    return format_table(["class"] + attack_names, body, markdown=True)


def results_csv(rows: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["checkpoint", "attack", "n", "correct", "accuracy", "ci95_low", "ci95_high", "seconds"])
    for label, results in rows.items():
        for r in results:
            writer.writerow([label, r.attack["name"], r.n, r.correct, f"{r.accuracy:.4f}", f"{r.ci95[0]:.4f}",
                             f"{r.ci95[1]:.4f}", f"{r.seconds:.2f}"])
    return buffer.getvalue()


def check_attacks_have_budget(eps: float, specs, step_counts) -> None:
    """Refuse ``--eps 0`` with an attack or a steps sweep: there is no budget to attack with."""
    from semprobe.errors import ConfigError

    attacked = [s.name for s in specs if s.kind != "natural"] + (["--sweep-steps"] if step_counts else [])
    if eps == 0 and attacked:
        raise ConfigError(f"--eps 0 leaves {', '.join(attacked)} no budget to attack with; give --eps > 0 "
                          "(or --attacks natural for clean accuracy)")


@command(name="eval")
@checkpoint_options(multiple=True)
@click.option("--dataset", default=None, help="Dataset to evaluate on (default: the one the checkpoint records).")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--attacks", "attack_names", default=DEFAULT_ATTACKS, show_default=True,
              help="Comma-separated: natural, fgsm, pgdN, cwN, pgd-ce, pgd-kl, pgd-info, pgd-ls:ALPHA, "
                   "squareN[xR] (Square alone, N queries, R restarts; square = 5,000 x 1), aa, "
                   f"apgd-ce, apgd-t, fab-t; N at most {MAX_ATTACK_STEPS:,} steps.")
@click.option("--eps", "eps_text", default="8/255", show_default=True,
              help="Attack radius in [0,1] pixels: 8/255, 0.1 ... (L-inf); with --norm L2 an L2 radius, e.g. 0.5.")
@norm_option()
@click.option("--step-size", "step_text", default="eps/4", show_default=True,
              help="PGD step size: a number, or relative to eps (eps/4, eps/10, 2.5*eps).")
@click.option("--n", "--n-images", "n_images", type=click.IntRange(min=1), default=None,
              help="Evaluate a seeded random sample of N images (default: the whole split); under torchrun, "
                   "whose own options take --n, spell it --n-images.")
@click.option("--sweep-eps", default=None,
              help="Also sweep PGD-10 accuracy over these eps (e.g. 0,2/255,4/255,8/255,16/255): SCARL Fig. 4 b.")
@click.option("--sweep-steps", default=None,
              help="Also sweep PGD accuracy over these step counts at --eps (e.g. 1,5,10,20,50,100,200,500), "
                   f"one run of the largest, at most {MAX_ATTACK_STEPS:,} steps: SCARL Fig. 4 c.")
@click.option("--info-tau", type=float, default=None, help="tau of L_info for pgd-info (default: the checkpoint's).")
@click.option("--info-c", type=float, default=None, help="c of L_info for pgd-info (default: the checkpoint's).")
@common_run_options
@out_options
def evaluate_command(ckpt, arch, num_classes, in_channels, normalization, dataset, split, attack_names, eps_text,
                     norm_text, step_text, n_images, sweep_eps, sweep_steps, info_tau, info_c, data_dir, batch_size, seed,
                     device, quiet, out, overwrite) -> None:
    """Accuracy of checkpoints under attacks: the rows of SCARL Table 1 (and Table 3).

    Each accuracy is in percent over the images evaluated, with a 95% Wilson interval;
    an image counts as robust when both it and its attacked version are classified
    correctly. Writes eval.json (with per-class accuracy and every setting), eval.csv and
    eval.md, plus the sweeps' JSON and PNG/PDF when asked.

    \b
    Examples:
      semprobe eval --ckpt runs/trades/best.pt --attacks natural,fgsm,pgd20,cw30,aa --eps 0.1 --n 1000 --out eval/
      semprobe eval --ckpt a.pt --ckpt b.pt --dataset cifar10 --attacks pgd-ce,pgd-kl,pgd-info --out table3/
      semprobe eval --ckpt a.pt --attacks natural,pgd20,apgd-ce --norm L2 --eps 0.5 --out eval_l2/
      semprobe eval --ckpt a.pt --attacks natural --sweep-eps 0,2/255,4/255,8/255 --sweep-steps 1,10,100 --out fig4/
    """
    from semprobe.attacks.specs import parse_attack_list
    from semprobe.robustness.curves import accuracy_vs_eps, accuracy_vs_steps
    from semprobe.errors import ConfigError
    from semprobe.robustness.accuracy import evaluate
    from semprobe.options import parse_eps, parse_int_list, parse_norm, parse_step_size, seed_everything
    from semprobe.cli import job
    from semprobe.cli.outputs import OutputDir, run_metadata

    norm = parse_norm(norm_text)
    eps = parse_eps(eps_text, norm)
    specs = parse_attack_list(attack_names, norm=norm)
    step_counts = parse_int_list(sweep_steps, "--sweep-steps", maximum=MAX_ATTACK_STEPS, unit="steps") if sweep_steps else []
    check_attacks_have_budget(eps, specs, step_counts)
    step_size = parse_step_size(step_text, eps) if eps > 0 else None
    eps_values = [parse_eps(v, norm) for v in sweep_eps.split(",") if v.strip()] if sweep_eps else []
    if sweep_eps is not None and not eps_values:
        raise ConfigError("--sweep-eps names no eps")
    torch_device = job.device_of(device)
    processes = job.processes()
    expected = ["eval.json", "eval.csv", "eval.md"]
    expected += [f"accuracy_vs_eps.{e}" for e in ("json", "png", "pdf")] if eps_values else []
    expected += [f"accuracy_vs_steps.{e}" for e in ("json", "png", "pdf")] if step_counts else []
    output = OutputDir(out, overwrite=overwrite, expected=expected) if processes.is_main else None

    checkpoints = load_checkpoints(ckpt, arch, num_classes, in_channels, normalization, device=torch_device)
    dataset_name = common_dataset(checkpoints, dataset)
    contexts = attack_contexts(checkpoints, specs, info_tau, info_c)
    data, images, labels, indices = load_images(dataset_name, split, n_images, seed, data_dir)
    for label, loaded in checkpoints.items():
        check_model_fits_data(label, loaded, data)

    processes.agree()  # every process is ready: a mistake in any of them stops all before the work
    seed_everything(seed)
    progress = progress_factory(quiet)
    rows, eps_curves, step_curves = {}, [], []
    for label, loaded in checkpoints.items():
        rows[label] = evaluate(loaded.model, images, labels, specs, eps=eps, step_size=step_size,
                               batch_size=batch_size, device=torch_device, seed=seed,
                               num_classes=data.info.num_classes, context=contexts[label], progress_factory=progress,
                               processes=processes)
        if eps_values:
            eps_curves.append(accuracy_vs_eps(loaded.model, images, labels, eps_values, steps=10,
                                              batch_size=batch_size, device=torch_device, seed=seed, label=label,
                                              norm=norm, processes=processes))
        if step_counts:
            step_curves.append(accuracy_vs_steps(loaded.model, images, labels, step_counts, eps=eps,
                                                 step_size=step_size, batch_size=batch_size, device=torch_device,
                                                 seed=seed, label=label, norm=norm, processes=processes))
    if not job.main_continues():
        return

    attack_columns = [s.name for s in specs]
    settings = dict(dataset=dataset_name, split=split, n=len(labels), norm=norm, eps=eps, step_size=step_size,
                    attacks=attack_columns, batch_size=batch_size, seed=seed, device=str(torch_device),
                    processes=processes.world_size,
                    sample="all" if n_images is None else f"seeded random sample of {len(labels)}")
    report = {
        "metadata": run_metadata(**settings),
        "checkpoints": {
            label: {"path": str(loaded.path), "sha256": loaded.sha256, "arch": loaded.arch,
                    "classes": list(data.classes), "results": [r.to_dict() for r in rows[label]]}
            for label, loaded in checkpoints.items()
        },
    }
    table = results_table(rows, attack_columns)
    click.echo(f"{dataset_name} {split}, {len(labels)} images, {norm} eps {eps:.5g}; accuracy % [95% CI]")
    click.echo(table)

    markdown = [f"# Robust accuracy on {dataset_name} ({split}, {len(labels)} images, {norm} eps = {eps:.5g})", "",
                "Accuracy (%) with its 95% Wilson interval; an image is robust when it and its attacked version "
                "are both classified correctly.", "", results_table(rows, attack_columns, markdown=True), ""]
    for label in rows:
        markdown += [f"## {label}: accuracy per class (%)", "", per_class_table(rows[label], attack_columns,
                                                                                 list(data.classes)), ""]
    warned = [(label, r.attack["name"], message) for label in rows for r in rows[label] for message in r.warnings]
    for label, attack, message in warned:
        click.echo(f"warning: {label}, {attack}, {message}", err=True)
    if warned:
        markdown += ["## Warnings of the attacks themselves", "",
                     "AutoAttack's reliability checks (Croce & Hein's flags): Square, a black-box attack, succeeding "
                     "where the gradient attacks failed is a sign of gradient masking, so PGD-based accuracies of that "
                     "model may be too high.", ""]
        markdown += [f"- {label}, {attack}, {message}" for label, attack, message in warned] + [""]
    with output:
        output.write_json("eval.json", report)
        output.write_text("eval.csv", results_csv(rows))
        output.write_text("eval.md", "\n".join(markdown))
        for stem, curves in (("accuracy_vs_eps", eps_curves), ("accuracy_vs_steps", step_curves)):
            if not curves:
                continue
            from semprobe.plots.curves import curves_figure

            output.write_json(f"{stem}.json", {"metadata": report["metadata"], "curves": [c.to_dict() for c in curves]})
            title = (f"PGD-10 accuracy vs {norm} eps" if stem == "accuracy_vs_eps"
                     else f"PGD accuracy vs steps ({norm} eps {eps:.4g})")
            output.save_figure(stem, curves_figure(curves, title=f"{dataset_name}: {title}"))
    click.echo(f"wrote {', '.join(output.names)} to {out}")
