"""``mkdocs`` with one slow import left out: ``python scripts/build_docs.py build --strict``.

The same command line as ``mkdocs``.  mkdocs-jupyter imports nbformat, which imports
jsonschema, which imports ``rfc3987_syntax`` when it is installed (Jupyter installs it) and
builds three Earley parsers there: about a third of the CPU time of the whole docs build.
jsonschema goes without it (it only checks the "iri" string format, which no notebook
uses), as the local Ray start does (``engine/dataset/ray_pool.py``).  The measured
build times are in docs/benchmarks.md ("The documentation site").
"""

import sys

if "rfc3987_syntax" not in sys.modules:
    sys.modules["rfc3987_syntax"] = None  # `import rfc3987_syntax` raises ImportError

from mkdocs.__main__ import cli

if __name__ == "__main__":
    sys.exit(cli())
