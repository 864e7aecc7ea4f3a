"""semprobe: semantic diagnostics, attacks and trainers for robust image classifiers.

The package implements two papers (see ``../shared/papers`` in the project):
SCARL (semantic constraint adversarial robust learning) and SPAT (semantics-preserving
adversarial training, PGD with a label-smoothed surrogate).

Importing ``semprobe`` is cheap: torch, gensim, open_clip and seaborn are imported by
the submodules that need them, so ``semprobe --help`` answers at once.
"""

__version__ = "0.1.0"

from semprobe.errors import SemprobeError  # noqa: E402  (light: no third-party imports)

__all__ = ["SemprobeError", "__version__"]
