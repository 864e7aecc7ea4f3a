"""User-facing errors.

Library code raises a subclass of :class:`SemprobeError` with a message that says what
was wrong and what to do about it. The CLI prints that message as one line on stderr and
exits with code 2, without a traceback.
"""


class SemprobeError(Exception):
    """A mistake in the user's input: bad option, missing file, unknown name."""


class ConfigError(SemprobeError):
    """An option value outside its allowed range or an unknown name."""


class DataError(SemprobeError):
    """A dataset that cannot be found, read or split as asked."""


class ModelError(SemprobeError):
    """An unknown architecture, tap or an inconsistent model configuration."""


class CheckpointError(SemprobeError):
    """A checkpoint that cannot be read, is unsafe, or does not fit the model."""


class WordVectorError(SemprobeError):
    """A word-vector provider that cannot be loaded or lacks a class's words."""


def one_line(message: object) -> str:
    """``message`` as one line: its non-blank lines stripped and joined by spaces (how both
    command lines, ``semprobe`` and ``python -m trainers``, print an error)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())
