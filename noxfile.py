"""Run the one test suite once per array backend: ``nox`` runs every session.

Each session installs the package with its extra into a fresh virtualenv and sets
``BACKENDNN_BACKENDS`` so the ``backend`` fixture runs that backend only.
"""

import shutil

import nox

nox.options.sessions = [
    "lint", "numpy", "array_api_strict", "jax", "jax_multidevice", "torch", "cupy",
    "sklearn_suite", "dask", "docs",
]
nox.options.reuse_existing_virtualenvs = True

PYTEST = ("pytest", "-q", "-p", "no:cacheprovider")
# PyTorch is the reference of the layer tests (autograd gradients) on every backend, pinned:
# pip finds torch 2.13.0 as a CPU build on this project's machines and CI, while an
# unpinned "torch" resolves to the multi-GB CUDA build from PyPI.
TORCH = "torch==2.13.0"
# The site builds with warnings as errors: pinned, so that a new release's new warning
# cannot break CI unannounced (the extra "docs" gives the minimum versions).
DOCS_PINS = ("sphinx==9.0.4", "pydata-sphinx-theme==0.24.0", "numpydoc==1.11.0",
             "sphinx-gallery==0.22.1")


def _test(session: nox.Session, backend: str, *extra: str, env: dict | None = None) -> None:
    session.install("-e", ".[test]", *extra)
    session.run(*PYTEST, *session.posargs,
                env={"BACKENDNN_BACKENDS": backend, "JAX_ENABLE_X64": "1", **(env or {})})


@nox.session
def numpy(session: nox.Session) -> None:
    # with the onnx extra: tests/test_onnx.py and examples/export_onnx.py run here
    _test(session, "numpy", TORCH, "onnx>=1.15", "onnxruntime>=1.17")


@nox.session
def array_api_strict(session: nox.Session) -> None:
    _test(session, "array_api_strict", TORCH)


@nox.session
def jax(session: nox.Session) -> None:
    # 64-bit enabled: the float64 references (gradients to 1e-10) need it.
    _test(session, "jax", "jax", TORCH)


@nox.session
def jax_multidevice(session: nox.Session) -> None:
    # Data parallelism on a mesh of 4 forced CPU devices, and two jax.distributed
    # processes on 127.0.0.1 (tests/test_distributed.py only: the rest runs in "jax").
    session.install("-e", ".[test]", "jax")
    session.run(*PYTEST, "tests/test_distributed.py", *session.posargs, env={
        "BACKENDNN_BACKENDS": "jax", "JAX_ENABLE_X64": "1",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    })  # fmt: skip


@nox.session
def torch(session: nox.Session) -> None:
    _test(session, "torch", TORCH)


@nox.session
def cupy(session: nox.Session) -> None:
    if shutil.which("nvidia-smi") is None:
        session.skip("no CUDA device here (nvidia-smi not found): the cupy backend needs a GPU")
    _test(session, "cupy", "cupy-cuda12x")


@nox.session
def sklearn_suite(session: nox.Session) -> None:
    """The installed scikit-learn's own MLP and Perceptron tests (and its common checks for
    them) run against backendnn's estimators: see tests/sklearn_suite/plugin.py."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "tests.sklearn_suite", *session.posargs,
                env={"BACKENDNN_BACKENDS": "numpy"})


@nox.session
def dask(session: nox.Session) -> None:
    # dask arrays streamed to NumPy and array-api-strict, a LocalCluster on 127.0.0.1, a fit
    # under an address-space limit a quarter of the data: tests/test_dask.py only
    session.install("-e", ".[test,dask]")
    session.run(*PYTEST, "tests/test_dask.py", *session.posargs,
                env={"BACKENDNN_BACKENDS": "numpy,array_api_strict", "JAX_ENABLE_X64": "1"})


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: the docstrings' examples as doctests (NumPy), the site built
    with warnings as errors and nitpicky references (the gallery runs the examples), the
    user guide's code run as written, then pages opened in headless Chromium (Debian's
    chromium and chromium-driver), whose screenshots stay in docs/_build/screenshots."""
    session.install("-e", ".[test,docs,dask]", TORCH, "jax", *DOCS_PINS)
    env = {"BACKENDNN_BACKENDS": "numpy", "JAX_ENABLE_X64": "1"}
    session.run(*PYTEST, "--doctest-modules", "backendnn", env=env)
    shutil.rmtree("docs/_build", ignore_errors=True)
    session.run("sphinx-build", "-b", "html", "-W", "--keep-going", "-n", "-q",
                "docs", "docs/_build/html", env=env)
    # the guide's code as written (every optional library here, so none may be missing;
    # the mesh example on 4 forced CPU devices), then the built pages in the browser
    session.run(*PYTEST, "tests/test_docs_guide.py", "tests/test_docs_site.py",
                *session.posargs, env={
        **env, "BACKENDNN_DOCS_STRICT": "1",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "BACKENDNN_DOCS_HTML": "docs/_build/html",
        "BACKENDNN_DOCS_SCREENSHOTS": "docs/_build/screenshots",
    })  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff", "mypy", "numpy", "array-api-compat")
    session.run("ruff", "check", "backendnn", "tests", "examples", "scripts", "docs", "noxfile.py")
    session.run("ruff", "format", "--check", "backendnn")
    session.run("mypy", "backendnn")
