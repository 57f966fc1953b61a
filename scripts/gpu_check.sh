#!/usr/bin/env bash
# The GPU check: the test suite on CuPy, JAX (GPU) and torch (CUDA), the no-sync proof,
# every example on CuPy, then the benchmark (alone, for clean timings). For a machine that
# has cupy, jax, torch, numpy, pytest, scikit-learn and safetensors but reaches no
# package registry.
#
# Prepare here (with network), from the repository root:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl array-api-compat array-api-strict
# then copy the repository with .whl/ to the GPU machine and run:
#   OUT=/some/dir scripts/gpu_check.sh
# $OUT (default ./gpu-out) receives two files: summary.txt (also printed last) and
# gpu-check.tgz with every log, JSON and figure.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=$(realpath -m "${OUT:-gpu-out}")
OUT=$(mktemp -d /tmp/bnn-gpu.XXXX)
mkdir -p "$RESULTS"
summarize() {
    {
        cat "$OUT/gpu.txt"
        for log in "$OUT"/*.log; do
            echo "--- $(basename "$log" .log):"
            grep -aE "^[0-9]+ (passed|failed)|passed|failed|=== |accuracy|figure:|samples/s|Error|no synchronisation|x torch-eager|^backendnn-|^torch-eager|^jax-grad" "$log" \
                | grep -av "%|" | tail -n 30
        done
    } >"$RESULTS/summary.txt" 2>&1
    tar czf "$RESULTS/gpu-check.tgz" -C "$OUT" .
    cat "$RESULTS/summary.txt"
}
trap summarize EXIT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/bnn-site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/bnn-site:$PWD PYTHONUNBUFFERED=1 JAX_ENABLE_X64=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU below
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 - <<'PY' | tee -a "$OUT/gpu.txt"
import array_api_compat, array_api_strict, cupy, jax, numpy, sklearn, torch
print("cupy", cupy.__version__, "jax", jax.__version__, jax.devices(), "torch", torch.__version__,
      "numpy", numpy.__version__, "sklearn", sklearn.__version__,
      "array_api_compat", array_api_compat.__version__, "array_api_strict", array_api_strict.__version__)
PY

status=0
start() {  # start NAME SECONDS CMD...: run in the background, log to $OUT/NAME.log
    local name=$1 limit=$2; shift 2
    ( t0=$SECONDS; timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; rc=$?
      echo "=== $name: exit $rc in $((SECONDS - t0)) s" >>"$OUT/$name.log"; exit $rc ) &
    pids+=("$!:$name")
}
finish() {  # wait for every started job
    for entry in "${pids[@]}"; do
        wait "${entry%%:*}" || status=1
    done
    pids=()
}

# Phase 1, in parallel: correctness on every GPU backend.
pids=()
PYTEST="python3 -m pytest -q -p no:cacheprovider --maxfail=20"
LIMIT=${QUICK:+150}; LIMIT=${LIMIT:-330}
start tests-cupy $LIMIT env BACKENDNN_BACKENDS=cupy $PYTEST tests
start tests-jax-gpu $LIMIT env BACKENDNN_BACKENDS=jax $PYTEST tests
start tests-torch-cuda $LIMIT env BACKENDNN_BACKENDS=torch $PYTEST tests
start no-sync 120 python3 scripts/check_no_sync.py
# zero-copy moves on the GPU: CuPy <-> torch share, CuPy <-> JAX copy unless copy=False
DLPACK_CHECK=$(cat <<'PY'
import cupy, jax, numpy as np, torch
from backendnn import _backend
ptr = {cupy.ndarray: lambda a: a.data.ptr, torch.Tensor: lambda t: t.data_ptr()}
def pointer(a):
    return ptr[type(a)](a) if type(a) in ptr else a.unsafe_buffer_pointer()
c = cupy.arange(6.0)
t = _backend.to_backend(c, "torch", torch.device("cuda"))
assert pointer(t) == pointer(c), "cupy -> torch should share"
assert pointer(_backend.to_backend(t, "cupy", cupy.cuda.Device())) == pointer(c), "torch -> cupy"
x = _backend.to_backend(c, "jax", jax.devices("gpu")[0])
assert pointer(x) != pointer(c), "cupy -> jax should copy"
shared = _backend.to_backend(c, "jax", jax.devices("gpu")[0], copy=False)
assert pointer(shared) == pointer(c), "cupy -> jax with copy=False should share"
back = _backend.to_backend(x, "cupy", cupy.cuda.Device())
assert pointer(back) != pointer(x), "jax -> cupy should copy"
for a in (t, x, shared, back):
    np.testing.assert_array_equal(_backend.to_numpy(a), np.arange(6.0))
print("dlpack-gpu: passed")
PY
)
start dlpack-gpu 120 python3 -c "$DLPACK_CHECK"
# every example on CuPy (issue 6), one after another beside the tests: each takes seconds
start examples-cupy 300 bash -c 'rc=0; for ex in train_digits train_digits_cnn xor activations gradient_check gpu_training; do
    echo "=== examples/$ex.py --backend cupy"; python3 "examples/$ex.py" --backend cupy --out "$1" || rc=1
done; exit $rc' _ "$OUT"
finish

if [ -n "${QUICK:-}" ]; then  # a short lease: one bench at each size, then stop
    E=backendnn-cupy,backendnn-jax,backendnn-torch,torch-eager,jax-grad
    Q="timeout 60 python3 -m backendnn.bench --repeats 2 --baseline torch-eager"
    $Q --sizes 784,4096,4096,10 --batch 8192 --precision highest --engines "$E" \
        --json "$OUT/bench-big.json" >"$OUT/bench-big.log" 2>&1
    $Q --sizes 784,512,512,10 --batch 256 --engines "$E,backendnn-cupy-fit,backendnn-jax-fit" \
        --json "$OUT/bench-small.json" >"$OUT/bench-small.log" 2>&1
    timeout 120 python3 -m backendnn.bench --memory --steps 14 --repeats 2 \
        --sizes 784,4096,4096,10 --batch 8192 --baseline torch-eager \
        --engines backendnn-cupy-fit,backendnn-jax-fit,backendnn-torch-fit,torch-eager \
        --json "$OUT/bench-memory.json" >"$OUT/bench-memory.log" 2>&1
    exit $status
fi

# Phase 2: the GPU example on the other GPU backends.
start example-gpu-jax 150 python3 examples/gpu_training.py --backend jax --out "$OUT"
start example-gpu-torch 150 python3 examples/gpu_training.py --backend torch --out "$OUT"
finish

# Phase 3, one at a time: the benchmark.
ENGINES=backendnn-cupy,backendnn-jax,backendnn-torch,torch-eager,jax-grad
bench() {
    local name=$1; shift
    timeout 150 python3 -m backendnn.bench --repeats 3 --json "$OUT/$name.json" "$@" \
        >"$OUT/$name.log" 2>&1 || status=1
}
bench bench-big-highest --sizes 784,4096,4096,10 --batch 8192 --engines "$ENGINES" \
    --baseline torch-eager --precision highest
bench bench-big-tf32 --sizes 784,4096,4096,10 --batch 8192 --engines "$ENGINES" \
    --baseline torch-eager --precision tf32
bench bench-small --sizes 784,512,512,10 --batch 256 --baseline torch-eager \
    --engines "$ENGINES,backendnn-jax-eager,backendnn-cupy-fit,backendnn-jax-fit"
bench bench-memory --sizes 784,4096,4096,10 --batch 8192 --memory \
    --engines backendnn-cupy,backendnn-cupy-fit,backendnn-jax-fit,backendnn-torch,torch-eager
exit $status
