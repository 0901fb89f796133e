#!/usr/bin/env bash
# One GPU call: install the carried wheels, build the Llama-3.1-8B-shaped model (random weights, saved,
# loaded 4-bit), train A (seed-like) and then B (ftlab's recommendation, within the memory A used).
# Usage (from the folder that holds bench/, ftlab/ and whl/): OUT=/some/dir bash bench/run_throughput.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bench-out}
. bench/env.sh
python3 -c "import torch, transformers, trl, peft, bitsandbytes, datasets, pyarrow; print('torch', torch.__version__, 'tf', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 'bnb', bitsandbytes.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, torch.cuda.get_device_name(0))" || exit 1
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv
M=/tmp/bench/llama-3.1-8b-nf4
[ -f "$M/config.json" ] || timeout 240 python3 bench/gpu.py build --shape llama-3.1-8b --out /tmp/bench --json-out "$OUT/build.json" || exit 1
timeout 150 python3 bench/gpu.py train --model $M --config A --profile --json-out "$OUT/A.json" || exit 1
timeout 240 python3 bench/gpu.py train --model $M --config B --budget-from "$OUT/A.json" --profile --json-out "$OUT/B.json" \
  || timeout 200 python3 bench/gpu.py train --model $M --config B --budget-from "$OUT/A.json" --liger off --profile --json-out "$OUT/B.json"
python3 - "$OUT" <<'PY'
import json, sys
for n in ("A", "B"):
    try:
        d = json.load(open(f"{sys.argv[1]}/{n}.json"))
    except FileNotFoundError:
        print(n, "missing"); continue
    s = d["summary"]
    print(n, d["config"]["label"], f"{s['tokens_per_s']:.0f} tok/s", f"MFU {s['mfu']:.3f}", f"peak alloc {s['peak_allocated_gib']:.2f} GiB",
          f"reserved {s['peak_reserved_gib']:.2f}", f"tokens/step {s['mean_tokens_per_step']:.0f}", "profile", (d.get('profile') or {}).get('share'))
PY
