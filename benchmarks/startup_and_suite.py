"""How long the command lines take to answer --help, and how long the whole test suite takes.

Targets (issue "Make the layers visible"): ``semprobe --help`` and ``python -m trainers --help``
under 1 s (neither imports torch); ``make test`` (``python -m pytest -q -n auto``) at most
5 minutes on an idle 2-core machine.

    python benchmarks/startup_and_suite.py            # the two --help times (median of 5)
    python benchmarks/startup_and_suite.py --suite    # and one run of the whole suite
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def seconds(command: list[str]) -> float:
    """Wall time of one run of ``command`` in the repository root (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite once")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for name, command in (("semprobe --help", [sys.executable, "-m", "semprobe", "--help"]),
                          ("python -m trainers --help", [sys.executable, "-m", "trainers", "--help"])):
        times = [seconds(command) for _ in range(args.repeats)]
        print(f"{name:<28} median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    if args.suite:
        wall = seconds([sys.executable, "-m", "pytest", "-q", "-n", "auto", "-p", "no:cacheprovider"])
        print(f"{'make test (pytest -n auto)':<28} {wall:.0f} s ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
