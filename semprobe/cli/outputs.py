"""Writing a command's results into ``--out DIR``: all or nothing, never silently overwriting.

:class:`OutputDir` stages every file in a hidden folder inside ``DIR`` and moves them
into place only when the command finished without error, so a failure leaves no
half-written output. Files that already exist are refused (up front for the names a
command announces, at the latest before anything is moved) unless ``overwrite``; so is a
``DIR`` that cannot be created or written, before any work starts.

A staging folder holds a lock file, locked while its process lives. A process killed
outright (SIGKILL, power loss) leaves its staging folder behind unlocked; the next
:class:`OutputDir` on the same ``DIR`` removes it. A run that fails or is interrupted
removes its staging folder and the folders it created for ``DIR`` if they are empty.
:func:`run_metadata` is the provenance block every result JSON carries.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterable

from semprobe import __version__
from semprobe.errors import SemprobeError
from semprobe.io import check_folder_writable

try:
    import fcntl
except ImportError:  # not POSIX: staging folders of killed runs are left for the user to remove
    fcntl = None

STAGING_PREFIX = ".staging-"
STAGING_LOCK = ".semprobe-staging.lock"
# A staging folder without a lock file (one made by an older semprobe, or one whose lock
# file is being created this instant) counts as stale only once it is this old.
UNLOCKED_STAGING_GRACE_S = 60.0

PROVENANCE_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pyautoattack", "gensim",
                       "open_clip_torch")


class OutputDir:
    """Stage files for ``path`` and move them there on :meth:`commit` (or on leaving the ``with``)."""

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, expected: Iterable[str] = ()):
        self.path = Path(path)
        self.overwrite = overwrite
        if self.path.exists() and not self.path.is_dir():
            raise SemprobeError(f"--out {self.path} exists and is not a directory")
        check_folder_writable(self.path, "--out")
        self._check_free(expected)
        self._staging: Path | None = None
        self._lock: IO | None = None
        self._created: list[Path] = []
        self._names: list[str] = []
        remove_stale_staging(self.path)

    def _check_free(self, names: Iterable[str]) -> None:
        if self.overwrite:
            return
        taken = [name for name in names if (self.path / name).exists()]
        if taken:
            raise SemprobeError(f"{self.path} already holds {', '.join(taken)}; pass --overwrite or choose another --out")

    def file(self, name: str) -> Path:
        """The staging path to write ``name`` to (a plain file name, no folders)."""
        if Path(name).name != name or name == STAGING_LOCK:
            raise ValueError(f"output names are plain file names other than {STAGING_LOCK}, got {name!r}")
        if self._staging is None:
            self._created = [folder for folder in (self.path, *self.path.parents) if not folder.exists()]
            self.path.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.path))
            self._lock = _hold_lock(self._staging / STAGING_LOCK)
        if name not in self._names:
            self._names.append(name)
        return self._staging / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Stage ``obj`` as indented JSON (NaN written as null)."""
        target = self.file(name)
        target.write_text(json.dumps(_json_safe(obj), indent=2) + "\n")
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.file(name)
        target.write_text(text)
        return target

    def save_figure(self, stem: str, figure: Any, formats: Iterable[str] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
        """Stage a matplotlib figure as ``stem.png`` and ``stem.pdf`` and close it."""
        from semprobe.plots import pyplot

        plt = pyplot()

        paths = []
        for fmt in formats:
            target = self.file(f"{stem}.{fmt}")
            figure.savefig(target, format=fmt, dpi=dpi, bbox_inches="tight")
            paths.append(target)
        plt.close(figure)
        return paths

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def commit(self) -> list[Path]:
        """Move every staged file into place; returns the final paths."""
        if self._staging is None:
            return []
        try:
            self._check_free(self._names)
            for name in self._names:
                os.replace(self._staging / name, self.path / name)
        finally:
            self.discard()
        return [self.path / name for name in self._names]

    def discard(self) -> None:
        """Remove the staging folder and everything in it, and the folders made for ``path`` if empty."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        for folder in self._created:  # innermost first; a folder holding anything stays
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self) -> "OutputDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()


def _hold_lock(path: Path) -> IO:
    """Create ``path`` and hold an exclusive lock on it until the returned handle is closed.

    The file is locked under another name and renamed into place, so whoever finds
    ``path`` finds it locked for as long as its process lives.
    """
    unlocked = path.with_name(path.name + ".new")
    handle = open(unlocked, "wb")
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.replace(unlocked, path)
    return handle


def _staging_is_stale(folder: Path) -> bool:
    """True when no living process stages into ``folder``: its lock is free, or it has none and is old."""
    lock = folder / STAGING_LOCK
    try:
        handle = open(lock, "rb")
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > UNLOCKED_STAGING_GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    with handle:
        if fcntl is None:
            return False
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def remove_stale_staging(path: Path) -> list[Path]:
    """Remove the staging folders that killed runs left in ``path``; returns the removed ones."""
    if not path.is_dir():
        return []
    removed = []
    for folder in path.glob(f"{STAGING_PREFIX}*"):
        if folder.is_dir() and not folder.is_symlink() and _staging_is_stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _json_safe(obj: Any) -> Any:
    """Plain JSON types: NaN/inf become null, tuples lists, paths strings, numpy scalars numbers."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "shape", None) == ():
        return _json_safe(item())
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return _json_safe(tolist())
    return obj


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions = {}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_metadata(**settings: Any) -> dict:
    """Provenance for a result JSON: the settings given, versions, command line, time, machine."""
    return {
        "settings": settings,
        "semprobe_version": __version__,
        "packages": _package_versions(),
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
    }
