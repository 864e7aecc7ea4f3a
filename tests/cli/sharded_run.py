"""``semprobe`` as torchrun runs it, with two test knobs (a script for test_sharded_commands.py).

``SQUARE_QUERIES=N`` gives AutoAttack's Square N queries instead of 5,000, so that a test can
afford it. ``FAIL_AT`` makes process 1 of the job fail: ``setup`` with a DataError while it
loads the images (bad input on one process), ``attack`` with a RuntimeError at its second
attacked chunk (a bug, while process 0 goes on attacking).
"""

import os
import sys

from semprobe.attacks import autoattack
from semprobe.attacks.specs import AttackSpec
from semprobe.cli import evaluate, main
from semprobe.errors import DataError

if os.environ.get("SQUARE_QUERIES"):
    autoattack.STANDARD_SQUARE_QUERIES = int(os.environ["SQUARE_QUERIES"])

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

main(sys.argv[1:])
