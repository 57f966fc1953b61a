"""Benchmark: backendnn's training step beside scikit-learn, PyTorch and JAX.

Run it as a module::

    python -m backendnn.bench                                  # every installed engine
    python -m backendnn.bench --sizes 64,64,10 --batch 32
    python -m backendnn.bench --engines backendnn-numpy,sklearn,torch-eager --json out.json
    python -m backendnn.bench --memory          # + peak memory, one process per engine
    python -m backendnn.bench --model lenet --batch 64 --threads 1   # the CNN of issue 17
    python -m backendnn.bench --model resnet --batch 64   # residual CNN, batch norm, dropout

What every engine does
----------------------
Each engine trains the same ReLU MLP (``--sizes``: dense layers with ReLU between
them and a linear output) with softmax cross-entropy and plain minibatch SGD (no
momentum, no weight decay, constant learning rate ``--lr``) on the same float32
data: batches of ``--batch`` samples drawn on the host from ``--seed`` (standard
normal features; labels balanced within each batch), moved to the engine's device
once before any clock starts. Engines whose initial weights can be set start from
backendnn's Glorot-uniform draw for that seed. The data set holds ``--steps`` batches, at
most 128 MiB of them (step engines cycle through them; a fit covers them all once, so
with big batches a fit is a few batches long and its fixed setup weighs more).

``--model lenet`` trains issue 17's LeNet-like CNN instead (:func:`lenet`; ``--sizes`` does
not apply): (N, 1, 28, 28) -> Conv2d(1->16, 3, padding 1) -> ReLU -> MaxPool2d(2) ->
Conv2d(16->32, 3, padding 1) -> ReLU -> MaxPool2d(2) -> Flatten -> Dense(1568->10), the same
loss, SGD and float32, the images the same normal draws as (N, 1, 28, 28). The engines
``backendnn-<backend>`` (and ``-jax-eager``), ``torch-eager`` and ``jax-grad`` train it,
from the same initial weights; the fit engines, ``sklearn`` and ``numpy-matmuls`` train MLPs
only, and the ``-im2col`` engines the CNN only. The baseline is then ``torch-eager``.

``--model resnet`` trains the layers stage's residual CNN (:func:`resnet`): a 3x3 stem
convolution with batch norm, a residual block [Conv-BN-ReLU-Conv-BN] + identity, a
downsampling block (16 -> 32 channels, stride 2; shortcut a 1x1 strided convolution and
batch norm), a global average pool, Dropout(0.2) and Dense(32->10), on the same
(N, 1, 28, 28) images; the steps train (batch statistics, running statistics updated,
fresh dropout masks). ``--model resnet-plain`` is the same network without the batch
norms and the dropout. The engines ``backendnn-<backend>``, ``torch-eager`` (``nn.BatchNorm2d``,
``nn.Dropout``) and ``jax-grad`` (the network as plain JAX functions: batch norm with batch
statistics, dropout masks from ``jax.random`` with a key split each step) train both; for
``--model resnet`` the ``-plain`` engines (``backendnn-numpy-plain``, ``backendnn-jax-plain``,
``backendnn-torch-plain``, ``torch-eager-plain``, ``jax-grad-plain``) train
``resnet-plain`` in the same run, and the derived line ``X / X-plain`` gives what batch
norm and dropout cost (their share of the step is 1 - 1/ratio). Dropout masks differ
between libraries, so only the ``-plain`` rows' losses agree.

The peer engines (``torch-eager``, ``jax-grad``, ``sklearn``, ``numpy-matmuls``) are hand-written
competitors, not backendnn's math: their module, ``bench/peers.py``, is the one place in
the package outside ``_backend/`` that imports array libraries by name, inside the
engine functions, so that the bench imports without any of them.

Engines
-------
``backendnn-<backend>``
    backendnn's own step, :func:`backendnn.train.make_step` with
    ``SGD(momentum=0.0, nesterov=False)`` (on JAX: the ``jax.jit``-compiled step), called
    over pre-sliced batches: forward, backward, update and nothing else.
``backendnn-jax-eager``
    the same step run op by op under ``jax.disable_jit()``.
``backendnn-jax-im2col``, ``backendnn-torch-im2col`` (``--model lenet`` only)
    backendnn's step with its native convolutions switched off (``_backend.native_conv2d``
    and its two gradient convolutions answer None): the portable im2col/col2im path that
    NumPy always takes, to show what the native path buys. The JAX one compiles
    ``make_step``'s plain function apart, so it shares no compiled step with the native one.
``backendnn-<backend>-fit``
    a whole :class:`backendnn.MLPClassifier` ``fit`` (``solver="sgd"``, ``momentum=0``,
    ``shuffle=False``, ``max_iter=1``) over the same batches, its time divided by the
    number of batches: the bare loop plus everything the library adds.
``backendnn-<backend>-dask-fit`` (named in ``--engines`` only; needs dask)
    the same ``fit`` on ``dask.array.from_array`` of the same rows in 10 row chunks (issue
    16's streamed epoch: each chunk computed once, two at a time moved to the device while
    the batches before train), on backend ``<backend>``. The derived ratio
    ``backendnn-<backend>-fit / backendnn-<backend>-dask-fit`` is its throughput against
    the in-memory fit's.
``sklearn``
    scikit-learn's ``MLPClassifier`` with the same settings, one-epoch ``fit`` time
    divided by the number of batches.
``torch-eager``
    a plain PyTorch loop (``nn.Linear``, for the CNN ``nn.Conv2d`` and ``nn.MaxPool2d``;
    ``F.cross_entropy``, ``torch.optim.SGD``), on CUDA when available.
``jax-grad``
    a hand-written ``jax.value_and_grad`` + ``jax.jit`` step (learning rate a constant); for
    the CNN ``lax.conv_general_dilated`` and a ``lax.reduce_window`` max-pool.
``numpy-matmuls``
    the floor of any NumPy engine: only the step's matrix products (forward a W, backward
    a^T dz and dz W^T), the same shapes and BLAS calls, and nothing else (no bias,
    activation, loss or update). ``x sklearn`` of this row bounds what a NumPy engine can
    reach against scikit-learn on the same BLAS.

Timing
------
Every engine is first prepared: data moved, ``--warmup`` untimed steps run (JAX compiles
here), or for the fit engines one untimed ``fit`` over the same batches as the timed
ones (JAX compiles the epoch for that shape here). Then ``--repeats`` rounds run the
engines interleaved, the order rotated each round, so that load from elsewhere on the
machine falls on all of them alike, with an untimed ``--cooldown`` pause before each
block (thread pools such as OpenBLAS's spin for a while after their last call and would
slow the engine that follows). In a round a step engine runs one block of ``--steps /
--repeats`` steps and a fit engine one whole ``fit`` (one epoch over every batch; its
time divided by the batches); device work is synchronised before the clock is read.
ms/step is the median over rounds.
``epoch_ms_per_step`` in the JSON output is the epoch alone as timed inside ``fit``.
The CPU ms/step column is the process's CPU time (all its threads) per step, median
over rounds: wall time far above CPU time / threads means the engine waited (for the
GPU, or for cores busy with other work; the header gives the load average).

FLOPs counted
-------------
Only matrix products, 2*m*n*k each, for batch m and a dense layer n_in -> n_out:
forward ``x @ W`` (2 m n_in n_out), backward ``dW = x^T dz`` (2 m n_in n_out) and
``dx = dz W^T`` (2 m n_in n_out) for every layer but the first, whose input gradient
no engine forms. Per step: 6 m sum(n_in n_out) - 2 m n_0 n_1. Element-wise work
(bias, ReLU, softmax, the update) is not counted. TFLOP/s = that / (s per step) / 1e12.

``--model lenet`` (:func:`lenet_flops`): each convolution counts as the matrix product it
is, 2 N C_out H_out W_out C_in k_h k_w (conv 1: 2 N 16 28 28 1 9, conv 2: 2 N 32 14 14 16 9),
and the dense layer 2 N 1568 10; each three times (forward, dW, dx) except the first
convolution's dx. Per step 5,964,672 N (382 MFLOP at N = 64). Pooling, ReLU, bias, loss and
update are not counted; the im2col engines' extra copies neither.

``--model resnet`` and ``resnet-plain`` (:func:`resnet_flops`): the six convolutions (stem
1->16, 16->16 twice at 28x28; 16->32 stride 2, 32->32 and the 1x1 16->32 shortcut at 14x14)
and the dense layer 2 N 32 10, each three times but the stem's dx: 38,988,672 N per step
(2.50 GFLOP at N = 64). Batch norm, dropout, ReLU, the pool, the residual adds, loss and
update are not counted, so the two models count the same FLOPs.

Threads: ``--threads n`` caps BLAS and OpenMP pools (``threadpoolctl``, and the
``*_NUM_THREADS`` variables for libraries loaded later) and torch's intra-op threads, and
with 1 XLA's Eigen pool (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``, set before JAX
loads); ``--memory``'s subprocesses inherit it. The header gives torch's thread count, and
a warning (suggesting ``--threads 1``) when a pool has more threads than the cores this
process may use or the load average is at least half of them: on a busy 2-core machine
torch-eager took 26 ms a step with its default threads, 0.22 ms with ``--threads 1``.

Ratios: every one is a speed-up, > 1 when the engine is faster than its reference: the
``x BASELINE`` column is BASELINE's ms / the engine's ms, and each derived line ``A / B`` is
A's ms / B's ms (B's speed-up over A); three significant figures.

Matmul precision: ``--precision highest|tf32`` calls
:func:`backendnn.set_matmul_precision` before any engine runs (it sets JAX, PyTorch
and CuPy alike); the ``precision`` column says what each engine used. CPUs always
compute full float32.

Peak memory (``--memory``): each engine runs in its own subprocess so peaks do not mix.
Host: peak resident set size (Linux ``VmHWM``, reset after the engine's libraries are
imported; else ``resource.getrusage``) and its rise over the RSS at that point (the
data copies and everything the engine allocated). The same for ``--model lenet``; the
data (``n_batches`` batches of N x 784 float32) is in every engine's rise alike, so a
small ``--steps`` keeps the rise close to the step's own working memory.
GPU: the peak of bytes in use, from ``torch.cuda.max_memory_allocated`` (torch
engines), a CuPy memory hook on the memory pool (its callbacks slow CuPy's
allocations, so take timings from a run without ``--memory``), and JAX's
``memory_stats()["peak_bytes_in_use"]``.

Array libraries are imported inside the engine functions only: every peer is optional.
Several GPU libraries share one device in a run, so the bench sets
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (unless set) before JAX loads.

Modules
-------
Each imports only from those above it in this list (and from the library):

``problem``
    :class:`Problem`, :func:`make_problem`, :func:`lenet`, :func:`resnet`,
    :func:`step_flops`, :func:`lenet_flops`, :func:`resnet_flops`, :func:`auto_steps`.
``runner``
    :class:`Runner`, the block timers every engine builds on, ``--threads``.
``peers``
    the peer engines.
``engines``
    backendnn's engines and the table of all of them, :data:`ENGINES`.
``memory``
    resident set size and device peaks for ``--memory`` (standard library only).
``rounds``
    :func:`measure`: the interleaved rounds and the result rows.
``report``
    the machine description, the derived ratios, the printed header and table.
``cli``
    the arguments and :func:`main`; ``__main__`` runs it.
"""

from .cli import main
from .engines import ENGINES, Engine, default_engines, unavailable
from .problem import (
    Problem,
    auto_steps,
    lenet,
    lenet_flops,
    make_problem,
    resnet,
    resnet_flops,
    step_flops,
)
from .report import format_table
from .rounds import measure
from .runner import Runner

__all__ = [
    "ENGINES",
    "Engine",
    "Problem",
    "Runner",
    "auto_steps",
    "default_engines",
    "format_table",
    "lenet",
    "lenet_flops",
    "main",
    "make_problem",
    "measure",
    "resnet",
    "resnet_flops",
    "step_flops",
    "unavailable",
]
