#!/bin/bash
# Before and after a change, interleaved on one machine (python -m backendnn.bench):
#   git worktree add /tmp/before <commit>; benchmarks/bench_ab.sh /tmp/before . > out.txt
# Two rounds at 64-64-10 (batch 32), then one at 784-512-512-10 (batch 256), each tree in
# turn, with the load average between runs. PYTHON defaults to python3.
BEFORE=${1:?usage: bench_ab.sh BEFORE_TREE AFTER_TREE}
AFTER=${2:?usage: bench_ab.sh BEFORE_TREE AFTER_TREE}
PY=${PYTHON:-python3}
E=backendnn-numpy,backendnn-numpy-fit,backendnn-jax,backendnn-jax-fit,sklearn
export JAX_ENABLE_X64=1
run() {  # tree, sizes, batch, extra
  echo "\$ uptime: $(uptime)"
  echo "\$ [$1, $(git -C "$1" rev-parse --short HEAD)] python -m backendnn.bench --sizes $2 --batch $3 $4 --engines \$E --threads 1"
  (cd "$1" && PYTHONPATH="$1" $PY -m backendnn.bench --sizes "$2" --batch "$3" $4 --engines $E --threads 1 2>&1 \
    | grep -E "^backendnn|^sklearn" | grep -v "^backendnn.bench")
}
for round in 1 2; do
  for tree in "$BEFORE" "$AFTER"; do run "$tree" 64,64,10 32 "--steps 2000"; done
done
for tree in "$BEFORE" "$AFTER"; do run "$tree" 784,512,512,10 256 ""; done
echo "\$ uptime: $(uptime)"
