"""Features of natural and adversarial images, in batches, for the semantic diagnostics.

:func:`extract_features` runs a model over images chunk by chunk and keeps the
requested layer's output (flattened per image). With an attack it also extracts the
features of the attacked images (SCARL Fig. 1 and 5 compare the two), chunk c attacked
with the random stream of ``(seed, c)``, so that processes sharing the chunks under
``torchrun`` (:mod:`semprobe.robustness.sharding`) get what one process gets.
:func:`load_features_file` reads features computed elsewhere from an ``.npz``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from semprobe.attacks.specs import AttackSpec, resolve_attacks
from semprobe.distributed import Processes
from semprobe.errors import ConfigError, SemprobeError
from semprobe.robustness.accuracy import AttackContext
from semprobe.robustness.sharding import chunk_generator, chunk_seed, map_chunks
from semprobe.models.wrapper import wrap_model

REQUIRED_ARRAYS = ("features", "labels")


@dataclass
class FeatureSet:
    """Features of n images (natural and, optionally, adversarial) with their labels."""

    features: np.ndarray  # (n, p) float32
    labels: np.ndarray  # (n,) int64
    features_adv: np.ndarray | None = None  # (n, p) float32
    classes: list[str] | None = None
    layer: str = "penultimate"
    source: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.features.shape[0])


def check_layer(model: torch.nn.Module, layer: str) -> None:
    """Refuse an unknown tap before any work, listing some of the available ones (any module, wrapped)."""
    names = wrap_model(model).tap_names()
    if layer not in names:
        shown = ", ".join(names[:12])
        raise ConfigError(f"unknown layer {layer!r}; available: {shown}, ... (penultimate and logits always)")


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().reshape(tensor.shape[0], -1).float()


def extract_features(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    layer: str = "penultimate",
    attack: AttackSpec | str | None = None,
    eps: float = 0.0,
    step_size: float | None = None,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    seed: int = 0,
    context: AttackContext | None = None,
    classes: list[str] | None = None,
    progress=None,
    norm: str = "Linf",
    processes: Processes | None = None,
) -> FeatureSet:
    """Layer ``layer`` of ``model`` on ``images`` (and on their attacked versions when ``attack``).

    ``model`` is a semprobe model or any classifier module (wrapped with
    :func:`semprobe.models.wrap_model`, no normalization added). ``attack`` is an
    :class:`AttackSpec` or one attack name (``"pgd20"``, ``"fgsm"``; run in the ``norm`` ball).
    With ``processes`` (under ``torchrun``) each process extracts its share of the chunks
    and every process returns all the features.
    """
    if attack is not None and not isinstance(attack, AttackSpec):
        (attack,) = resolve_attacks([attack], norm)
    device = torch.device(device)
    model = wrap_model(model)
    check_layer(model, layer)
    model.eval()
    context = context or AttackContext()
    attacked = attack is not None and attack.kind != "natural"

    def extract_chunk(chunk: int, rows: slice) -> torch.Tensor:
        """The natural features of the chunk's images, then (with an attack) the adversarial ones."""
        x, y = images[rows].to(device), labels[rows].to(device)
        with torch.no_grad():
            parts = [_flat(model.extract(x, [layer])[layer])]
        if attacked:
            x_adv = attack.run(model, x, y, eps=eps, step_size=step_size, generator=chunk_generator(seed, chunk, device),
                               seed=chunk_seed(seed, chunk), heads=context.heads, word_vectors=context.word_vectors,
                               info_tau=context.info_tau, info_c=context.info_c)
            with torch.no_grad():
                parts.append(_flat(model.extract(x_adv, [layer])[layer]))
        return torch.stack(parts, dim=1)

    rows = map_chunks(len(images), batch_size, extract_chunk, dtype=torch.float32, processes=processes, device=device,
                      progress=progress).numpy()
    natural = np.ascontiguousarray(rows[:, 0])
    adversarial = np.ascontiguousarray(rows[:, 1]) if attacked else None
    return FeatureSet(natural, labels.cpu().numpy().astype(np.int64), adversarial, classes, layer)


def _check_real(array: np.ndarray, name: str, path: Path) -> None:
    """Refuse an array of anything but real numbers (strings, objects, complex, booleans)."""
    kind = array.dtype.kind
    if kind == "c":
        raise SemprobeError(f"features file {path}: {name} holds complex numbers (dtype {array.dtype}); semprobe "
                            "needs real features: store their real and imaginary parts as separate columns")
    if kind not in "iuf":
        what = {"U": "strings", "S": "strings", "b": "booleans", "O": "objects"}.get(kind, f"dtype {array.dtype}")
        raise SemprobeError(f"features file {path}: {name} holds {what}, not numbers; store it as a float array")


def load_features_file(path: str | os.PathLike) -> FeatureSet:
    """Features from an ``.npz`` with ``features`` (n x p), ``labels`` (n), optional
    ``features_adv`` (n x p) and ``classes`` (K names); every problem is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise SemprobeError(f"features file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as exc:  # zip, format and pickle errors all mean "not a usable npz"
        raise SemprobeError(f"cannot read features file {path} as .npz without pickles ({exc})") from None
    missing = [name for name in REQUIRED_ARRAYS if name not in arrays]
    if missing:
        raise SemprobeError(f"features file {path} lacks the array(s) {', '.join(missing)}; "
                            "it needs features (n x p) and labels (n), optionally features_adv and classes")
    features, labels = arrays["features"], arrays["labels"]
    if features.ndim != 2 or labels.ndim != 1 or len(labels) != len(features):
        raise SemprobeError(f"features file {path}: features must be n x p and labels n, got shapes "
                            f"{features.shape} and {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
        raise SemprobeError(f"features file {path}: labels must be non-negative integers")
    features_adv = arrays.get("features_adv")
    if features_adv is not None and features_adv.shape != features.shape:
        raise SemprobeError(f"features file {path}: features_adv has shape {features_adv.shape}, "
                            f"features {features.shape}")
    for name, array in (("features", features), ("features_adv", features_adv)):
        if array is not None:
            _check_real(array, name, path)
        if array is not None and not np.isfinite(array).all():
            raise SemprobeError(f"features file {path}: {name} holds NaN or infinite values")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    if classes is not None and labels.max(initial=0) >= len(classes):
        raise SemprobeError(f"features file {path}: a label is >= the number of classes ({len(classes)})")
    return FeatureSet(features.astype(np.float32), labels.astype(np.int64),
                      None if features_adv is None else features_adv.astype(np.float32), classes,
                      layer="file", source={"features_file": str(path)})
