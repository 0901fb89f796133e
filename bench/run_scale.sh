#!/usr/bin/env bash
# NOT YET RUN. One call on nvidia-h200-x2 (≤ 10 min): DDP scaling on the Llama-3.1-8B shape (1 GPU, then 2) and
# FSDP + QLoRA on the Llama-3.1-70B shape built on the meta device, each launched by `accelerate launch` with
# the configs shipped in ftlab/accelerate. From the folder holding bench/, ftlab/ and whl/:
#   OUT=/some/dir bash bench/run_scale.sh      # writes ddp_1gpu.json, ddp_2gpu.json, fsdp_70b.json
# then, anywhere:  python3 bench/scale_gpu.py report --raw OUT --out bench/results/scale_h200x2.json
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/scale-out}
. bench/env.sh
# NVLink multicast stays off on these shared hosts (the device notes): keep these set for every process.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L="python3 -m accelerate.commands.launch"
M=/tmp/bench/llama-3.1-8b-nf4
python3 -c 'import torch; print("gpus", torch.cuda.device_count())'
[ -f "$M/config.json" ] || timeout 150 python3 bench/gpu.py build --shape llama-3.1-8b --out /tmp/bench --json-out "$OUT/build.json" || exit 1
echo "t=$SECONDS ddp 1 GPU"
CUDA_VISIBLE_DEVICES=0 timeout 120 $L --config_file ftlab/accelerate/single_gpu.yaml bench/scale_gpu.py ddp --model $M --json-out "$OUT/ddp_1gpu.json"
echo "t=$SECONDS ddp 2 GPUs"
timeout 120 $L --config_file ftlab/accelerate/ddp.yaml --num_processes 2 bench/scale_gpu.py ddp --model $M --json-out "$OUT/ddp_2gpu.json"
echo "t=$SECONDS fsdp 70b"
timeout 280 $L --config_file ftlab/accelerate/fsdp_qlora.yaml --num_processes 2 bench/scale_gpu.py fsdp70b --json-out "$OUT/fsdp_70b.json"
echo "t=$SECONDS done"
