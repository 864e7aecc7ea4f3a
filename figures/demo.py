"""The embedded demo: train six small models, run every semprobe analysis, write figures/demo/.

``make demo`` runs ``python figures/demo.py``. On Fashion-MNIST (the Debian files, else
torchvision's download, else scikit-learn's digits, said in one line) it trains the small
CNN at eps 0.1 with ``python -m trainers`` (natural, fgsm, pgd_at, trades, scarl and
spat_madry with alpha 0.2), then runs ``semprobe eval``, ``cca``, ``simmatrix`` (GloVe),
``alpha-curve`` and ``figures`` on the checkpoints, and writes every output, a
``summary.md`` that tests the papers' findings (semprobe.paper.findings), and ``commands.txt``
(every command, as typed) into ``--out``.

Trained runs are cached in ``--cache`` (default ``demo-cache/``, ignored by git) under
the method's name, with the training command in ``demo-run.json``: a second run with the
same settings reuses them. An analysis is copied from ``--cache``/analyses when its
command, the bytes of its input files and semprobe's source are those it was made from
(``--recompute`` reruns them all). The jobs run as separate
processes, ``--jobs`` at a time (default: one per CPU core, one thread each), in
dependency order (figures/scheduler.py; on Linux each is a fork of one server process
that imported torch, scikit-learn, matplotlib and semprobe once, not a fresh interpreter). Everything is written into a staging folder and replaces ``--out``
only when every job succeeded, so a failed demo leaves the previous outputs intact (and
removes the staging folder). A bad argument is one line ``demo: error: ...``, exit code 2.

    python figures/demo.py                      # the full demo (about 13 minutes on 2 CPU cores)
    python figures/demo.py --profile smoke --out /tmp/demo --cache /tmp/demo-cache   # a 1-minute check
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from semprobe.paper.figures import FIGURES

sys.path.insert(0, str(Path(__file__).resolve().parent))  # figures/: demo_jobs.py, demo_summary.py
from demo_jobs import Job, _is_cached, _keep, _reuse, _typed, input_key, run_jobs, say  # noqa: E402,F401

REPO = Path(__file__).resolve().parent.parent
METHODS = ("scarl", "trades", "pgd_at", "spat_madry", "fgsm", "natural")  # longest first
EPS = "0.1"
ZOO = REPO / "figures" / "study"
SPAT_ALPHA = "0.2"
# the registry's figures the demo asks `semprobe figures` for (it makes the CCA, similarity and alpha
# figures with their own commands)
FIGURES_ONLY = ",".join(sorted(figure.name for figure in FIGURES if figure.in_demo))
SEMANTIC_COMPONENTS = 3  # GloVe principal components for the CCA whose relabelling null has power (< K-1)


@dataclass(frozen=True)
class Profile:
    """How much of everything: training size and the sample size of each analysis."""

    train_images: int | None  # None: the whole training split
    check_images: int         # the end-to-end training check beside the zoo: this many images, one epoch
    epochs: int
    natural_epochs: int       # natural training is cheap: more epochs
    train_steps: int          # PGD steps of the training attacks (step eps/4 ... see step_size)
    train_step_size: str
    val_size: int
    eval_n: int               # natural, FGSM, PGD-20, CW-30 on every model
    aa_n: int                 # AutoAttack (with natural and PGD-20 on the same images) on TRADES and SCARL
    cca_pairs: int
    sim_n: int
    alpha_n: int
    alphas: str
    figures_n: int
    max_steps: int
    eps_sweep: str
    n_boot: int
    n_perm: int


PROFILES = {
    "full": Profile(train_images=3500, check_images=2000, epochs=2, natural_epochs=4, train_steps=5, train_step_size="eps/2",
                    val_size=250, eval_n=300, aa_n=30, cca_pairs=500, sim_n=300, alpha_n=200, alphas="0:1:0.2",
                    figures_n=150, max_steps=50, eps_sweep="0,0.05,0.1,0.15,0.2", n_boot=500, n_perm=500),
    "smoke": Profile(train_images=300, check_images=200, epochs=1, natural_epochs=2, train_steps=2, train_step_size="eps/2",
                     val_size=50, eval_n=60, aa_n=8, cca_pairs=60, sim_n=100, alpha_n=30, alphas="0:1:0.5",
                     figures_n=30, max_steps=3, eps_sweep="0,0.1", n_boot=30, n_perm=30),
}

# On the zoo the demo trains nothing but its end-to-end check, so the full profile's analyses take larger
# samples in the same budget (verdicts with power); the smoke profile keeps its sizes. AutoAttack (about 10 s
# per robust image on one core) stays the longest job, on one core while the rest share the other.
ZOO_SAMPLES = dict(eval_n=1000, aa_n=50, cca_pairs=1000, sim_n=1000, alpha_n=500, figures_n=300, max_steps=100,
                   n_boot=1000, n_perm=1000)


def analysis_profile(profile_name: str, source: str, aa_n: int | None = None) -> Profile:
    """The profile the analyses use: ``profile_name``'s, with :data:`ZOO_SAMPLES` when the full profile runs on
    the zoo, and ``--aa-n`` over both."""
    profile = PROFILES[profile_name]
    if source == "zoo" and profile_name == "full":
        profile = replace(profile, **ZOO_SAMPLES)
    return profile if aa_n is None else replace(profile, aa_n=aa_n)


def choose_dataset(data_dir: str | None, allow_download: bool = True) -> tuple[str, str]:
    """``(dataset, line)``: Fashion-MNIST where found or downloadable, else scikit-learn's digits."""
    from semprobe.data import load_dataset
    from semprobe.errors import SemprobeError

    try:
        load_dataset("fashion-mnist", "test", data_dir=data_dir)
        return "fashion-mnist", "data: Fashion-MNIST, found on this machine"
    except SemprobeError as not_here:
        reason = str(not_here).splitlines()[0]
    if allow_download:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(20)  # a machine without a network must not hang here
        try:
            load_dataset("fashion-mnist", "test", data_dir=data_dir, download=True)
            return "fashion-mnist", "data: Fashion-MNIST, downloaded with torchvision"
        except SemprobeError as failed:
            reason = str(failed).splitlines()[0]
        finally:
            socket.setdefaulttimeout(previous)
    return "digits", f"data: Fashion-MNIST is not available ({reason}); the demo runs on scikit-learn's digits instead"


@dataclass
class Models:
    """The demo's six checkpoints and where they come from.

    ``checkpoints`` and ``runs`` (folders with the run's ``config.json`` and ``metrics.jsonl``)
    by method; ``made_by`` the training job each checkpoint waits for (none for the zoo's);
    ``labels`` the label the semprobe commands give each checkpoint, mapped to its method;
    ``jobs`` the training jobs to run (for the zoo, one short end-to-end check of the trainers);
    ``check_run`` that check's run folder.
    """

    source: str
    checkpoints: dict[str, Path]
    runs: dict[str, Path]
    made_by: dict[str, str]
    labels: dict[str, str]
    jobs: list[Job]
    check_run: Path | None = None


def _training_argv(method: str, profile: Profile, dataset: str, out: Path, data_dir: str | None,
                   epochs: int, train_images: int | None) -> list[str]:
    argv = ["-m", "trainers", method, "--dataset", dataset, "--arch", "small_cnn", "--eps", EPS,
            "--epochs", str(epochs), "--val-size", str(profile.val_size), "--quiet", "--out", str(out), "--overwrite"]
    if method not in ("natural", "fgsm"):  # FGSM-AT takes one step of 1.25 eps (Wong et al. 2020)
        argv += ["--steps", str(profile.train_steps), "--step-size", profile.train_step_size]
    if train_images is not None:
        argv += ["--max-train-images", str(train_images)]
    if method == "spat_madry":
        argv += ["--alpha", SPAT_ALPHA]
    if data_dir:
        argv += ["--data-dir", data_dir]
    return argv


def trained_models(profile: Profile, dataset: str, cache: Path, data_dir: str | None) -> Models:
    """The six small models trained here (``python -m trainers METHOD ...``) into ``cache/METHOD``;
    each checkpoint is the run's ``best.pt`` (validation PGD accuracy; clean accuracy for natural)."""
    jobs = []
    for method in METHODS:
        epochs = profile.natural_epochs if method == "natural" else profile.epochs
        argv = _training_argv(method, profile, dataset, cache / method, data_dir, epochs, profile.train_images)
        jobs.append(Job(f"train {method}", argv, display=_typed(argv), done_marker=cache / method / "demo-run.json"))
    return Models("trained", {m: cache / m / "best.pt" for m in METHODS}, {m: cache / m for m in METHODS},
                  {m: f"train {m}" for m in METHODS}, {f"{m}/best": m for m in METHODS}, jobs)


def zoo_models(zoo: Path, profile: Profile, dataset: str, cache: Path, data_dir: str | None) -> Models | None:
    """The study's well-trained models (``zoo/models/METHOD.pt``, logs in ``zoo/logs/METHOD``) when
    all six are there and were trained on ``dataset``; else None. The trainers still get one short
    end-to-end run (pgd_at, one epoch), so the demo shows they work."""
    from semprobe.models.checkpoint import load_checkpoint
    from semprobe.errors import SemprobeError

    checkpoints = {m: zoo / "models" / f"{m}.pt" for m in METHODS}
    runs = {m: zoo / "logs" / m for m in METHODS}
    if not all(checkpoints[m].is_file() and (runs[m] / "metrics.jsonl").is_file() for m in METHODS):
        return None
    try:
        if any(load_checkpoint(path).dataset != dataset for path in checkpoints.values()):
            return None
    except SemprobeError:
        return None
    check = _training_argv("pgd_at", profile, dataset, cache / "trainer_check", data_dir, 1, profile.check_images)
    job = Job("train pgd_at (end-to-end check)", check, display=_typed(check),
              done_marker=cache / "trainer_check" / "demo-run.json")
    return Models("zoo", checkpoints, runs, {}, {m: m for m in METHODS}, [job], cache / "trainer_check")


def analysis_jobs(profile: Profile, dataset: str, models: Models, stage: Path, test_size: int,
                  data_dir: str | None) -> list[Job]:
    """eval, cca, simmatrix, alpha-curve and figures on the six checkpoints, each into ``stage/NAME``."""
    ckpt = {method: str(path) for method, path in models.checkpoints.items()}

    def after(methods) -> tuple[str, ...]:
        return tuple(models.made_by[m] for m in methods if m in models.made_by)
    n = {key: min(value, test_size) for key, value in
         dict(eval=profile.eval_n, aa=profile.aa_n, sim=profile.sim_n, alpha=profile.alpha_n,
              figures=profile.figures_n, pairs=profile.cca_pairs).items()}
    common = ["--eps", EPS, "--quiet", "--overwrite"] + (["--data-dir", data_dir] if data_dir else [])
    stats = ["--n-boot", str(profile.n_boot), "--n-perm", str(profile.n_perm)]

    def job(name, command, methods, options):
        argv = ["-m", "semprobe", command] + [a for m in methods for a in ("--ckpt", ckpt[m])] + options + common \
            + ["--out", str(stage / name)]
        return Job(name, argv, after(methods), _typed(argv), output=stage / name)

    glove_pcs = stage / "cca_semantic" / f"glove_pc{SEMANTIC_COMPONENTS}.npy"
    jobs = [
        job("eval_aa", "eval", ["trades", "scarl"], ["--attacks", "natural,pgd20,aa", "--n", str(n["aa"])]),
        job("eval", "eval", ["natural", "fgsm", "pgd_at", "trades", "scarl", "spat_madry"],
            ["--attacks", "natural,fgsm,pgd20,cw30", "--n", str(n["eval"])]),
        job("cca", "cca", ["natural", "fgsm", "pgd_at", "scarl"],
            ["--n-pairs", str(n["pairs"]), "--project-adversarial"] + stats),
        job("cca_semantic", "cca", ["natural", "pgd_at"],
            ["--embedding", f"file:{glove_pcs}", "--n-pairs", str(n["pairs"])] + stats),
        job("simmatrix", "simmatrix", ["natural", "pgd_at", "trades", "scarl"],
            ["--embedding", "glove", "--adversarial", "--n", str(n["sim"])] + stats),
        job("alpha_curve", "alpha-curve", ["natural", "pgd_at"],
            ["--alphas", profile.alphas, "--n", str(n["alpha"])]),
    ]
    figures = ["-m", "semprobe", "figures", "--robust", ckpt["pgd_at"], "--trades", ckpt["trades"], "--scarl",
               ckpt["scarl"]] + [a for m in ("pgd_at", "trades", "scarl", "spat_madry") for a in ("--runs", str(models.runs[m]))] \
        + ["--only", FIGURES_ONLY, "--n", str(max(n["figures"], 20)), "--n-pairs", str(max(n["pairs"], 20)),
           "--max-steps", str(profile.max_steps), "--eps-sweep", profile.eps_sweep] + stats + common \
        + ["--out", str(stage / "figures")]
    jobs.append(Job("figures", figures, after(("pgd_at", "trades", "scarl", "spat_madry")), _typed(figures),
                    output=stage / "figures"))
    semantic = next(job for job in jobs if job.name == "cca_semantic")
    semantic.prepare = partial(write_word_components, glove_pcs, dataset, SEMANTIC_COMPONENTS)
    return jobs


def schedule(train: list[Job], analyses: list[Job]) -> list[Job]:
    """Job order: every job waits for its inputs, and the first ready job in this order runs next.
    AutoAttack, the longest analysis, comes as soon as its two models are trained."""
    first = [job for job in analyses if job.name == "eval_aa"]
    inputs = {name for job in first for name in job.after}
    early = [job for job in train if job.name in inputs]
    rest_train = [job for job in train if job.name not in inputs]
    return early + first + rest_train + [job for job in analyses if job not in first]


def write_word_components(path: Path, dataset: str, components: int) -> None:
    """The class word vectors (GloVe) projected on their top principal components, as a K x c .npy."""
    import numpy as np

    from semprobe.data import dataset_info
    from semprobe.words import class_vectors

    info = dataset_info(dataset)
    vectors = class_vectors("glove", info.classes, info.phrases).vectors
    centred = vectors - vectors.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, (u[:, :components] * s[:components]).astype(np.float64))


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``demo: error: ...``, and exit code 2."""

    def error(self, message: str):
        print(f"demo: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "figures" / "demo"), help="where the outputs go (replaced)")
    parser.add_argument("--cache", default=str(REPO / "demo-cache"), help="where trained runs are kept")
    parser.add_argument("--zoo", default=str(ZOO),
                        help="the study folder whose models/ and logs/ the demo analyses when all six are there")
    parser.add_argument("--no-zoo", action="store_true", help="train the six small models even when the zoo is there")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--aa-n", type=_positive, help="images for AutoAttack (default: the profile's)")
    parser.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1, help="processes at a time")
    parser.add_argument("--data-dir", help="where the dataset files are (else $SEMPROBE_DATA, system folders)")
    parser.add_argument("--no-download", action="store_true", help="never try torchvision's download")
    parser.add_argument("--recompute", action="store_true",
                        help="rerun every analysis even when its inputs and semprobe's code are unchanged")
    parser.add_argument("--dataset", choices=("auto", "fashion-mnist", "digits"), default="auto",
                        help="auto: Fashion-MNIST where found or downloadable, else digits")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    started = time.monotonic()
    out, cache = Path(args.out).resolve(), Path(args.cache).resolve()
    stage = out.parent / f".{out.name}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        return _run(args, profile, out, cache, stage, started)
    finally:  # a failed demo leaves --out as it was and no staging folder behind
        if stage.exists():
            shutil.rmtree(stage)


def _run(args, profile: Profile, out: Path, cache: Path, stage: Path, started: float) -> int:
    from semprobe.data import load_dataset

    if args.dataset == "auto":
        dataset, data_line = choose_dataset(args.data_dir, allow_download=not args.no_download)
    else:
        dataset, data_line = args.dataset, f"data: {args.dataset}, as asked (--dataset)"
    say(data_line)
    test_size = len(load_dataset(dataset, "test", data_dir=args.data_dir))
    models = None if args.no_zoo else zoo_models(Path(args.zoo), profile, dataset, cache, args.data_dir)
    if models is None:
        models = trained_models(profile, dataset, cache, args.data_dir)
        say(f"models: trained here ({'--no-zoo' if args.no_zoo else f'no complete {dataset} zoo in {args.zoo}'})")
    else:
        say(f"models: the well-trained zoo in {args.zoo}, plus one short end-to-end training run")
    profile = analysis_profile(args.profile, models.source, args.aa_n)
    train = models.jobs
    analyses = analysis_jobs(profile, dataset, models, stage, test_size, args.data_dir)
    for job in train + analyses:  # the commands as a user would type them from the repository
        job.display = job.display.replace(str(stage), str(out)).replace(f"{Path.cwd()}/", "")
    run_jobs(schedule(train, analyses), args.jobs, cache / "logs",
             store=None if args.recompute else cache / "analyses")

    from demo_summary import write_summary

    elapsed = time.monotonic() - started
    write_summary(stage, models, dataset, data_line, profile, args.profile, train + analyses, elapsed)
    (stage / "commands.txt").write_text("\n".join(job.display for job in train + analyses) + "\n")
    if out.exists():
        shutil.rmtree(out)
    stage.rename(out)
    say(f"wrote {out} in {elapsed / 60:.1f} min; see {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
