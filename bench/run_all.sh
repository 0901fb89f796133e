#!/usr/bin/env bash
# One GPU call (≤ 10 min): install the carried wheels; build the Llama-3.1-8B-shaped model (random weights,
# saved, loaded 4-bit); train A (seed-like) then B (ftlab's recommendation within the memory A used) in the
# same run; then the estimator-accuracy sweep on the 8B and a Llama-3.2-1B shape.
# From the folder holding bench/, ftlab/ and whl/:  OUT=/some/dir bash bench/run_all.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bench-out}
. bench/env.sh
LIMIT=${LIMIT:-585}
export BENCH_VERBOSE=1
Q='warn|Warn|examples/s|it/s\]'
M=/tmp/bench/llama-3.1-8b-nf4
[ -f "$M/config.json" ] || timeout 150 python3 bench/gpu.py build --shape llama-3.1-8b --out /tmp/bench --json-out "$OUT/build.json" || exit 1
echo "t=$SECONDS A"
timeout 130 python3 bench/gpu.py train --model $M --config A --profile --json-out "$OUT/A.json" 2>&1 | grep -v -E "$Q"
[ -f "$OUT/A.json" ] || exit 1
echo "t=$SECONDS B"
timeout 150 python3 bench/gpu.py train --model $M --config B --budget-from "$OUT/A.json" --profile --json-out "$OUT/B.json" 2>&1 | grep -v -E "$Q"
[ -f "$OUT/B.json" ] || timeout 130 python3 bench/gpu.py train --model $M --config B --budget-from "$OUT/A.json" --liger off --profile --json-out "$OUT/B.json" 2>&1 | grep -v -E "$Q"
echo "t=$SECONDS sweep"
[ -f /tmp/bench/llama-3.2-1b-nf4/config.json ] || timeout 60 python3 bench/gpu.py build --shape llama-3.2-1b --out /tmp/bench --json-out "$OUT/build-1b.json"
LEFT=$((LIMIT - SECONDS)); [ $LEFT -gt 30 ] && timeout $LEFT python3 bench/gpu.py sweep --root /tmp/bench --json-out "$OUT/sweep.json" 2>&1 | grep -E "^\[sweep\]|Error|error"
echo "t=$SECONDS done"
