# Sourced by the bench/run_*.sh scripts: the carried wheels (trl, bitsandbytes, datasets, ... in $WHL) go into
# /tmp/site, once per machine, and every process runs offline. Sets OUT (created) and WHL, and PYTHONPATH.
OUT=${OUT:-/tmp/bench-out}; WHL=${WHL:-whl}
mkdir -p "$OUT"
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  [ -d /tmp/site/trl ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHL"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
