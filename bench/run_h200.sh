#!/usr/bin/env bash
# Issue 23 on one H200, in one or more device calls back to back (the machine keeps /tmp while warm):
# (items: A, B, U + round; D: B with LoRA dropout 0, a candidate for raising B; P: a profile of B)
#   OUT=$OUT LIMIT=540 bash bench/run_h200.sh A1 B1 U1 A2 B2 U2 A3 B3 U3 P
# From the folder holding bench/, ftlab/ and wheels/{sf,su}.tgz (bench/README.md: the two site directories,
# ftlab's stack and Unsloth's, built by bench/wheels_h200.sh). Each item is one fresh process: A/B/U + round,
# P a 2-step kernel profile of B. Items whose result exists already are skipped; an item starts only if its
# usual time fits in what is left of LIMIT seconds. Everything measured lands in /tmp/h200/raw and is packed
# into $OUT/raw.tgz at the end of every call.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/h200-out}; LIMIT=${LIMIT:-540}; N=${EXAMPLES:-128}
W=/tmp/h200; R=/tmp/bench; M=$R/llama-3.1-8b-nf4
mkdir -p "$W/raw" "$OUT"
LOG=$W/raw/log_$(date +%H%M%S).txt
exec > >(tee -a "$LOG") 2>&1
echo "t=$SECONDS start $(date -u '+%F %T UTC') items: $*"
if [ ! -f "$W/site-u/unsloth/__init__.py" ]; then
  mkdir -p "$W/site-f" "$W/site-u"
  tar -C "$W/site-f" -xzf wheels/sf.tgz && tar -C "$W/site-u" -xzf wheels/su.tgz || exit 1
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false \
  UNSLOTH_DISABLE_STATISTICS=1 UNSLOTH_OFFLINE=1 UNSLOTH_DISABLE_LLM_COMPRESSOR_AUTOINSTALL=1 \
  UNSLOTH_COMPILE_LOCATION=$W/unsloth_compiled_cache HF_HOME=$W/hf
PF=$W/site-f:$PWD; PU=$W/site-u:$PWD
Q='it/s\]|s/it\]|examples/s\]|FutureWarning|warnings.warn|UserWarning'
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
if [ ! -f "$M/config.json" ]; then
  PYTHONPATH=$PF timeout 200 python3 bench/gpu.py build --shape llama-3.1-8b --out $R --json-out $W/raw/build.json 2>&1 \
    | grep -vE "$Q"
  [ -f "$M/config.json" ] || exit 1
  rm -rf "$R/llama-3.1-8b-bf16"
fi
[ -f $W/raw/peak.json ] || PYTHONPATH=$PF timeout 60 python3 bench/h200.py peak --json-out $W/raw/peak.json
echo "t=$SECONDS built"

# A_BUDGET_FROM=FILE: an earlier A result (same shape, same max length) for a B that runs before this call's A
# usual seconds per item (load + epoch), overridable: NEED_A=110 NEED_B=85 NEED_U=130 NEED_P=70
need() { case $1 in A) echo "${NEED_A:-110}";; B|D) echo "${NEED_B:-85}";; U) echo "${NEED_U:-130}";; P) echo "${NEED_P:-70}";; esac; }
latest() { ls -t $W/raw/$1[0-9]*.json 2>/dev/null | head -1; }  # a result of the same kind, any round
for item in "$@"; do
  # A1 = config A, round 1; A1h2 = the second half of that epoch in its own process (an A epoch over 2,000
  # examples is longer than one device call)
  k=${item:0:1}; rest=${item:1}; r=${rest%%h*}; sh=(); [[ $rest == *h* ]] && sh=(--shard "${rest##*h}/2")
  f=$W/raw/$item.json
  [ -f "$f" ] && continue
  left=$((LIMIT - SECONDS)); n=$(need "$k"); [ ${#sh[@]} -gt 0 ] && n=$(( (n + 40) / 2 ))
  if [ "$left" -lt "$n" ]; then echo "t=$SECONDS skip $item: ${left}s left, it needs ~${n}s"; continue; fi
  to=$((left - 5)); [ $to -gt $((2 * n)) ] && to=$((2 * n))
  a=$W/raw/A$r.json; [ -f "$a" ] || a=$(latest A); [ -n "$a" ] || a=${A_BUDGET_FROM:-}  # B before any A here
  b=$W/raw/B$r.json; [ -f "$b" ] || b=$(latest B)
  echo "t=$SECONDS run $item (timeout ${to}s)"
  case $k in
    A) PYTHONPATH=$PF timeout $to python3 bench/h200.py epoch --config A --round "$r" --model $M --examples $N "${sh[@]}" --json-out "$f" ;;
    B) PYTHONPATH=$PF timeout $to python3 bench/h200.py epoch --config B --round "$r" --model $M --examples $N "${sh[@]}" --budget-from "$a" --json-out "$f" ;;
    D) PYTHONPATH=$PF timeout $to python3 bench/h200.py epoch --config D --round "$r" --model $M --examples $N "${sh[@]}" --budget-from "$a" --json-out "$f" ;;
    U) PYTHONPATH=$PU timeout $to python3 bench/h200.py epoch --config U --round "$r" --model $M --examples $N "${sh[@]}" --batch-from "$b" --json-out "$f" ;;
    P) PYTHONPATH=$PF timeout $to python3 bench/gpu.py train --config B --model $M --budget-from "$a" --warmup 3 --steps 3 --examples 200 --profile --json-out "$f" ;;
  esac 2>&1 | grep -vE "$Q" | cut -c1-400
done
echo "t=$SECONDS done"
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader
tar -C $W -czf "$OUT/raw.tgz" raw
