#!/usr/bin/env bash
# The prepared GPU check (issue "Scale out"): on one GPU, in at most 8 minutes,
#   1. the tests marked `cuda` (they skip without a GPU),
#   2. benchmarks/gpu_check.py: PGD-20 against its floor, TRADES and SCARL training steps with and
#      without AMP and device-resident data, the TRADES reference loop as the anchor, peak memory,
#      written to --out (markdown, and .json beside it).
# Synthetic data, no downloads. On a machine without a GPU, `--device cpu --quick` runs the same
# control flow in seconds (the test suite does; its timings mean nothing).
#
#   bash benchmarks/gpu_check.sh [--device cuda] [--quick] [--out benchmarks/gpu_check_results.md]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
LIMIT=${GPU_CHECK_SECONDS:-480}
CUDA_TESTS=(tests/training/test_cuda_path.py)

started=$(date +%s)
echo "gpu_check: tests marked cuda (${CUDA_TESTS[*]})"
"$PYTHON" -m pytest -q -p no:cacheprovider -m cuda "${CUDA_TESTS[@]}"
left=$(( LIMIT - ($(date +%s) - started) ))
if [ "$left" -le 0 ]; then
    echo "gpu_check: error: the tests used the whole ${LIMIT}s budget" >&2
    exit 1
fi
timeout "$left" "$PYTHON" benchmarks/gpu_check.py "$@"
echo "gpu_check: done in $(( $(date +%s) - started ))s"
