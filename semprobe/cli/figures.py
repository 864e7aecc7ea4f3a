"""``semprobe figures``: the papers' figures that the given checkpoints and runs allow, each with its JSON.

Made in this version (see figures/README.md for the full map):

=========================  =========================================================
``scarl_fig1_cca``         CCA grid of the natural, FGSM and robust checkpoints
``scarl_fig5_cca``         CCA grid of the robust (AT) and SCARL checkpoints
``scarl_fig2_simmatrix``   class-similarity matrices of natural and robust features vs GloVe (and CLIP)
``scarl_fig4a_epochs``     validation PGD accuracy per epoch of each ``--runs`` folder
``scarl_fig4b_eps``        PGD-10 accuracy vs eps of the robust, TRADES and SCARL checkpoints
``scarl_fig4c_steps``      PGD accuracy vs steps (up to ``--max-steps``) of the same
``scarl_fig4d_batch``      final PGD accuracy vs batch size of runs that differ in it
``spat_fig4_alpha``        PGD-LS success vs alpha of the natural and robust checkpoints
``spat_fig2_examples``     CW-inf adversarial examples of the robust checkpoint at eps 8, 16, 32/255
``spat_fig3_examples``     PGD-CE vs PGD-LS (alpha 0.2, 0.8) examples of the robust checkpoint, eps 32/255
``spat_fig5_alpha_sweep``  last-epoch clean and PGD accuracy vs alpha of a sweep of spat_* runs
=========================  =========================================================
"""

from __future__ import annotations

from pathlib import Path

import click

from semprobe.cli.common import at_most, command, common_run_options, out_options
from semprobe.options import MAX_ALPHAS, MAX_ATTACK_STEPS, MAX_RESAMPLES

ROLES = ("natural", "fgsm", "robust", "trades", "scarl")
FIGURES = ("scarl_fig1_cca", "scarl_fig5_cca", "scarl_fig2_simmatrix", "scarl_fig4a_epochs", "scarl_fig4b_eps",
           "scarl_fig4c_steps", "scarl_fig4d_batch", "spat_fig4_alpha", "spat_fig2_examples", "spat_fig3_examples",
           "spat_fig5_alpha_sweep")
RUN_FIGURES = ("scarl_fig4a_epochs", "scarl_fig4d_batch", "spat_fig5_alpha_sweep")
EXAMPLE_IMAGES = 6


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
    output = OutputDir(out, overwrite=overwrite, expected=[f"{f}.{e}" for f in FIGURES for e in ("png", "pdf", "json")])

    from semprobe.cli.common import check_model_fits_data, common_dataset, load_images, load_one_checkpoint

    checkpoints = {role: load_one_checkpoint(path, device=torch_device) for role, path in given.items()}
    dataset_name = common_dataset(checkpoints, dataset) if checkpoints else dataset
    settings = dict(manifest=str(manifest) if manifest else None, dataset=dataset_name, n=n_images, n_pairs=n_pairs, eps=eps, eps_sweep=eps_values,
                    max_steps=max_steps, alphas=alphas, only=sorted(wanted), n_boot=n_boot, n_perm=n_perm, seed=seed,
                    checkpoints={role: str(path) for role, path in given.items()}, runs=list(runs))
    made, skipped = {}, []
    seed_everything(seed)
    if checkpoints:
        data, images, labels, _ = load_images(dataset_name, "test", max(n_images, n_pairs), seed, data_dir)
        for role, loaded in checkpoints.items():
            check_model_fits_data(f"--{role}", loaded, data)
        from semprobe.words import class_vectors

        context = _Context(checkpoints, data, images, labels, eps, batch_size, torch_device, seed, n_images, n_pairs)
        # Word vectors before any compute: a missing CLIP weights file fails at once.
        context.words = {e: class_vectors(e, data.classes, data.phrases).vectors
                         for e in ["glove"] + ([clip_spec] if clip_spec else [])}
        _checkpoint_figures(context, made, skipped, eps_values, max_steps, alphas, n_boot, n_perm, wanted)
        if not clip_spec and "scarl_fig2_simmatrix" in made:
            skipped.append(("the CLIP panels of scarl_fig2_simmatrix", "--clip clip:MODEL:PRETRAINED"))
    else:
        skipped += [(f, "checkpoints") for f in FIGURES if f not in RUN_FIGURES]
    _run_figures(runs, made, skipped)
    made = {name: made[name] for name in made if name in wanted}  # run figures are cheap: made, then dropped
    skipped = [(name, reason) for name, reason in skipped if name in wanted or name not in FIGURES]

    for name, reason in skipped:
        click.echo(f"skipped {name}: needs {reason}")
    with output:
        for name, (figure, document) in made.items():
            output.write_json(f"{name}.json", {"metadata": run_metadata(**settings), **document})
            output.save_figure(name, figure)
    click.echo(f"wrote {len(made)} figure(s) to {out}: {', '.join(made) or 'none'}")


class _Context:
    """What every checkpoint figure shares: the models, the sampled images, the attack budget."""

    def __init__(self, checkpoints, data, images, labels, eps, batch_size, device, seed, n_images, n_pairs):
        self.checkpoints, self.data, self.eps = checkpoints, data, eps
        self.images, self.labels = images, labels
        self.batch_size, self.device, self.seed = batch_size, device, seed
        self.n_images, self.n_pairs = n_images, n_pairs
        self._features = {}
        self.words: dict = {}  # embedding spec -> (K, d) class vectors, set before any compute

    def features(self, role: str, adversarial: bool = True):
        """Natural (and, with ``adversarial``, PGD-20) features of the first max(n, n_pairs) images,
        computed once per role: natural-only features are reused, never the attack rerun."""
        cached = self._features.get(role)
        if cached is None or (adversarial and cached.features_adv is None):
            from semprobe.attacks.specs import parse_attack
            from semprobe.models.features import extract_features

            self._features[role] = extract_features(
                self.checkpoints[role].model, self.images, self.labels,
                attack=parse_attack("pgd20") if adversarial else None, eps=self.eps, step_size=self.eps / 4,
                batch_size=self.batch_size, device=self.device, seed=self.seed)
        return self._features[role]


def _cca_figure(context, roles, n_boot, n_perm):
    from semprobe.plots.semantic import cca_grid
    from semprobe.stats import cca_report

    words = context.words["glove"]
    reports = {}
    for role in roles:
        features = context.features(role)
        reports[role] = {column: cca_report(matrix, features.labels, words, n_pairs=context.n_pairs, n_boot=n_boot,
                                            n_perm=n_perm, random_state=context.seed)
                         for column, matrix in (("natural", features.features), ("adversarial", features.features_adv))}
    document = {"classes": list(context.data.classes),
                "reports": {role: {c: r.to_dict() for c, r in cols.items()} for role, cols in reports.items()}}
    return cca_grid(reports, list(context.data.classes), random_state=context.seed), document


def parse_figure_names(text: str | None) -> set[str]:
    """The figures named by ``--only`` (a comma list), all of them when ``text`` is None."""
    from semprobe.errors import ConfigError

    if text is None:
        return set(FIGURES)
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(FIGURES))
    if unknown or not names:
        raise ConfigError(f"--only: unknown figure(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(FIGURES)}")
    return names


def _checkpoint_figures(context, made, skipped, eps_values, max_steps, alphas, n_boot, n_perm, wanted) -> None:
    from semprobe.robustness.alpha_curves import alpha_curve
    from semprobe.plots.curves import alpha_curve_figure, curves_figure
    from semprobe.robustness.curves import accuracy_vs_eps, accuracy_vs_steps

    have = [role for role in ROLES if role in context.checkpoints]
    fig1 = [r for r in ("natural", "fgsm", "robust") if r in have]
    if not fig1:
        skipped.append(("scarl_fig1_cca", "--natural, --fgsm or --robust"))
    elif "scarl_fig1_cca" in wanted:
        made["scarl_fig1_cca"] = _cca_figure(context, fig1, n_boot, n_perm)
    fig5 = [r for r in ("robust", "scarl") if r in have]
    if len(fig5) < 2:
        skipped.append(("scarl_fig5_cca", "--robust and --scarl"))
    elif "scarl_fig5_cca" in wanted:
        made["scarl_fig5_cca"] = _cca_figure(context, fig5, n_boot, n_perm)
    sim_roles = [r for r in ("natural", "robust", "trades", "scarl") if r in have]
    if not sim_roles:
        skipped.append(("scarl_fig2_simmatrix", "--natural, --robust, --trades or --scarl"))
    elif "scarl_fig2_simmatrix" in wanted:
        made["scarl_fig2_simmatrix"] = _similarity_figure(context, sim_roles, n_boot, n_perm)
    robust_roles = [r for r in ("robust", "trades", "scarl") if r in have]
    images, labels = context.images[: context.n_images], context.labels[: context.n_images]
    common = dict(batch_size=context.batch_size, device=context.device, seed=context.seed)
    if robust_roles and "scarl_fig4b_eps" in wanted:
        eps_curves = [accuracy_vs_eps(context.checkpoints[r].model, images, labels, eps_values, steps=10, label=r,
                                      **common) for r in robust_roles]
        made["scarl_fig4b_eps"] = (curves_figure(eps_curves, title="PGD-10 accuracy vs eps"),
                                   {"curves": [c.to_dict() for c in eps_curves]})
    if robust_roles and "scarl_fig4c_steps" in wanted:
        counts = sorted({s for s in (1, 5, 10, 20, 50, 100, 200, 500, max_steps) if s <= max_steps})
        step_curves = [accuracy_vs_steps(context.checkpoints[r].model, images, labels, counts, eps=context.eps,
                                         step_size=context.eps / 4, label=r, **common) for r in robust_roles]
        made["scarl_fig4c_steps"] = (curves_figure(step_curves, title=f"PGD accuracy vs steps (eps {context.eps:.4g})"),
                                     {"curves": [c.to_dict() for c in step_curves]})
    if not robust_roles:
        skipped += [("scarl_fig4b_eps", "--robust, --trades or --scarl"),
                    ("scarl_fig4c_steps", "--robust, --trades or --scarl")]
    alpha_roles = [r for r in ("natural", "robust") if r in have]
    if not alpha_roles:
        skipped.append(("spat_fig4_alpha", "--natural or --robust"))
    elif "spat_fig4_alpha" in wanted:
        curves = [alpha_curve(context.checkpoints[r].model, images, labels, alphas, eps=context.eps,
                              step_size=context.eps / 10, steps=20, batch_size=context.batch_size,
                              device=context.device, seed=context.seed, label=r) for r in alpha_roles]
        made["spat_fig4_alpha"] = (alpha_curve_figure(curves, title="PGD-LS success vs alpha"),
                                   {"curves": [c.to_dict() for c in curves]})
    if "robust" in have:
        _example_figures(context, made, wanted)
    else:
        skipped += [("spat_fig2_examples", "--robust"), ("spat_fig3_examples", "--robust")]


def _example_figures(context, made, wanted) -> None:
    from semprobe.plots.example_grids import (attack_columns, correct_examples, example_grid, spat_fig2_attacks,
                                        spat_fig3_attacks)

    model = context.checkpoints["robust"].model.to(context.device)
    images, labels = context.images.to(context.device), context.labels.to(context.device)
    chosen = correct_examples(model, images, labels, EXAMPLE_IMAGES).to(context.device)
    images, labels = images[chosen], labels[chosen]
    classes = list(context.data.classes)
    for name, attack_fns, title in (
        ("spat_fig2_examples", spat_fig2_attacks(), "CW-inf adversarial examples of the robust model"),
        ("spat_fig3_examples", spat_fig3_attacks(), "PGD-CE vs PGD-LS examples of the robust model (eps 32/255)"),
    ):
        if name not in wanted:
            continue
        columns = attack_columns(model, images, labels, attack_fns)
        made[name] = (example_grid(columns, labels, classes, title=title),
                      {"labels": [classes[int(k)] for k in labels], "columns": [c.to_dict(classes) for c in columns]})


def _similarity_figure(context, roles, n_boot, n_perm):
    from semprobe.plots.semantic import similarity_grid
    from semprobe.stats import similarity_report

    words = context.words
    reports = {}
    for role in roles:
        features = context.features(role, adversarial=False)
        natural, labels = features.features[: context.n_images], features.labels[: context.n_images]
        reports[role] = {e: similarity_report(natural, labels, vectors, n_boot=n_boot, n_perm=n_perm,
                                              random_state=context.seed) for e, vectors in words.items()}
    document = {"classes": list(context.data.classes),
                "reports": {role: {e: r.to_dict() for e, r in cols.items()} for role, cols in reports.items()}}
    return similarity_grid(reports, list(context.data.classes)), document


def _run_figures(runs: dict, made: dict, skipped: list) -> None:
    from semprobe.plots.curves import curves_figure
    from semprobe.robustness.run_metrics import accuracy_vs_alpha, accuracy_vs_batch_size, accuracy_vs_epoch

    if not runs:
        skipped += [(name, "--runs") for name in RUN_FIGURES]
        return
    curves = [accuracy_vs_epoch(run) for run in runs]
    made["scarl_fig4a_epochs"] = (curves_figure(curves, title="validation PGD accuracy per epoch"),
                                  {"curves": [c.to_dict() for c in curves]})
    batch_curves = accuracy_vs_batch_size(list(runs))
    if any(len(c.points) > 1 for c in batch_curves):
        made["scarl_fig4d_batch"] = (curves_figure(batch_curves, title="final PGD accuracy vs batch size"),
                                     {"curves": [c.to_dict() for c in batch_curves]})
    else:
        skipped.append(("scarl_fig4d_batch", "--runs of one method trained with different batch sizes"))
    alpha_curves = accuracy_vs_alpha(list(runs))
    if any(len(c.points) > 1 for c in alpha_curves):
        made["spat_fig5_alpha_sweep"] = (curves_figure(alpha_curves, title="last-epoch accuracy vs training alpha"),
                                         {"curves": [c.to_dict() for c in alpha_curves]})
    else:
        skipped.append(("spat_fig5_alpha_sweep", "--runs of spat_* trained with different alphas"))
