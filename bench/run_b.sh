#!/usr/bin/env bash
# One GPU call: B alone (needs A's result for the budget: PREV=folder holding A.json), then A again if time allows.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bench-out}
. bench/env.sh
PREV=${PREV:-prev}
export BENCH_VERBOSE=1 TORCH_LOGS=recompiles
M=/tmp/bench/llama-3.1-8b-nf4
[ -f "$M/config.json" ] || timeout 200 python3 bench/gpu.py build --shape llama-3.1-8b --out /tmp/bench --json-out "$OUT/build.json" || exit 1
date +%T
timeout 200 python3 bench/gpu.py train --model $M --config B --budget-from "$PREV/A.json" --warmup 3 --steps 10 --profile --json-out "$OUT/B.json" 2>&1 | grep -v -E "warn|Warn|examples/s"
date +%T
[ -f "$OUT/B.json" ] || timeout 150 python3 bench/gpu.py train --model $M --config B --budget-from "$PREV/A.json" --liger off --warmup 3 --steps 10 --json-out "$OUT/B_noliger.json" 2>&1 | grep -v -E "warn|Warn|examples/s"
date +%T
