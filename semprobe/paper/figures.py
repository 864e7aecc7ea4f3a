"""The papers' figures as a registry: name -> the inputs it needs, how to compute and draw it.

A figure is one :class:`Figure` entry. Checkpoint figures take the checkpoints given by
role (``natural``, ``fgsm``, ``robust`` for Madry AT, ``trades``, ``scarl``) and the test
images of a :class:`FigureInputs`; run figures take training run folders. ``make``
returns ``(matplotlib figure, JSON document)``, or ``None`` when the inputs, though given,
cannot make it (runs that do not differ in batch size, say). ``semprobe figures`` and the
demo read :data:`FIGURES`; adding a figure is one entry here plus its ``make`` function.

=========================  =========================================================
``scarl_fig1_cca``         CCA grid of the natural, FGSM and robust checkpoints
``scarl_fig5_cca``         CCA grid of the robust (AT) and SCARL checkpoints
``scarl_fig2_simmatrix``   class-similarity matrices of natural and robust features vs GloVe (and CLIP)
``scarl_fig4b_eps``        PGD-10 accuracy vs eps of the robust, TRADES and SCARL checkpoints
``scarl_fig4c_steps``      PGD accuracy vs steps (up to ``max_steps``) of the same
``spat_fig4_alpha``        PGD-LS success vs alpha of the natural and robust checkpoints
``spat_fig2_examples``     CW-inf adversarial examples of the robust checkpoint at eps 8, 16, 32/255
``spat_fig3_examples``     PGD-CE vs PGD-LS (alpha 0.2, 0.8) examples of the robust checkpoint, eps 32/255
``scarl_fig4a_epochs``     validation PGD accuracy per epoch of each run folder
``scarl_fig4d_batch``      final PGD accuracy vs batch size of runs that differ in it
``spat_fig5_alpha_sweep``  last-epoch clean and PGD accuracy vs alpha of a sweep of spat_* runs
=========================  =========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

ROLES = ("natural", "fgsm", "robust", "trades", "scarl")
EXAMPLE_IMAGES = 6


@dataclass
class FigureInputs:
    """What the figures of one call share: checkpoints by role, sampled test images, settings.

    ``images``/``labels`` hold max(n_images, n_pairs) test images; the curves use the first
    ``n_images``, the CCA the first ``n_pairs``. ``words`` maps an embedding spec to its
    (K, d) class vectors (GloVe always, CLIP when asked). ``runs`` maps a folder to its
    :func:`~semprobe.robustness.run_metrics.read_run` record.
    """

    checkpoints: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    data: Any = None
    images: Any = None
    labels: Any = None
    words: dict = field(default_factory=dict)
    eps: float = 8 / 255
    eps_values: list = field(default_factory=list)
    max_steps: int = 500
    alphas: list = field(default_factory=list)
    n_images: int = 1000
    n_pairs: int = 500
    n_boot: int = 1000
    n_perm: int = 1000
    batch_size: int = 128
    device: Any = "cpu"
    seed: int = 0
    _features: dict = field(default_factory=dict, repr=False)

    def features(self, role: str, adversarial: bool = True):
        """Natural (and, with ``adversarial``, PGD-20) features of the sampled images, computed
        once per role: natural-only features are reused, never the attack rerun."""
        cached = self._features.get(role)
        if cached is None or (adversarial and cached.features_adv is None):
            from semprobe.attacks.specs import parse_attack
            from semprobe.models.features import extract_features

            self._features[role] = extract_features(
                self.checkpoints[role].model, self.images, self.labels,
                attack=parse_attack("pgd20") if adversarial else None, eps=self.eps, step_size=self.eps / 4,
                batch_size=self.batch_size, device=self.device, seed=self.seed)
        return self._features[role]

    @property
    def curve_images(self):
        return self.images[: self.n_images], self.labels[: self.n_images]

    @property
    def classes(self) -> list[str]:
        return list(self.data.classes)

    def attack_settings(self) -> dict:
        return dict(batch_size=self.batch_size, device=self.device, seed=self.seed)


Made = "tuple[Any, dict] | None"


@dataclass(frozen=True)
class Figure:
    """One paper figure: its ``name``, the ``roles`` it draws (any of them, at least
    ``min_roles``) or ``runs``, what ``needs`` says when they are missing, and ``make``."""

    name: str
    make: Callable[[FigureInputs, list], Any]
    needs: str
    roles: tuple[str, ...] = ()
    min_roles: int = 1
    runs: bool = False
    in_demo: bool = False  # the demo asks for it (the others it computes with its own commands)

    def inputs(self, given: FigureInputs) -> list | None:
        """The roles (or run folders) this figure would draw from ``given``, None when too few."""
        if self.runs:
            return list(given.runs) or None
        roles = [role for role in self.roles if role in given.checkpoints]
        return roles if len(roles) >= self.min_roles else None


# --------------------------------------------------------------------------- checkpoint figures


def _cca(inputs: FigureInputs, roles: list):
    from semprobe.plots.semantic import cca_grid
    from semprobe.stats import cca_report

    words = inputs.words["glove"]
    reports = {}
    for role in roles:
        features = inputs.features(role)
        reports[role] = {column: cca_report(matrix, features.labels, words, n_pairs=inputs.n_pairs,
                                            n_boot=inputs.n_boot, n_perm=inputs.n_perm, random_state=inputs.seed)
                         for column, matrix in (("natural", features.features), ("adversarial", features.features_adv))}
    document = {"classes": inputs.classes,
                "reports": {role: {c: r.to_dict() for c, r in cols.items()} for role, cols in reports.items()}}
    return cca_grid(reports, inputs.classes, random_state=inputs.seed), document


def _similarity(inputs: FigureInputs, roles: list):
    from semprobe.plots.semantic import similarity_grid
    from semprobe.stats import similarity_report

    reports = {}
    for role in roles:
        features = inputs.features(role, adversarial=False)
        natural, labels = features.features[: inputs.n_images], features.labels[: inputs.n_images]
        reports[role] = {e: similarity_report(natural, labels, vectors, n_boot=inputs.n_boot, n_perm=inputs.n_perm,
                                              random_state=inputs.seed) for e, vectors in inputs.words.items()}
    document = {"classes": inputs.classes,
                "reports": {role: {e: r.to_dict() for e, r in cols.items()} for role, cols in reports.items()}}
    return similarity_grid(reports, inputs.classes), document


def _curves_document(figure, curves) -> tuple:
    return figure, {"curves": [c.to_dict() for c in curves]}


def _accuracy_vs_eps(inputs: FigureInputs, roles: list):
    from semprobe.plots.curves import curves_figure
    from semprobe.robustness.curves import accuracy_vs_eps

    images, labels = inputs.curve_images
    curves = [accuracy_vs_eps(inputs.checkpoints[r].model, images, labels, inputs.eps_values, steps=10, label=r,
                              **inputs.attack_settings()) for r in roles]
    return _curves_document(curves_figure(curves, title="PGD-10 accuracy vs eps"), curves)


def _accuracy_vs_steps(inputs: FigureInputs, roles: list):
    from semprobe.plots.curves import curves_figure
    from semprobe.robustness.curves import accuracy_vs_steps

    images, labels = inputs.curve_images
    counts = sorted({s for s in (1, 5, 10, 20, 50, 100, 200, 500, inputs.max_steps) if s <= inputs.max_steps})
    curves = [accuracy_vs_steps(inputs.checkpoints[r].model, images, labels, counts, eps=inputs.eps,
                                step_size=inputs.eps / 4, label=r, **inputs.attack_settings()) for r in roles]
    return _curves_document(curves_figure(curves, title=f"PGD accuracy vs steps (eps {inputs.eps:.4g})"), curves)


def _alpha(inputs: FigureInputs, roles: list):
    from semprobe.plots.curves import alpha_curve_figure
    from semprobe.robustness.alpha_curves import alpha_curve

    images, labels = inputs.curve_images
    curves = [alpha_curve(inputs.checkpoints[r].model, images, labels, inputs.alphas, eps=inputs.eps,
                          step_size=inputs.eps / 10, steps=20, label=r, **inputs.attack_settings()) for r in roles]
    return _curves_document(alpha_curve_figure(curves, title="PGD-LS success vs alpha"), curves)


def _examples(attacks: str, title: str):
    """The ``make`` of an example grid of the robust checkpoint (SPAT Fig. 2 or 3)."""

    def make(inputs: FigureInputs, roles: list):
        from semprobe.plots import example_grids

        model = inputs.checkpoints["robust"].model.to(inputs.device)
        images, labels = inputs.images.to(inputs.device), inputs.labels.to(inputs.device)
        chosen = example_grids.correct_examples(model, images, labels, EXAMPLE_IMAGES).to(inputs.device)
        images, labels = images[chosen], labels[chosen]
        columns = example_grids.attack_columns(model, images, labels, getattr(example_grids, attacks)())
        return (example_grids.example_grid(columns, labels, inputs.classes, title=title),
                {"labels": [inputs.classes[int(k)] for k in labels],
                 "columns": [c.to_dict(inputs.classes) for c in columns]})

    return make


# --------------------------------------------------------------------------- run figures


def _epochs(inputs: FigureInputs, runs: list):
    from semprobe.plots.curves import curves_figure
    from semprobe.robustness.run_metrics import accuracy_vs_epoch

    curves = [accuracy_vs_epoch(run) for run in inputs.runs]
    return _curves_document(curves_figure(curves, title="validation PGD accuracy per epoch"), curves)


def _runs_curve(function: str, title: str):
    """The ``make`` of a figure across runs that differ in one setting (None when none does)."""

    def make(inputs: FigureInputs, runs: list):
        from semprobe.plots.curves import curves_figure
        from semprobe.robustness import run_metrics

        curves = getattr(run_metrics, function)(list(inputs.runs))
        if not any(len(c.points) > 1 for c in curves):
            return None
        return _curves_document(curves_figure(curves, title=title), curves)

    return make


FIGURES: tuple[Figure, ...] = (
    Figure("scarl_fig1_cca", _cca, "--natural, --fgsm or --robust", roles=("natural", "fgsm", "robust")),
    Figure("scarl_fig5_cca", _cca, "--robust and --scarl", roles=("robust", "scarl"), min_roles=2),
    Figure("scarl_fig2_simmatrix", _similarity, "--natural, --robust, --trades or --scarl",
           roles=("natural", "robust", "trades", "scarl")),
    Figure("scarl_fig4b_eps", _accuracy_vs_eps, "--robust, --trades or --scarl", roles=("robust", "trades", "scarl"),
           in_demo=True),
    Figure("scarl_fig4c_steps", _accuracy_vs_steps, "--robust, --trades or --scarl",
           roles=("robust", "trades", "scarl"), in_demo=True),
    Figure("spat_fig4_alpha", _alpha, "--natural or --robust", roles=("natural", "robust")),
    Figure("spat_fig2_examples", _examples("spat_fig2_attacks", "CW-inf adversarial examples of the robust model"),
           "--robust", roles=("robust",), in_demo=True),
    Figure("spat_fig3_examples",
           _examples("spat_fig3_attacks", "PGD-CE vs PGD-LS examples of the robust model (eps 32/255)"),
           "--robust", roles=("robust",), in_demo=True),
    Figure("scarl_fig4a_epochs", _epochs, "--runs", runs=True, in_demo=True),
    Figure("scarl_fig4d_batch", _runs_curve("accuracy_vs_batch_size", "final PGD accuracy vs batch size"),
           "--runs of one method trained with different batch sizes", runs=True),
    Figure("spat_fig5_alpha_sweep", _runs_curve("accuracy_vs_alpha", "last-epoch accuracy vs training alpha"),
           "--runs of spat_* trained with different alphas", runs=True),
)
FIGURE_NAMES = tuple(figure.name for figure in FIGURES)
BY_NAME = {figure.name: figure for figure in FIGURES}


def make_figures(inputs: FigureInputs, wanted: set[str]) -> tuple[dict, list]:
    """``(made, skipped)``: name -> (figure, document) of every wanted figure the inputs allow,
    and (name, what it needs) of the others, in registry order."""
    made, skipped = {}, []
    for figure in FIGURES:
        if figure.name not in wanted:
            continue
        chosen = figure.inputs(inputs)
        if chosen is None:
            no_checkpoints = not figure.runs and not inputs.checkpoints
            skipped.append((figure.name, "checkpoints" if no_checkpoints else figure.needs))
            continue
        result = figure.make(inputs, chosen)
        if result is None:
            skipped.append((figure.name, figure.needs))
        else:
            made[figure.name] = result
    return made, skipped
