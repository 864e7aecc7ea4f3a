"""semprobe: semantic diagnostics, attacks and trainers for robust image classifiers.

The package implements two papers (see ``../shared/papers`` in the project):
SCARL (semantic constraint adversarial robust learning) and SPAT (semantics-preserving
adversarial training, PGD with a label-smoothed surrogate).

The public API is one import, ``import semprobe as sp``::

    model = sp.load_model("torchvision:resnet18", num_classes=10, normalization="cifar10")
    results = sp.evaluate(model, x, y, ["natural", "pgd20"], eps=8 / 255)
    print(results); results.to_frame()

Importing ``semprobe`` is cheap: the API's names are resolved on first use (PEP 562,
module ``__getattr__``), so torch, gensim, open_clip and seaborn are imported by the
submodules that need them only when a name that needs them is touched, and
``semprobe --help`` answers at once.
"""

__version__ = "0.1.0"

from semprobe.errors import SemprobeError  # noqa: E402  (light: no third-party imports)

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "load_dataset": "semprobe.data",
    "create_model": "semprobe.models.registry",
    "wrap_model": "semprobe.models.wrapper",
    "load_checkpoint": "semprobe.models.foreign_checkpoint",
    "load_model": "semprobe.models.loading",
    "class_vectors": "semprobe.words",
    "pgd": "semprobe.attacks.gradient",
    "fgsm": "semprobe.attacks.gradient",
    "autoattack": "semprobe.attacks.autoattack",
    "evaluate": "semprobe.robustness.accuracy",
    "extract_features": "semprobe.models.features",
    "CCA": "semprobe.stats.cca",
    "cca_report": "semprobe.stats.cca_reporting",
    "similarity_report": "semprobe.stats.similarity_reporting",
    "alpha_curve": "semprobe.robustness.alpha_curves",
}

__all__ = ["SemprobeError", "__version__", *_LAZY]


def __getattr__(name: str):
    """Import the module that defines the public name ``name`` and return it (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    """The module's own names and the lazily imported API (PEP 562)."""
    return sorted(set(globals()) | set(__all__))
