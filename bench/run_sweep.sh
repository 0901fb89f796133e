#!/usr/bin/env bash
# One GPU call: the estimator-accuracy sweep (bench/common.py: sweep_configs), one process per model load
# (8B with and without kbit prep, 1B with and without), so that no model outlives its group.
# GROUPS overrides the groups, e.g. GROUPS="llama-3.2-1b:0".
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bench-out}
. bench/env.sh
GROUPS_=${GROUPS:-"llama-3.1-8b:1 llama-3.1-8b:0 llama-3.2-1b:1 llama-3.2-1b:0"}
for g in $GROUPS_; do
  s=${g%%:*}
  [ -f "/tmp/bench/$s-nf4/config.json" ] || timeout 150 python3 bench/gpu.py build --shape "$s" --out /tmp/bench --json-out "$OUT/build-$s.json" 2>&1 | grep "^\[build\]"
  timeout 300 python3 bench/gpu.py sweep --root /tmp/bench --group "$g" --json-out "$OUT/sweep-${g/:/-kp}.json" 2>&1 | grep -E "^\[sweep\]|Error"
done
