#!/usr/bin/env bash
# The GPU check: the test suite on CuPy, JAX (GPU) and torch (CUDA), the no-sync proof,
# the GPU examples and the benchmark, on a machine that has cupy, jax, torch, numpy,
# pytest, scikit-learn and safetensors but reaches no package registry.
#
# Prepare here (with network), from the repository root:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl array-api-compat array-api-strict
# then copy the repository with .whl/ to the GPU machine and run:
#   OUT=/some/dir scripts/gpu_check.sh [quick]
# Logs and JSON land in $OUT (default ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/bnn-site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/bnn-site:$PWD PYTHONUNBUFFERED=1 JAX_ENABLE_X64=1
status=0
run() {  # run NAME CMD...: log to $OUT/NAME.log, remember failures
    local name=$1; shift
    echo "=== $name: $*"
    local t0=$SECONDS
    "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 4 "$OUT/$name.log"
    echo "=== $name: exit $rc in $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 - <<'PY' | tee -a "$OUT/gpu.txt"
import array_api_compat, array_api_strict, cupy, jax, numpy, sklearn, torch
print("cupy", cupy.__version__, "jax", jax.__version__, jax.devices(), "torch", torch.__version__,
      "numpy", numpy.__version__, "sklearn", sklearn.__version__,
      "array_api_compat", array_api_compat.__version__, "array_api_strict", array_api_strict.__version__)
PY
PYTEST="python3 -m pytest -q -p no:cacheprovider -x"
run tests-cupy env BACKENDNN_BACKENDS=cupy $PYTEST tests
run tests-jax-gpu env BACKENDNN_BACKENDS=jax $PYTEST tests
run tests-torch-cuda env BACKENDNN_BACKENDS=torch $PYTEST tests
run no-sync python3 scripts/check_no_sync.py
run example-digits-cupy python3 examples/train_digits.py --backend cupy --out "$OUT"
run example-gpu-cupy python3 examples/gpu_training.py --backend cupy --out "$OUT"
run example-gpu-jax python3 examples/gpu_training.py --backend jax --out "$OUT"
ENGINES=backendnn-cupy,backendnn-jax,backendnn-torch,torch-eager,jax-grad
for precision in highest tf32; do
    run "bench-big-$precision" python3 -m backendnn.bench --sizes 784,4096,4096,10 --batch 8192 \
        --engines "$ENGINES" --baseline torch-eager --precision "$precision" \
        --json "$OUT/bench-big-$precision.json"
done
run bench-small python3 -m backendnn.bench --sizes 784,512,512,10 --batch 256 \
    --engines "$ENGINES,backendnn-jax-eager" --baseline torch-eager --json "$OUT/bench-small.json"
run bench-memory python3 -m backendnn.bench --sizes 784,4096,4096,10 --batch 8192 \
    --engines backendnn-cupy,backendnn-torch,torch-eager --memory --json "$OUT/bench-memory.json"
cat "$OUT"/bench-*.log
exit $status
