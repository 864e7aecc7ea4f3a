"""``python -m trainers METHOD --dataset D --arch A [options] --out RUNDIR`` (also under torchrun).

A user mistake (an unknown name, a number out of range, a run folder that does not fit
or cannot be written) is one line ``trainers: error: ...`` on stderr and exit code 2,
with nothing written. A loss or weights that become NaN or infinite stop the run with
one such line and exit code 1; the run folder keeps the last good epoch. Ctrl-C is one
line ``trainers: interrupted ...`` naming the epoch kept, exit code 130. Under torchrun
only the main process (rank 0) prints.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

USER_ERROR_EXIT_CODE = 2
DIVERGED_EXIT_CODE = 1
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, the shell's convention


def _report(message: object, prefix: str = "trainers: error: ") -> None:
    if os.environ.get("RANK", "0") == "0":
        from semprobe.errors import one_line

        print(f"{prefix}{one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, train, and turn the expected failures into one line and an exit code.

    The command line is parsed before torch is imported (:mod:`trainers.cli`), so
    ``--help``, ``--version`` and a usage error answer at once.
    """
    try:
        from semprobe.errors import SemprobeError
        from trainers.cli import parse_command_line
        from trainers.guards import TrainingDiverged, TrainingInterrupted

        try:
            parsed = parse_command_line(argv)
            if isinstance(parsed, int):  # --help or --version
                return parsed
            # imported here so that Ctrl-C during the (slow) import of torch is one line too
            from trainers.config import resolve
            from trainers.loop import train

            method, given = parsed
            train(resolve(method, given), set(given))
        except SemprobeError as exc:
            _report(exc)
            return USER_ERROR_EXIT_CODE
        except TrainingDiverged as exc:
            _report(exc)
            return DIVERGED_EXIT_CODE
        except TrainingInterrupted as exc:
            _report(exc, prefix="trainers: ")
            return INTERRUPTED_EXIT_CODE
    except KeyboardInterrupt:
        _report("interrupted before training started; no run file was written", prefix="trainers: ")
        return INTERRUPTED_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
