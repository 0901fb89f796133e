#!/usr/bin/env bash
# Builds the two site directories that bench/run_h200.sh unpacks on the H200 (which reaches no registry), as
# wheels/sf.tgz (ftlab's stack: transformers 5.23, TRL 1.16, ...) and wheels/su.tgz (Unsloth 2026.10.9 with its
# pins: TRL 1.15, datasets 4.8.5; the image's transformers 5.17.0). Both are slimmed: bitsandbytes keeps only its
# CUDA 13.0 library, Unsloth loses its web "studio" and CLI, no __pycache__. ~37 MB together, under the 64 MiB a
# device call carries. xformers and flash-attn are not carried (no wheel for torch 2.11 that fits): Unsloth then
# runs its SDPA path. Usage: bash bench/wheels_h200.sh DEST   (DEST gets wheels/)
set -euo pipefail
DEST=${1:-.gpucarry}; T=$(mktemp -d)
PL="--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
DL="python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PL"
PI="python3 -m pip install -q --no-index --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp $PL"
$DL -d "$T/f" bitsandbytes==0.50.2 trl==1.16.0 peft==0.21.2 transformers==5.23.0 datasets==5.2.0 dill==0.4.1 \
  multiprocess==0.70.19 liger-kernel==0.8.5
$DL -d "$T/u" unsloth==2026.10.9 unsloth-zoo==2026.10.9 trl==1.15.0 datasets==4.8.5 tyro==1.0.17 \
  cut_cross_entropy==25.1.1 torchao==0.18.0 msgspec==0.23.0 hf_transfer==0.1.9 json5==0.17.3 nest-asyncio==1.6.0 \
  structlog==26.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  docstring-parser==0.18.0 shtab==1.13.0 typeguard==4.6.1
$PI --target "$T/site-f" "$T"/f/*.whl
$PI --target "$T/site-u" "$T"/u/*.whl "$T"/f/bitsandbytes-*.whl "$T"/f/peft-*.whl "$T"/f/dill-*.whl "$T"/f/multiprocess-*.whl
for s in "$T/site-f" "$T/site-u"; do
  find "$s/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name '*cuda130.so' -delete
  find "$s" -name __pycache__ -prune -exec rm -rf {} +
done
rm -rf "$T/site-u/studio" "$T/site-u/unsloth_cli"
mkdir -p "$DEST/wheels"
tar -C "$T/site-f" -czf "$DEST/wheels/sf.tgz" . && tar -C "$T/site-u" -czf "$DEST/wheels/su.tgz" .
du -h "$DEST"/wheels/*.tgz; rm -rf "$T"
