#!/usr/bin/env bash
# Issue 23's estimator sweep on one H200 (written; not run yet: no device time was left in the session that
# wrote it). One call (~8 min expected: builds ~3 min, 4 sweeps ~1 min each, recommend_config checks):
#   cd .gpucarry && OUT=$OUT bash bench/run_estimator_h200.sh      # .gpucarry: bench/, ftlab/, wheels/sf.tgz
# Builds the Llama-3.1-8B, Qwen2.5-7B, Mistral-7B and SmolLM2-135M shapes (random weights, 4-bit), then per
# family one process: bench/common.py's family_sweep_configs (17 clean rows in all) and recommend_config
# checked under RECOMMEND_BUDGET_GIB. Afterwards here: tar -xzf raw.tgz && python bench/report_h200.py --estimator --raw raw
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/est-out}; W=/tmp/h200; R=/tmp/bench; LIMIT=${LIMIT:-560}
mkdir -p "$W/raw" "$OUT"
exec > >(tee -a "$W/raw/log_estimator.txt") 2>&1
[ -d "$W/site-f/trl" ] || { mkdir -p "$W/site-f" && tar -C "$W/site-f" -xzf wheels/sf.tgz || exit 1; }
export PYTHONPATH=$W/site-f:$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 \
  TOKENIZERS_PARALLELISM=false
Q='it/s\]|s/it\]|examples/s\]|FutureWarning|warnings.warn|UserWarning'
for fam in smollm2-135m llama-3.1-8b qwen2.5-7b mistral-7b; do
  [ $((LIMIT - SECONDS)) -lt 90 ] && { echo "t=$SECONDS skip $fam: time"; continue; }
  if [ ! -f "$R/$fam-nf4/config.json" ]; then
    timeout 200 python3 bench/gpu.py build --shape $fam --out $R --json-out $W/raw/build-$fam.json 2>&1 | grep -vE "$Q"
    rm -rf "$R/$fam-bf16"
  fi
  timeout $((LIMIT - SECONDS - 5)) python3 bench/h200.py sweep --family $fam --root $R --json-out $W/raw/sweep-$fam.json \
    2>&1 | grep -E "^\[sweep\]|^\[recommend\]|Error|error" | cut -c1-300
  echo "t=$SECONDS $fam done"
done
tar -C $W -czf "$OUT/raw.tgz" raw
