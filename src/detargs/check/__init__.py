"""Check that a running server is deterministic: the same request, the same output, bit for bit.

>>> from detargs.check import check
>>> report = check("http://127.0.0.1:30000")        # doctest: +SKIP
>>> report.deterministic, report.probes[0].unique_outputs  # doctest: +SKIP
(True, 1)

Four probes (``PROBES``): ``batch`` (a prompt alone, then inside concurrent bursts of
other prompts), ``repeat``, ``prefix`` (cold and cached prefixes) and ``seeded``
(temperature > 0 with a fixed seed). Each gives a verdict with its runs, its unique
outputs and the first divergence. Speaks SGLang's ``/generate`` and the OpenAI-compatible
``/v1/completions``, auto-detected. Needs httpx (``pip install 'detargs[check]'``);
importing this package does not import it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from ..errors import CheckError, InvalidArgsError, NondeterminismError
from .report import (
    PROBES,
    REPORT_SCHEMA,
    SHORT,
    CheckOptions,
    CheckReport,
    Divergence,
    GroupResult,
    Output,
    ProbeResult,
)

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "PROBES",
    "REPORT_SCHEMA",
    "SHORT",
    "CheckOptions",
    "CheckReport",
    "Divergence",
    "GroupResult",
    "Output",
    "ProbeResult",
    "acheck",
    "assert_deterministic",
    "check",
    "options",
]

Api = Literal["sglang", "openai"]
_CLIENT_PACKAGES = frozenset({"httpx", "httpcore", "anyio", "h11", "idna", "sniffio", "certifi"})


def options(base: CheckOptions | None = None, **changes: Any) -> CheckOptions:
    """``CheckOptions`` with ``changes``; a bad value is an ``InvalidArgsError``."""
    try:
        return dataclasses.replace(base or CheckOptions(), **changes)
    except ValueError as error:
        raise InvalidArgsError(f"check options: {error}") from None
    except TypeError as error:
        raise InvalidArgsError(f"check options: {error}") from None


async def acheck(
    url: str,
    settings: CheckOptions | None = None,
    *,
    api: Api | None = None,
    model: str | None = None,
    progress: bool | None = False,
    **changes: Any,
) -> CheckReport:
    """Run the probes against the server at ``url``; see ``check``."""
    chosen = options(settings, **changes)
    if api not in (None, "sglang", "openai"):
        raise InvalidArgsError(f"api must be 'sglang', 'openai' or None (got {api!r})")
    report: CheckReport = await _runner().run_check(
        url, chosen, api=api, model=model, progress=progress
    )
    return report


def check(
    url: str,
    settings: CheckOptions | None = None,
    *,
    api: Api | None = None,
    model: str | None = None,
    progress: bool | None = False,
    **changes: Any,
) -> CheckReport:
    """Run the probes against the server at ``url`` and return the report.

    ``settings`` (or keyword ``changes`` to the defaults, e.g. ``trials=1``) say what to
    send; ``api`` names the protocol (default: detected); ``model`` is the name sent to
    ``/v1/completions`` (default: the first of ``/v1/models``). A server that cannot be
    checked raises ``CheckError``; a non-deterministic one gives a report whose
    ``deterministic`` is False.
    """
    coroutine = acheck(url, settings, api=api, model=model, progress=progress, **changes)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # called from inside an event loop (a notebook, an async test): run on a thread of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def assert_deterministic(
    url: str, settings: CheckOptions | None = None, **kwargs: Any
) -> CheckReport:
    """``check``, raising ``NondeterminismError`` with the divergence report when it fails."""
    report = check(url, settings, **kwargs)
    if not report.deterministic:
        raise NondeterminismError(report.summary(), report=report)
    return report


def _runner() -> ModuleType:
    try:
        from . import runner
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in _CLIENT_PACKAGES:
            raise CheckError(
                f"detargs check needs the HTTP client httpx ({error.name} is not installed): "
                "pip install 'detargs[check]'"
            ) from None
        raise
    return runner
