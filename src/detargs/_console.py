"""The ``detargs`` console script: ``detargs.cli.main``, with Ctrl-C during start-up too.

``main`` exits 130 for an interrupt while it runs; an interrupt while the CLI's modules
are still being imported would otherwise end in a KeyboardInterrupt traceback, so the
import happens here, inside the same handling.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["run"]


def run() -> NoReturn:
    try:
        from .cli import EXIT_INTERRUPTED, main
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    try:
        code = main()
    except KeyboardInterrupt:  # between main's own handler and its return
        code = EXIT_INTERRUPTED
    raise SystemExit(code)
