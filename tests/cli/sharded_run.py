"""``semprobe`` as torchrun runs it, with test knobs (a script for test_sharded_commands.py).

``SQUARE_QUERIES=N`` gives AutoAttack's Square N queries instead of 5,000, so that a test can
afford it. ``AA_WARNS=1`` makes AutoAttack warn once per run (:func:`warn_every_run`), so that
a test sees the warnings of both processes gathered. ``FAIL_AT`` makes process 1 of the job
fail: ``setup`` with a DataError while it loads the images (bad input on one process),
``attack`` with a RuntimeError at its second attacked chunk (a bug, while process 0 goes on
attacking). Imported, it only defines :func:`warn_every_run`.
"""

import os
import sys

from semprobe.attacks import autoattack
from semprobe.attacks.specs import AttackSpec
from semprobe.cli import evaluate, main
from semprobe.errors import DataError


def warn_every_run() -> None:
    """AutoAttack's dynamic-model check warns on every run, through AutoAttack's own logger."""
    import pyautoattack.checks

    def warns(model, x, is_tf_model=False, logger=None):
        logger.warning(f"test warning for {len(x)} images")

    pyautoattack.checks.check_dynamic = warns


def apply_knobs() -> None:
    """The knobs the environment asks for (see the module's docstring)."""
    if os.environ.get("SQUARE_QUERIES"):
        autoattack.STANDARD_SQUARE_QUERIES = int(os.environ["SQUARE_QUERIES"])
    if os.environ.get("AA_WARNS"):
        warn_every_run()
    if os.environ.get("RANK") == "1" and os.environ.get("FAIL_AT") == "setup":
        def no_images(*args, **kwargs):
            raise DataError("process 1 finds no digits here")

        evaluate.load_images = no_images
    if os.environ.get("RANK") == "1" and os.environ.get("FAIL_AT") == "attack":
        run, calls = AttackSpec.run, []

        def second_chunk_fails(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("boom in the second chunk")
            return run(self, *args, **kwargs)

        AttackSpec.run = second_chunk_fails


if __name__ == "__main__":
    apply_knobs()
    main(sys.argv[1:])
