"""The layers of the package, top to bottom: each module imports only from its own layer
or the layers below it (``tests/test_layering.py`` reads every module's imports, those
inside functions included, against this list, and the README's layout table shows it).

A name is a module or a package (``"estimators"`` stands for every module in it); the
package's own ``__init__`` (``"backendnn"``) is the facade users import. Imports under
``typing.TYPE_CHECKING`` are types only and may name any layer.
"""

LAYERS: tuple[tuple[str, ...], ...] = (
    ("bench",),  # the benchmark CLI
    ("backendnn",),  # the public facade
    ("callbacks",),  # objects called around every epoch (checkpoints write model files)
    ("io", "interop"),  # the model-file format; conversions to and from other frameworks
    ("estimators",),  # scikit-learn's protocol, the fit driver, the models
    ("data",),  # where batches come from: memory, sparse rows, dask chunks, meshes
    ("train", "gradcheck", "run_state"),  # the epoch loop and compiled steps; central differences
    # a sequence of layers, forward and backward; its training objective; prediction in
    # blocks; summaries
    ("network", "_objective", "_blocks", "_summary"),
    ("layers",),  # one file per layer family
    # each function with its derivative; optimisers; L-BFGS; layouts; erf; argument checks
    ("activations", "losses", "optim", "lbfgs", "tensors", "special", "_validation"),
    # initialisers, parameters, random masks, caches
    ("init", "params", "_random", "_cache", "_compiled", "_warnings", "_memory", "_architecture"),
    ("_backend",),  # the only package that names array libraries
)
