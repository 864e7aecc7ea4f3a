"""One checkpoint schema, saved atomically and loaded safely.

A semprobe checkpoint is a dict written with ``torch.save``:

=================  ===============================================================
``format``         ``"semprobe-checkpoint/1"``
``arch``           registry name of the architecture (``semprobe.models``)
``arch_kwargs``    extra constructor options of the architecture (plain types)
``num_classes``    number of classes
``in_channels``    input channels
``dataset``        dataset name the model was trained on (or ``None``)
``classes``        class names in label order (or ``None``)
``normalization``  ``{"mean": [...], "std": [...]}`` applied inside the model, or ``None``
``model``          the model's ``state_dict`` (public CIFAR code key names)
``heads``          SCARL projection heads ``{"config": {...}, "state_dict": {...}}`` or ``None``
``word_embedding`` class word vectors ``{"name", "classes", "phrases", "vectors"}`` or ``None``
``epoch``          last completed epoch (or ``None``)
``optimizer``      optimizer ``state_dict`` (or ``None``)
``scheduler``      scheduler ``state_dict`` (or ``None``)
``config``         every training option (plain types)
``metrics``        the metrics at save time (plain types)
``resume``         what exact resumption of a training run needs beyond the above
                   (tensors and plain types, e.g. SCARL's word centres), or ``None``

Loading always uses ``torch.load(..., weights_only=True)`` (:func:`read_checkpoint_file`):
a checkpoint can never run code. This module reads its own schema back
(:func:`load_own`); :func:`load_checkpoint`, which tells a semprobe checkpoint from a
foreign state_dict or a RobustBench zoo entry and loads either, is
:mod:`semprobe.models.foreign_checkpoint`'s, and is importable from here too, as are
:func:`find_state_dict` and :func:`strip_prefixes`.

Non-finite values (NaN, inf) are refused both ways: a checkpoint is never saved with
them (weights, optimizer state, resume state) and never loaded with them in its weights
(:func:`check_finite_weights`, used by every loader through :func:`load_weights`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from semprobe.errors import CheckpointError
from semprobe.io import atomic_path

FORMAT = "semprobe-checkpoint/1"
# what torch's weights-only unpickler says when a pickle asks for something beyond plain
# data and tensors (as opposed to a file that is merely truncated or corrupt)
UNSAFE_PICKLE_PATTERN = re.compile(r"unsupported global|unsupported operand|allowlisted|add_safe_globals", re.I)
# torch warns about any pickle protocol but 2 before its weights-only unpickler refuses or
# reads the file; semprobe's own message (or the load) says all there is to say
PICKLE_PROTOCOL_WARNING = "Detected pickle protocol"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model ready for use, plus everything saved beside it."""

    path: Path
    model: Any  # semprobe.models.ImageClassifier, in eval mode on the requested device
    arch: str
    num_classes: int
    in_channels: int
    normalization: dict | None
    dataset: str | None = None
    classes: list[str] | None = None
    heads: Any = None  # semprobe.models.ProjectionHeads or None
    word_vectors: Any = None  # semprobe.words.ClassVectors or None
    epoch: int | None = None
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    optimizer_state: dict | None = None
    scheduler_state: dict | None = None
    resume_state: dict | None = None
    arch_kwargs: dict = field(default_factory=dict)
    foreign: bool = False
    threat_model: str | None = None  # a RobustBench zoo entry's (Linf, L2); recorded, not applied
    source: str | None = None  # what was asked for when it is not the file: robustbench:DATASET/THREAT/NAME

    @property
    def sha256(self) -> str:
        """SHA-256 of the checkpoint file, for the provenance recorded in results."""
        return file_sha256(self.path)

    def summary(self) -> dict:
        """Plain-typed description of the checkpoint (what ``semprobe info`` prints)."""
        return {
            "path": str(self.path),
            "format": self._format_name(),
            "source": self.source,
            "arch": self.arch,
            "arch_kwargs": self.arch_kwargs,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "dataset": self.dataset,
            "threat_model": self.threat_model,
            "classes": self.classes,
            "normalization": self.normalization,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "heads": self.heads.config if self.heads is not None else None,
            "word_embedding": (
                {"name": self.word_vectors.provider, "dim": int(self.word_vectors.vectors.shape[1])}
                if self.word_vectors is not None
                else None
            ),
            "epoch": self.epoch,
            "config": self.config,
            "metrics": self.metrics,
        }

    def _format_name(self) -> str:
        """What kind of file this is: semprobe's schema, a foreign state_dict, a RobustBench zoo file."""
        if self.source is not None and self.source.startswith("robustbench:"):
            return "RobustBench zoo file"
        return "foreign state_dict" if self.foreign else FORMAT


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def non_finite_tensors(obj: Any, prefix: str = "") -> list[str]:
    """Names (dotted paths) of the floating-point tensors in ``obj`` holding NaN or inf.

    ``obj`` is a tensor or nested dicts, lists and tuples of them (a state_dict, an
    optimizer state); other values are ignored.
    """
    if isinstance(obj, torch.Tensor):
        finite = not (obj.is_floating_point() or obj.is_complex()) or bool(torch.isfinite(obj).all())
        return [] if finite else [prefix or "tensor"]
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    return [name for key, value in items
            for name in non_finite_tensors(value, f"{prefix}.{key}" if prefix else str(key))]


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as types ``torch.load(weights_only=True)`` accepts, or raise."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, (int, str)) else k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    raise CheckpointError(
        f"cannot save {where} of type {type(value).__name__} in a checkpoint: "
        "use plain numbers, strings, lists, dicts or tensors"
    )


def save_checkpoint(
    path: str | os.PathLike,
    model: Any,
    *,
    dataset: str | None = None,
    classes: list[str] | None = None,
    heads: Any = None,
    word_vectors: Any = None,
    epoch: int | None = None,
    optimizer: Any = None,
    scheduler: Any = None,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    resume_state: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` (an ``ImageClassifier``) and its context in the semprobe schema.

    The file is written to a temporary name in the same folder and renamed into place,
    so a crash never leaves a truncated checkpoint at ``path``. Weights, optimizer state
    or resume state holding NaN or inf are refused (CheckpointError, nothing written).
    Returns ``path``.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "arch": model.arch,
        "arch_kwargs": _plain(getattr(model, "arch_kwargs", {}), "arch_kwargs"),
        "num_classes": int(model.num_classes),
        "in_channels": int(model.in_channels),
        "dataset": dataset,
        "classes": list(classes) if classes is not None else None,
        "normalization": _plain(model.normalization, "normalization"),
        "model": state,
        "heads": (
            {"config": _plain(heads.config, "heads.config"),
             "state_dict": {k: v.detach().cpu() for k, v in heads.state_dict().items()}}
            if heads is not None
            else None
        ),
        "word_embedding": _plain(word_vectors.to_dict(), "word_embedding") if word_vectors is not None else None,
        "epoch": epoch,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "config": _plain(dict(config or {}), "config"),
        "metrics": _plain(dict(metrics or {}), "metrics"),
        "resume": _plain(dict(resume_state), "resume_state") if resume_state is not None else None,
    }
    path = Path(path)
    bad = [name for key in ("model", "heads", "optimizer", "resume")
           for name in non_finite_tensors(payload[key], key)]
    if bad:
        raise CheckpointError(f"refused to save {path}: non-finite values (NaN or inf) in {_describe_keys(bad)}")
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with every failure turned into a clear error.

    A file whose pickle would construct arbitrary objects (and so could run code) is
    refused; a truncated or non-PyTorch file is reported as such.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=PICKLE_PROTOCOL_WARNING)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if UNSAFE_PICKLE_PATTERN.search(str(exc)):
            raise CheckpointError(
                f"refused to load {path}: it contains objects other than tensors and plain data, "
                "so unpickling it could run code; re-save its state_dict with torch.save from a trusted session"
            ) from None
        raise CheckpointError(f"cannot read {path}: the file is truncated or not a PyTorch checkpoint ({exc})") from None
    except Exception as exc:  # a damaged archive surfaces as many types (RuntimeError, EOFError, KeyError, ...)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or not a PyTorch checkpoint ({first_line})"
        ) from None


def _describe_keys(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def check_finite_weights(state: Mapping[str, Any], path: Path) -> None:
    """Refuse weights holding NaN or inf (a diverged training run), naming the tensors."""
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(
            f"refused to load {path}: non-finite values (NaN or inf) in {_describe_keys(bad)}; "
            "it probably comes from a diverged training run: use an earlier checkpoint"
        )


def load_weights(model: Any, state: Mapping[str, torch.Tensor], path: Path, strict: bool = True) -> None:
    """``model.load_state_dict(state, strict)`` with a one-line error naming what did not fit,
    or the tensors holding NaN or inf."""
    check_finite_weights(state, path)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing keys: {_describe_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_describe_keys(unexpected)}")
        raise CheckpointError(f"{path} does not fit arch {_arch_label(model)!r}: " + "; ".join(parts))
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise CheckpointError(f"{path} does not fit arch {_arch_label(model)!r}: {detail}") from None


def _arch_label(model: Any) -> str:
    """The architecture name an error shows: a semprobe model's ``arch``, else the class name."""
    return getattr(model, "arch", None) or type(model).__name__


def load_own(path, raw, arch, num_classes, in_channels, normalization, strict, device) -> Checkpoint:
    """A checkpoint in semprobe's schema (``raw``, as read from ``path``), the model built and loaded.

    The options asked for (``arch``, ``num_classes``, ``in_channels``, ``normalization``)
    must agree with what it records, or be ``None``.
    """
    from semprobe.models import ProjectionHeads, create_model, parse_normalization

    for name, given in (("arch", arch), ("num_classes", num_classes), ("in_channels", in_channels)):
        if given is not None and given != raw[name]:
            raise CheckpointError(f"{path} records {name}={raw[name]!r} but {given!r} was asked for")
    norm = raw.get("normalization")
    if normalization is not None and parse_normalization(normalization, raw["in_channels"]) != norm:
        raise CheckpointError(f"{path} records normalization {norm} which differs from the one asked for")
    arch_kwargs = dict(raw.get("arch_kwargs") or {})
    model = create_model(
        raw["arch"], num_classes=raw["num_classes"], in_channels=raw["in_channels"],
        normalization=norm, **arch_kwargs,
    )
    load_weights(model, raw["model"], path, strict)
    model.to(device).eval()

    heads = None
    if raw.get("heads") is not None:
        heads = ProjectionHeads(**raw["heads"]["config"])
        check_finite_weights({f"heads.{k}": v for k, v in raw["heads"]["state_dict"].items()}, path)
        try:
            heads.load_state_dict(raw["heads"]["state_dict"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: its projection heads do not match their recorded config ({exc})") from None
        heads.to(device).eval()

    word_vectors = None
    if raw.get("word_embedding") is not None:
        from semprobe.words import ClassVectors

        word_vectors = ClassVectors.from_dict(raw["word_embedding"])

    return Checkpoint(
        path=path, model=model, arch=raw["arch"], num_classes=raw["num_classes"],
        in_channels=raw["in_channels"], normalization=norm, dataset=raw.get("dataset"),
        classes=raw.get("classes"), heads=heads, word_vectors=word_vectors, epoch=raw.get("epoch"),
        config=dict(raw.get("config") or {}), metrics=dict(raw.get("metrics") or {}),
        optimizer_state=raw.get("optimizer"), scheduler_state=raw.get("scheduler"),
        resume_state=raw.get("resume"), arch_kwargs=arch_kwargs,
    )


# Loading files of every kind is semprobe.models.foreign_checkpoint's, which builds on this
# module; its names stay importable from here, resolved on first use (PEP 562) so that
# neither module imports the other while it loads.
_FOREIGN_NAMES = frozenset({
    "CLASSIFIER_WEIGHT_KEYS", "FIRST_CONV_KEY", "FOREIGN_CONTAINER_KEYS", "NORMALIZATION_NEEDED",
    "STRIPPABLE_PREFIXES", "find_state_dict", "load_checkpoint", "load_foreign_module", "load_zoo_model",
    "strip_prefixes",
})


def __getattr__(name: str) -> Any:
    """The loading names of :mod:`semprobe.models.foreign_checkpoint`, as if defined here."""
    if name in _FOREIGN_NAMES:
        from semprobe.models import foreign_checkpoint

        return getattr(foreign_checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's own names and the loading names it passes on."""
    return sorted(set(globals()) | _FOREIGN_NAMES)
