"""``python -m backendnn.bench``: runs :func:`backendnn.bench.main` on the command line.

Imports: :mod:`.cli` only.
"""

from .cli import main

if __name__ == "__main__":
    main()
