"""RobustBench zoo entries from their local files: ``robustbench:MODEL_NAME``.

The architecture comes from the ``robustbench`` package's registry
(``robustbench.model_zoo.model_dicts``; optional, installed without its timm pin as
:data:`ROBUSTBENCH_EXTRA` says, imported only when a ``robustbench:`` spec is used). The weights
come from RobustBench's own folder layout, ``MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt``, so a
file already downloaded (by semprobe or by ``robustbench.utils.load_model``) is used
offline; they are fetched only with ``download=True`` (``--download``). The file is read
with ``torch.load(..., weights_only=True)`` like every checkpoint.

RobustBench models take [0, 1] pixels and normalize inside, so semprobe wraps them with
``normalization=None``: nothing is normalized twice.

Spec forms: ``robustbench:NAME`` (dataset and threat model from the options) or
``robustbench:DATASET/THREAT_MODEL/NAME`` (all in the spec, e.g.
``robustbench:cifar10/Linf/Standard``, useful when ``--dataset`` names other data).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from semprobe.errors import CheckpointError, ModelError
from semprobe.models.foreign import close_matches

PREFIX = "robustbench:"
ZOO_DATASETS = ("cifar10", "cifar100", "imagenet")
THREAT_MODELS = ("Linf", "L2")
# robustbench 1.1.1 pins timm==1.0.9, which holds open_clip_torch at 2.x (too old for the CLIP word
# vectors): installed without its pins, as `make install` does and README (Conventions, Models) says
ROBUSTBENCH_EXTRA = ("pip install --no-deps robustbench==1.1.1 gdown==5.1.0 && pip install timm geotorch "
                     "torchdiffeq requests pandas jinja2 beautifulsoup4 'setuptools<81'")
DEFAULT_THREAT_MODEL = "Linf"
# buffers some zoo architectures hold for their own input normalization, absent from some
# zoo files (RobustBench loads those files non-strictly); semprobe keeps the constructor's
NORMALIZATION_BUFFERS = ("mu", "sigma", "mean", "std")
# zoo files that hold several snapshots; RobustBench takes the last one
SNAPSHOT_KEY = "last"


@dataclass(frozen=True)
class ZooEntry:
    """One RobustBench model: its name, dataset and threat model, and where its file lies."""

    name: str
    dataset: str
    threat_model: str
    model_dir: Path

    @property
    def path(self) -> Path:
        """RobustBench's own file name: ``MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt``."""
        return self.model_dir / self.dataset / self.threat_model / f"{self.name}.pt"

    @property
    def spec(self) -> str:
        """The fully qualified spec, ``robustbench:DATASET/THREAT_MODEL/NAME``."""
        return f"{PREFIX}{self.dataset}/{self.threat_model}/{self.name}"


def is_zoo_spec(spec: object) -> bool:
    """Whether a ``--ckpt`` value names a RobustBench model (``robustbench:...``)."""
    return str(spec).startswith(PREFIX)


def default_model_dir() -> Path:
    """``$SEMPROBE_CACHE/robustbench`` (``~/.cache/semprobe/robustbench`` by default)."""
    from semprobe.io import cache_dir

    return Path(cache_dir("robustbench"))


def parse_zoo_spec(spec: str, dataset: str | None = None, threat_model: str | None = None,
                   model_dir: str | os.PathLike | None = None) -> ZooEntry:
    """The :class:`ZooEntry` of ``robustbench:NAME`` or ``robustbench:DATASET/THREAT_MODEL/NAME``.

    With the short form, ``dataset`` must be a zoo dataset (cifar10, cifar100, imagenet)
    and ``threat_model`` defaults to Linf. Bad values are one-line CheckpointErrors.
    """
    body = str(spec)[len(PREFIX):]
    parts = body.split("/")
    if len(parts) == 3:
        spec_dataset, spec_threat, name = parts
        _check_agrees("dataset", spec_dataset, dataset if dataset in ZOO_DATASETS else None, spec)
        _check_agrees("threat model", spec_threat, threat_model, spec)
        dataset, threat_model = spec_dataset, spec_threat
    elif len(parts) == 1 and parts[0]:
        name = parts[0]
        if dataset not in ZOO_DATASETS:
            raise CheckpointError(
                f"{spec} needs the zoo's dataset: pass --dataset {'|'.join(ZOO_DATASETS)}, or name it in the spec "
                f"(robustbench:cifar10/Linf/{name}) when --dataset names other data"
            )
    else:
        raise CheckpointError(f"cannot read {spec!r}: use robustbench:NAME or robustbench:DATASET/THREAT_MODEL/NAME")
    threat_model = threat_model or DEFAULT_THREAT_MODEL
    if dataset not in ZOO_DATASETS:
        raise CheckpointError(f"{spec}: unknown RobustBench dataset {dataset!r}; choose {', '.join(ZOO_DATASETS)}")
    if threat_model not in THREAT_MODELS:
        raise CheckpointError(f"{spec}: unknown threat model {threat_model!r}; choose {', '.join(THREAT_MODELS)}")
    root = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    return ZooEntry(name=name, dataset=dataset, threat_model=threat_model, model_dir=root)


def _check_agrees(what: str, in_spec: str, given: str | None, spec: str) -> None:
    """Refuse an option that contradicts the spec's own dataset or threat model."""
    if given is not None and given != in_spec:
        raise CheckpointError(f"{spec} names {what} {in_spec!r} but {given!r} was given; drop one of them")


def import_model_zoo():
    """RobustBench's ``model_dicts`` registry, or a one-line ModelError naming the pip command.

    robustbench 1.1.1 imports ``autoattack``, which PyPI's AutoAttack (the ``pyautoattack``
    package semprobe already uses) provides under that name: it is aliased first.
    """
    try:
        import pyautoattack
        import pyautoattack.state

        sys.modules.setdefault("autoattack", pyautoattack)
        sys.modules.setdefault("autoattack.state", pyautoattack.state)
        with warnings.catch_warnings():  # its imports' deprecation notices say nothing about the user's model
            warnings.simplefilter("ignore")
            from robustbench.model_zoo import model_dicts
    except ImportError as exc:
        raise ModelError(f"robustbench: models need the robustbench package ({exc}); install it with: "
                         f"{ROBUSTBENCH_EXTRA}") from None
    return model_dicts


def zoo_record(entry: ZooEntry) -> dict:
    """RobustBench's registry record of ``entry`` (``{'model': constructor, 'gdrive_id': ...}``)."""
    model_dicts = import_model_zoo()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    models = model_dicts[BenchmarkDataset(entry.dataset)][ThreatModel(entry.threat_model)]
    if entry.name not in models:
        raise CheckpointError(f"unknown RobustBench model {entry.name!r} for {entry.dataset} {entry.threat_model}"
                              f"{close_matches(entry.name, list(models))}")
    record = models[entry.name]
    if isinstance(record.get("gdrive_id"), list):
        raise CheckpointError(f"{entry.spec} is an ensemble of several files; semprobe loads single-file zoo "
                              "entries only")
    return record


def build_zoo_model(entry: ZooEntry) -> nn.Module:
    """The zoo entry's architecture with fresh weights, from RobustBench's registry."""
    return zoo_record(entry)["model"]()


#: Where RobustBench's downloader fetches a Google Drive file from (named in errors).
GDRIVE_URL = "https://docs.google.com/uc?export=download&id={}"


def locate_zoo_file(entry: ZooEntry, download: bool = False) -> Path:
    """The entry's weights file; fetched with RobustBench's downloader only when ``download``."""
    if entry.path.is_file():
        return entry.path
    gdrive_id = zoo_record(entry).get("gdrive_id")
    if not download:
        raise CheckpointError(f"{entry.spec}: no weights at {entry.path}; put RobustBench's file there "
                              "(or pass --model-dir to its folder), or pass --download to fetch it")
    if not gdrive_id:
        raise CheckpointError(f"{entry.spec} has no downloadable file in RobustBench's registry; put its weights "
                              f"at {entry.path}")
    return _download(entry, gdrive_id)


def _download(entry: ZooEntry, gdrive_id: str) -> Path:
    """Fetch the entry's file into RobustBench's layout; a one-line error when it fails."""
    from robustbench.utils import download_gdrive

    created = [folder for folder in (entry.path.parent, *entry.path.parent.parents) if not folder.exists()]
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.path.with_suffix(".pt.part")
    url = GDRIVE_URL.format(gdrive_id)
    try:
        download_gdrive(gdrive_id, partial)
        if not partial.is_file():
            raise OSError("the downloader wrote nothing")
    except Exception as exc:  # gdown raises many types (network, quota, HTML pages)
        partial.unlink(missing_ok=True)
        for folder in created:  # the folders made for the file, innermost first, when still empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{entry.spec}: download from {url} failed ({first}); "
                              f"put the file at {entry.path} by hand") from None
    partial.replace(entry.path)
    return entry.path


def zoo_state_dict(raw: object, module: nn.Module, path: Path) -> dict:
    """The weights of a zoo file, keyed as ``module`` expects.

    As RobustBench reads its files: a ``last`` snapshot is taken, the weights may sit under
    ``state_dict``, the ``module.`` and ``model.`` prefixes are dropped (when on every
    key), and ``model.`` is added back when every key of the architecture has it.
    Normalization buffers (``mu``, ``sigma``, ...) missing from the file keep the
    constructor's values, as RobustBench's loader does. Everything else must match.
    """
    from semprobe.models.foreign_checkpoint import find_state_dict, strip_prefixes

    if isinstance(raw, dict) and isinstance(raw.get(SNAPSHOT_KEY), dict):
        raw = raw[SNAPSHOT_KEY]
    state = strip_prefixes(find_state_dict(raw, path))
    if state and all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    expected = module.state_dict()
    if expected and all(k.startswith("model.") for k in expected) and not any(k.startswith("model.") for k in state):
        state = {f"model.{k}": v for k, v in state.items()}
    for key, value in expected.items():
        if key not in state and key.rsplit(".", 1)[-1] in NORMALIZATION_BUFFERS:
            state[key] = value
    return state
