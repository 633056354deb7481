#!/usr/bin/env bash
# detargs check against real SGLang 0.5.17 servers on one H200 (or H100): A = detargs launch,
# B = the same with the prefill CUDA graph left breakable, C = SGLang's defaults.
#
# Run ON the GPU machine, from the root of a checkout that holds the recipe of
# ../shared/gpu-sglang/README.md under .gpu/ (.gpu/build with whl/ and fidata.zip,
# .gpu/tiny-llama with the tokenizer and config, .gpu/gpu-sglang/ with install.sh and stubs/):
#
#     bash tools/gpu_check_run.sh            # files go to $OUT (default /tmp/detargs-check)
#
# Packages the image lacks travel as wheels in .whl/ (only if `import httpx` fails there).
# Everything ends within about 9 minutes: servers start in ~1-2.5 min, checks take seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/detargs-check}
mkdir -p "$OUT"
SITE=/tmp/site
started=$(date +%s)

bash .gpu/gpu-sglang/install.sh .gpu/build "$SITE" || exit 1
export PYTHONPATH="$PWD/src:$SITE:$PWD/.gpu/gpu-sglang/stubs${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
if ! python3 -c "import httpx" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl || { echo "httpx missing and no usable .whl/"; exit 1; }
fi
python3 -c "import detargs, detargs.check.runner, pynvml, packaging; print('detargs', detargs.__version__)" || exit 1

rm -rf /tmp/tiny
python3 tools/gpu_model.py .gpu/tiny-llama /tmp/tiny --layers 8 || exit 1
echo "setup took $(( $(date +%s) - started )) s"

python3 tools/gpu_check_run.py --model /tmp/tiny --out "$OUT" --budget $(( 520 - ($(date +%s) - started) ))
