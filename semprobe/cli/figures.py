"""``semprobe figures``: the papers' figures that the given checkpoints and runs allow, each with its JSON.

The figures and what each needs are the registry :data:`semprobe.paper.figures.FIGURES`
(see figures/README.md for the full map); this module parses the options, loads the
checkpoints, runs and images, and writes what the registry makes.
"""

from __future__ import annotations

from pathlib import Path

import click

from semprobe.cli.common import at_most, command, common_run_options, out_options
from semprobe.options import MAX_ALPHAS, MAX_ATTACK_STEPS, MAX_RESAMPLES
from semprobe.paper.figures import FIGURE_NAMES, ROLES


def _role_options(func):
    for role in reversed(ROLES):
        func = click.option(f"--{role}", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help=f"The {role} checkpoint.")(func)
    return func


def read_manifest(path: Path) -> dict:
    """A figures manifest (YAML): ``dataset``, ``eps``, ``checkpoints`` (role -> file) and ``runs``
    (folders), paths relative to the manifest's folder; every named file must exist."""
    import yaml

    from semprobe.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"manifest {path} does not exist")
    try:
        manifest = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"manifest {path} is not valid YAML ({' '.join(str(exc).split())})") from None
    allowed = {"dataset", "eps", "checkpoints", "runs"}
    if not isinstance(manifest, dict) or set(manifest) - allowed:
        raise ConfigError(f"manifest {path}: expected a mapping with keys {', '.join(sorted(allowed))}")
    checkpoints = manifest.get("checkpoints") or {}
    if not isinstance(checkpoints, dict) or set(checkpoints) - set(ROLES):
        raise ConfigError(f"manifest {path}: checkpoints maps roles ({', '.join(ROLES)}) to files")
    base = path.parent
    resolved = {role: base / str(file) for role, file in checkpoints.items()}
    runs = [base / str(folder) for folder in manifest.get("runs") or []]
    missing = [str(p) for p in resolved.values() if not p.is_file()] + [str(p) for p in runs if not p.is_dir()]
    if missing:
        raise ConfigError(f"manifest {path} names missing files: {', '.join(missing)}")
    return {"dataset": manifest.get("dataset"), "eps": manifest.get("eps"), "checkpoints": resolved, "runs": runs}


@command(name="figures")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML naming the checkpoints by role, the runs, dataset and eps (see figures/paper.yaml); "
                   "options given on the command line win.")
@_role_options
@click.option("--runs", "run_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A training run folder (metrics.jsonl, config.json); repeat for several.")
@click.option("--dataset", default=None, help="Dataset (default: the one the checkpoints record).")
@click.option("--n", "n_images", type=click.IntRange(min=20), default=1000, show_default=True,
              help="Test images for the similarity matrices and the curves (a seeded random sample).")
@click.option("--n-pairs", type=click.IntRange(min=20), default=500, show_default=True,
              help="Image/word pairs of the CCA figures.")
@click.option("--eps", "eps_text", default=None, help="L-inf budget of the attacks (default: the manifest's, else 8/255).")
@click.option("--eps-sweep", default="0,2/255,4/255,8/255,16/255", show_default=True,
              help="The eps of Fig. 4 b (--eps is always added).")
@click.option("--max-steps", type=click.IntRange(min=1), default=500, show_default=True,
              callback=at_most(MAX_ATTACK_STEPS, "steps"),
              help=f"Largest PGD step count of Fig. 4 c; at most {MAX_ATTACK_STEPS:,}.")
@click.option("--alphas", "alpha_text", default="0:1:0.1", show_default=True, help=f"The alphas of SPAT Fig. 4; at most {MAX_ALPHAS:,}.")
@click.option("--clip", "clip_spec", default=None,
              help="CLIP word vectors for Fig. 2 beside GloVe: clip:MODEL:PRETRAINED (a tag or a local weights file).")
@click.option("--only", "only_text", default=None,
              help="Make only these figures, a comma list of names (e.g. scarl_fig4b_eps,spat_fig2_examples).")
@click.option("--n-boot", type=click.IntRange(min=0), default=1000, show_default=True,
              callback=at_most(MAX_RESAMPLES, "replicates"),
              help=f"Bootstrap replicates of the CCA and RSA intervals; 0 skips; at most {MAX_RESAMPLES:,}.")
@click.option("--n-perm", type=click.IntRange(min=0), default=1000, show_default=True,
              callback=at_most(MAX_RESAMPLES, "permutations"),
              help=f"Permutations of the CCA and RSA nulls; 0 skips; at most {MAX_RESAMPLES:,}.")
@common_run_options
@out_options
def figures_command(manifest, natural, fgsm, robust, trades, scarl, run_dirs, dataset, n_images, n_pairs, eps_text, eps_sweep,
                    max_steps, alpha_text, clip_spec, only_text, n_boot, n_perm, data_dir, batch_size, seed, device, quiet, out,
                    overwrite) -> None:
    """The SCARL and SPAT figures that the given checkpoints and runs allow.

    Each figure is written as NAME.png, NAME.pdf and NAME.json (the numbers behind it);
    a figure whose inputs are missing is skipped with one line that says what it needs.
    Pass checkpoints by role (--natural, --fgsm, --robust for Madry AT, --trades, --scarl)
    and training runs with --runs.

    \b
    Examples:
      semprobe figures --natural runs/natural/best.pt --robust runs/pgd_at/best.pt --scarl runs/scarl/best.pt \\
          --trades runs/trades/best.pt --runs runs/trades --runs runs/scarl --eps 0.1 --out figures/demo
    """
    from semprobe.errors import ConfigError
    from semprobe.options import parse_alphas, parse_eps, resolve_device, seed_everything
    from semprobe.cli.outputs import OutputDir, run_metadata
    from semprobe.paper.figures import FigureInputs, make_figures
    from semprobe.robustness.run_metrics import read_run

    given = {role: path for role, path in zip(ROLES, (natural, fgsm, robust, trades, scarl)) if path is not None}
    if manifest is not None:
        listed = read_manifest(manifest)
        given = {**listed["checkpoints"], **given}
        run_dirs = tuple(run_dirs) or tuple(listed["runs"])
        dataset = dataset or listed["dataset"]
        eps_text = eps_text or (str(listed["eps"]) if listed["eps"] is not None else None)
    if clip_spec is not None and not clip_spec.startswith("clip:"):
        raise ConfigError(f"--clip takes clip:MODEL:PRETRAINED, got {clip_spec!r}")
    eps = parse_eps(eps_text or "8/255")
    if eps == 0:
        raise ConfigError("--eps must be > 0")
    # Fig. 4 b shows the attack budget the models were trained and evaluated at: it is always on the grid
    eps_values = sorted({parse_eps(v) for v in eps_sweep.split(",") if v.strip()} | {eps})
    alphas = parse_alphas(alpha_text)
    wanted = parse_figure_names(only_text)
    if not given and not run_dirs:
        raise ConfigError("pass checkpoints (--natural, --fgsm, --robust, --trades, --scarl) or --runs")
    runs = {str(d): read_run(d) for d in run_dirs}  # refuses a folder that is not a run, before any work
    torch_device = resolve_device(device)
    output = OutputDir(out, overwrite=overwrite,
                       expected=[f"{f}.{e}" for f in FIGURE_NAMES for e in ("png", "pdf", "json")])

    from semprobe.cli.common import check_model_fits_data, common_dataset, load_images, load_one_checkpoint

    checkpoints = {role: load_one_checkpoint(path, device=torch_device) for role, path in given.items()}
    dataset_name = common_dataset(checkpoints, dataset) if checkpoints else dataset
    settings = dict(manifest=str(manifest) if manifest else None, dataset=dataset_name, n=n_images, n_pairs=n_pairs, eps=eps, eps_sweep=eps_values,
                    max_steps=max_steps, alphas=alphas, only=sorted(wanted), n_boot=n_boot, n_perm=n_perm, seed=seed,
                    checkpoints={role: str(path) for role, path in given.items()}, runs=list(runs))
    inputs = FigureInputs(checkpoints=checkpoints, runs=runs, eps=eps, eps_values=eps_values, max_steps=max_steps,
                          alphas=alphas, n_images=n_images, n_pairs=n_pairs, n_boot=n_boot, n_perm=n_perm,
                          batch_size=batch_size, device=torch_device, seed=seed)
    seed_everything(seed)
    if checkpoints:
        data, images, labels, _ = load_images(dataset_name, "test", max(n_images, n_pairs), seed, data_dir)
        for role, loaded in checkpoints.items():
            check_model_fits_data(f"--{role}", loaded, data)
        from semprobe.words import class_vectors

        inputs.data, inputs.images, inputs.labels = data, images, labels
        # Word vectors before any compute: a missing CLIP weights file fails at once.
        inputs.words = {e: class_vectors(e, data.classes, data.phrases).vectors
                        for e in ["glove"] + ([clip_spec] if clip_spec else [])}
    made, skipped = make_figures(inputs, wanted)
    if checkpoints and not clip_spec and "scarl_fig2_simmatrix" in made:
        skipped.append(("the CLIP panels of scarl_fig2_simmatrix", "--clip clip:MODEL:PRETRAINED"))

    for name, reason in skipped:
        click.echo(f"skipped {name}: needs {reason}")
    with output:
        for name, (figure, document) in made.items():
            output.write_json(f"{name}.json", {"metadata": run_metadata(**settings), **document})
            output.save_figure(name, figure)
    click.echo(f"wrote {len(made)} figure(s) to {out}: {', '.join(made) or 'none'}")


def parse_figure_names(text: str | None) -> set[str]:
    """The figures named by ``--only`` (a comma list), all of them when ``text`` is None."""
    from semprobe.errors import ConfigError

    if text is None:
        return set(FIGURE_NAMES)
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(FIGURE_NAMES))
    if unknown or not names:
        raise ConfigError(f"--only: unknown figure(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(FIGURE_NAMES)}")
    return names
