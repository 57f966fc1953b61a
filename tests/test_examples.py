"""The examples run: each exits 0 with small sizes, prints the figure it promises and writes a
valid PNG into a new temporary folder (nothing into the current one), on NumPy and on one
other backend.

The other backend is the first non-NumPy one named in ``BACKENDNN_BACKENDS`` (as nox sets
it) or else JAX or PyTorch, whichever is installed; none installed skips those runs.
All examples of one backend run at once, as subprocesses, to keep this file fast.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backendnn import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_S = 240


def _load(name: str):
    """A helper module of ``examples/`` (not a package: the scripts import it by folder)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the small-size flags each example runs with, shared with the documentation's gallery
SMALL_ARGS = _load("_small").SMALL_ARGS
# script -> the figure it writes
FIGURES = {
    "train_digits.py": "digits.png",
    "train_digits_cnn.py": "digits_cnn.png",
    "train_resnet.py": "resnet.png",
    "callbacks_and_checkpoints.py": "callbacks_and_checkpoints.png",
    "xor.py": "xor.png",
    "activations.py": "activations.png",
    "gradient_check.py": "gradient_check.png",
    "gpu_training.py": "gpu_training.png",
}


def _other_backend() -> str | None:
    env = os.environ.get("BACKENDNN_BACKENDS")
    names = [n.strip().split("-")[0] for n in env.split(",")] if env else ["jax", "torch"]
    for name in names:
        if name in BACKENDS and name != "numpy" and importlib.util.find_spec(name) is not None:
            return name
    return None


OTHER = _other_backend()


def _env(**extra: str) -> dict[str, str]:
    """The examples' environment: backendnn imported from this checkout, figures to files."""
    path = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(path), **extra)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


class Runs:
    """Every example of one backend, run concurrently without ``--out`` in the empty folder
    ``cwd``, with ``TMPDIR`` pointing at ``tmp`` (where their default output folders go)."""

    def __init__(self, backend: str, root: Path):
        self.cwd, self.tmp = root / backend / "cwd", root / backend / "tmp"
        self.cwd.mkdir(parents=True)
        self.tmp.mkdir()
        env = _env(TMPDIR=str(self.tmp))
        started = {
            script: subprocess.Popen(
                [sys.executable, str(EXAMPLES / script), "--backend", backend, *SMALL_ARGS[script]],
                cwd=self.cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for script in FIGURES
        }
        self.done: dict[str, subprocess.CompletedProcess] = {}
        for script, proc in started.items():
            try:
                stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            self.done[script] = subprocess.CompletedProcess(
                proc.args, proc.returncode, stdout, stderr
            )

    def figure(self, script: str) -> Path:
        """The figure ``script`` says it wrote ("figure: PATH")."""
        proc = self.done[script]
        lines = [line for line in proc.stdout.splitlines() if line.startswith("figure: ")]
        assert len(lines) == 1, f"{script}:\n{proc.stdout}\n{proc.stderr}"
        return Path(lines[0].removeprefix("figure: "))


_RUNS: dict[str, Runs] = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")

    def get(backend: str) -> Runs:
        if backend not in _RUNS:
            _RUNS[backend] = Runs(backend, root)
        return _RUNS[backend]

    return get


BACKEND_PARAMS = [
    "numpy",
    pytest.param(
        OTHER or "jax",
        marks=pytest.mark.skipif(
            OTHER is None,
            reason="no second backend here (BACKENDNN_BACKENDS names none, or JAX/PyTorch missing)",
        ),
    ),
]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("script", list(FIGURES))
def test_example_runs_and_writes_its_figure(runs, backend, script):
    run = runs(backend)
    proc = run.done[script]
    assert proc.returncode == 0, (
        f"{script} --backend {backend} failed:\n{proc.stdout}\n{proc.stderr}"
    )
    figure = run.figure(script)
    assert figure.name == FIGURES[script]
    assert figure.parent.parent == run.tmp, "not in a new temporary folder"
    assert f"writing files to {figure.parent}" in proc.stdout, proc.stdout
    data = figure.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image

    image = matplotlib.image.imread(figure)
    assert image.shape[0] > 100 and image.shape[1] > 100, image.shape


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_examples_write_nothing_into_the_current_folder(runs, backend):
    run = runs(backend)
    assert all(proc.returncode == 0 for proc in run.done.values())
    assert not list(run.cwd.iterdir())


def test_out_chooses_the_folder(tmp_path):
    out = tmp_path / "figures"
    proc = _run([sys.executable, str(EXAMPLES / "xor.py"), "--out", str(out)], tmp_path, _env())
    assert proc.returncode == 0, proc.stderr
    assert f"figure: {out / 'xor.png'}" in proc.stdout.splitlines(), proc.stdout
    assert "writing files to" not in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_digits_model_reloads_with_identical_predictions(runs, backend):
    run = runs(backend)
    proc = run.done["train_digits.py"]
    assert "reloaded model: identical predictions: True" in proc.stdout, proc.stdout
    assert (run.figure("train_digits.py").parent / "digits_mlp.safetensors").is_file()
    assert re.search(r"test accuracy: 0\.\d{4}", proc.stdout), proc.stdout


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_xor_story(runs, backend):
    """A perceptron stays at <= 0.75 on XOR; the MLP reaches 1.0."""
    proc = runs(backend).done["xor.py"]
    found = (
        re.search(r"Perceptron: accuracy ([\d.]+)", proc.stdout),
        re.search(r"MLPClassifier .*?: accuracy ([\d.]+)", proc.stdout),
    )
    assert all(found), proc.stdout + proc.stderr
    perceptron, mlp = (float(m.group(1)) for m in found)
    assert perceptron <= 0.75
    assert mlp == 1.0


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_gradient_check_agrees_to_4_digits_in_float64(runs, backend):
    proc = runs(backend).done["gradient_check.py"]
    match = re.search(r"(\d+) of (\d+) checks agree to 4 digits", proc.stdout)
    assert match and match.group(1) == match.group(2), proc.stdout


def test_missing_backend_exits_with_the_install_hint(tmp_path):
    """An unavailable backend stops the example with a usage error naming what to install."""
    missing = next(
        (b for b in ("cupy", "jax", "torch") if importlib.util.find_spec(b) is None), None
    )
    if missing is None:
        pytest.skip("every optional backend library is installed here")
    proc = _run(
        [sys.executable, str(EXAMPLES / "xor.py"), "--backend", missing, "--out", str(tmp_path)],
        tmp_path,
        _env(),
    )
    assert proc.returncode == 2
    assert "pip install" in proc.stderr
    assert not list(tmp_path.glob("*.png"))


# ---------------------------------------------------------------------- why training stopped


def test_cnn_says_why_it_stopped(runs, tmp_path):
    """At its default 40 epochs the CNN stops early by scikit-learn's rule and says which; with
    its small --epochs it says it used them all."""
    proc = _run(
        [sys.executable, str(EXAMPLES / "train_digits_cnn.py")],
        tmp_path,
        _env(TMPDIR=str(tmp_path)),
    )
    assert proc.returncode == 0, proc.stderr
    match = re.search(
        r"stopped after (\d+) of 40 epochs: the training loss did not improve by tol=0\.0001 "
        r"for n_iter_no_change=10 consecutive epochs",
        proc.stdout,
    )
    assert match and int(match.group(1)) < 40, proc.stdout
    small = SMALL_ARGS["train_digits_cnn.py"]
    epochs = int(small[small.index("--epochs") + 1])
    short = runs("numpy").done["train_digits_cnn.py"].stdout
    assert f"used all {epochs} of {epochs} epochs (--epochs): more may help" in short, short


def test_why_it_stopped_names_the_validation_score_with_early_stopping():
    import backendnn as bn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    model = bn.MLPClassifier(
        (4,), early_stopping=True, tol=10.0, n_iter_no_change=2, max_iter=50, random_state=0
    ).fit(X, X[:, 0] > 0)
    assert _load("_common").why_it_stopped(model) == (
        f"stopped after {model.n_iter_} of 50 epochs: the validation score did not improve by "
        "tol=10 for n_iter_no_change=2 consecutive epochs"
    )
    assert model.n_iter_ < 50


# ---------------------------------------------------------------------- distributed.py

# Runs a script (argv[1], its arguments after it) in a Python that cannot import JAX.
_WITHOUT_JAX = """
import runpy, sys

class NoJax:
    def find_spec(self, name, path=None, target=None):
        if name == "jax" or name.startswith("jax."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoJax())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_distributed_help_prints_usage_and_runs_nothing(tmp_path):
    """--help needs no JAX and starts nothing: usage and the parts, then exit 0."""
    script = str(EXAMPLES / "distributed.py")
    proc = _run([sys.executable, "-c", _WITHOUT_JAX, script, "--help"], tmp_path, _env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: distributed.py"), proc.stdout
    assert "--parts" in proc.stdout and proc.stderr == ""


def test_distributed_without_jax_says_what_to_install(tmp_path):
    script = str(EXAMPLES / "distributed.py")
    proc = _run([sys.executable, "-c", _WITHOUT_JAX, script], tmp_path, _env())
    assert proc.returncode == 2, proc.stderr
    assert 'pip install ".[jax]"' in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_distributed_two_processes_quietly_leave_nothing_behind(tmp_path):
    """Part 2 (two jax.distributed processes): both end with the same weights as the one
    process, the saved model reloads with them, gloo's connection lines are gone, and the
    temporary folder is removed."""
    pytest.importorskip("jax")
    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    proc = _run(
        [sys.executable, str(EXAMPLES / "distributed.py"), "--parts", "2"],
        cwd,
        _env(TMPDIR=str(tmp)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[Gloo]" not in proc.stdout + proc.stderr
    # process 0, process 1, the model process 0 saved, the one-process fit
    sums = [float(s) for s in re.findall(r"weights checksum (-?[\d.]+)", proc.stdout)]
    assert len(sums) == 4 and sums[0] == sums[1] == sums[2], proc.stdout
    assert sums[3] == pytest.approx(sums[0], rel=1e-5), proc.stdout  # float32, to rounding
    assert not list(tmp.iterdir()) and not list(cwd.iterdir())


# ---------------------------------------------------------------------- export_onnx.py


def test_export_onnx_runs_the_cnn_in_onnx_runtime(tmp_path):
    """The digits CNN exported and run in ONNX Runtime: both accuracies printed, equal but
    for at most one digit whose two largest probabilities tie to float32 rounding."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    script = str(EXAMPLES / "export_onnx.py")
    small = SMALL_ARGS["export_onnx.py"]
    proc = _run([sys.executable, script, *small, "--out", str(tmp_path)], tmp_path, _env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = [
        re.search(rf"{name} test accuracy: (0\.\d{{4}})", proc.stdout)
        for name in ("backendnn", "ONNX Runtime")
    ]
    assert all(found), proc.stdout
    ours, theirs = (float(m.group(1)) for m in found)
    assert ours > 0.5 and abs(ours - theirs) <= 1 / 450 + 1e-9, proc.stdout
    assert (tmp_path / "digits_cnn.onnx").is_file()
