"""The examples run: each exits 0 with small sizes, prints the figure it promises and writes a
valid PNG, on NumPy and on one other backend.

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

import pytest

from backendnn import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_S = 240

# script -> (small-size flags, the figure it writes)
CASES = {
    "train_digits.py": (["--epochs", "3"], "digits.png"),
    "train_digits_cnn.py": (["--epochs", "2"], "digits_cnn.png"),
    "xor.py": ([], "xor.png"),
    "activations.py": ([], "activations.png"),
    "gradient_check.py": (["--max-checks", "2"], "gradient_check.png"),
    "gpu_training.py": (
        ["--samples", "600", "--epochs", "2", "--batch-size", "128"],
        "gpu_training.png",
    ),
}


def _other_backend() -> str | None:
    env = os.environ.get("BACKENDNN_BACKENDS")
    names = [n.strip().split("-")[0] for n in env.split(",")] if env else ["jax", "torch"]
    for name in names:
        if name in BACKENDS and name != "numpy" and importlib.util.find_spec(name) is not None:
            return name
    return None


OTHER = _other_backend()
_RESULTS: dict[str, dict[str, tuple[subprocess.CompletedProcess, Path]]] = {}


def _run_all(backend: str, root: Path) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run every example on ``backend`` concurrently; (completed process, out dir) by script."""
    if backend in _RESULTS:
        return _RESULTS[backend]
    env = dict(
        os.environ,
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        ),
    )
    started = {}
    for script, (flags, _) in CASES.items():
        out = root / backend / script.removesuffix(".py")
        cmd = [sys.executable, str(EXAMPLES / script), "--backend", backend, "--out", str(out)]
        started[script] = (
            subprocess.Popen(
                cmd + flags,
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            out,
        )
    results = {}
    for script, (proc, out) in started.items():
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        results[script] = (
            subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
            out,
        )
    _RESULTS[backend] = results
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    return lambda backend: _run_all(backend, root)


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
@pytest.mark.parametrize("script", list(CASES))
def test_example_runs_and_writes_its_figure(runs, backend, script):
    proc, out = runs(backend)[script]
    assert proc.returncode == 0, (
        f"{script} --backend {backend} failed:\n{proc.stdout}\n{proc.stderr}"
    )
    figure = out / CASES[script][1]
    assert f"figure: {figure}" in proc.stdout.splitlines(), proc.stdout
    data = figure.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image

    image = matplotlib.image.imread(figure)
    assert image.shape[0] > 100 and image.shape[1] > 100, image.shape


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_digits_model_reloads_with_identical_predictions(runs, backend):
    proc, out = runs(backend)["train_digits.py"]
    assert "reloaded model: identical predictions: True" in proc.stdout, proc.stdout
    assert (out / "digits_mlp.safetensors").is_file()
    assert re.search(r"test accuracy: 0\.\d{4}", proc.stdout), proc.stdout


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_xor_story(runs, backend):
    """A perceptron stays at <= 0.75 on XOR; the MLP reaches 1.0."""
    proc, _ = runs(backend)["xor.py"]
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
    proc, _ = runs(backend)["gradient_check.py"]
    match = re.search(r"(\d+) of (\d+) checks agree to 4 digits", proc.stdout)
    assert match and match.group(1) == match.group(2), proc.stdout


def test_missing_backend_exits_with_the_install_hint(tmp_path):
    """An unavailable backend stops the example with a usage error naming what to install."""
    missing = next(
        (b for b in ("cupy", "jax", "torch") if importlib.util.find_spec(b) is None), None
    )
    if missing is None:
        pytest.skip("every optional backend library is installed here")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "xor.py"), "--backend", missing, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "pip install" in proc.stderr
    assert not list(tmp_path.glob("*.png"))
