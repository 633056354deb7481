"""Doctests of src/detargs run with the suite (pyproject: testpaths, --doctest-modules).

Collecting a module's doctests imports it; a module whose optional dependency is not
installed (``detargs.check.runner`` needs httpx, the ``check`` extra) is left out rather
than failing the collection. The test extra installs it, so CI collects everything.
"""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = (
    [] if importlib.util.find_spec("httpx") is not None else ["detargs/check/runner.py"]
)
