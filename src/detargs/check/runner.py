"""Running a check against a server over HTTP (httpx); the only module that imports it."""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import CheckError
from .probes import Plan, Round, plan
from .protocol import FLUSH_PATH, PROBE_PATHS, Adapter, Api, adapter, model_name
from .report import (
    CheckOptions,
    CheckReport,
    Compared,
    Divergence,
    GroupResult,
    Output,
    ProbeResult,
    first_divergence,
)

__all__ = []

Progress = Callable[[int], None]
_STRICTNESS: dict[Compared, int] = {"tokens+logprobs": 2, "tokens": 1, "text": 0}


async def run_check(
    url: str,
    options: CheckOptions,
    *,
    api: Api | None = None,
    model: str | None = None,
    progress: bool | None = None,
) -> CheckReport:
    base = _base_url(url)
    started = time.perf_counter()
    biggest = max(options.others) + 1
    limits = httpx.Limits(max_connections=biggest, max_keepalive_connections=biggest)
    # building an SSL context costs ~50 ms: a plain-http server needs none, https one shared
    verify: ssl.SSLContext | bool = _tls() if base.startswith("https:") else False
    async with httpx.AsyncClient(
        base_url=base, timeout=options.timeout_s, limits=limits, trust_env=False, verify=verify
    ) as client:
        chosen, detected_model = await _detect(client, base, api)
        speaker = adapter(chosen, model or detected_model)
        can_flush = "prefix" in options.probes and await _flush(client, base)
        nonce = uuid.uuid4().hex[:8]
        plans = [plan(name, options, can_flush=can_flush, nonce=nonce) for name in options.probes]
        total = sum(p.requests for p in plans)
        bar = _progress_bar(total, progress)
        try:
            results: list[ProbeResult] = []
            weakest: Compared = "tokens+logprobs"
            for probe in plans:
                result, compared = await _run_plan(client, base, speaker, probe, bar)
                results.append(result)
                if _STRICTNESS[compared] < _STRICTNESS[weakest]:
                    weakest = compared
        finally:
            bar.close()
    notes = []
    if weakest != "tokens+logprobs":
        notes.append(f"the server returned no logprobs, so outputs were compared by {weakest}")
    return CheckReport(
        url=base,
        api=speaker.name,
        model=speaker.model,
        compared=weakest,
        options=options,
        probes=tuple(results),
        requests=total,
        elapsed_s=round(time.perf_counter() - started, 3),
        notes=tuple(notes),
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckError(f"{url!r} is not a server URL; give one such as http://127.0.0.1:30000")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise CheckError(
            f"{url!r} has no usable port: give a number from 1 to 65535, as in "
            "http://127.0.0.1:30000"
        ) from None
    if parts.query or parts.fragment:
        raise CheckError(
            f"{url!r} has a query or fragment; give the server's root, such as "
            "http://127.0.0.1:30000"
        )
    # an OpenAI client's base URL ends in /v1; the check adds /v1/... itself
    return url.rstrip("/").removesuffix("/v1")


async def _detect(client: httpx.AsyncClient, base: str, api: Api | None) -> tuple[Api, str | None]:
    order: Sequence[Api] = ("sglang", "openai") if api is None else (api,)
    tried = []
    for name in order:
        for path in PROBE_PATHS[name]:
            response = await _send(client, base, "GET", path)
            tried.append(f"{path} {response.status_code}")
            if response.status_code == 200:
                return name, model_name(name, _json(response, base, path, strict=False))
    wanted = "an SGLang or OpenAI-compatible server" if api is None else f"an {api} server"
    raise CheckError(
        f"{base} does not look like {wanted} ({', '.join(tried)}); check the URL "
        "and port, or name the protocol with --api"
    )


async def _flush(client: httpx.AsyncClient, base: str) -> bool:
    """Empty the prefix cache; False where the server has no way to."""
    for _ in range(50):
        response = await _send(client, base, "POST", FLUSH_PATH)
        if response.status_code == 200:
            return True
        if response.status_code != 400:
            return False
        await asyncio.sleep(0.1)  # 400: requests still running; SGLang flushes once idle
    raise CheckError(
        f"{base}{FLUSH_PATH} kept answering 400 for 5 s: other clients keep the "
        "server busy; check it while it is idle, or leave out --probes prefix"
    )


async def _run_plan(
    client: httpx.AsyncClient, base: str, speaker: Adapter, probe: Plan, bar: Any
) -> tuple[ProbeResult, Compared]:
    seen: dict[str, list[tuple[str, Output]]] = defaultdict(list)
    for round_ in probe.rounds:
        if round_.flush and not await _flush(client, base):
            raise CheckError(f"{base}{FLUSH_PATH} stopped answering during the check")
        outputs = await _round(client, base, speaker, round_, bar)
        for watch in round_.watched:
            seen[watch.group].append((watch.run, outputs[watch.index]))
    groups: list[GroupResult] = []
    divergence: Divergence | None = None
    compared: Compared = "tokens+logprobs"
    for label, runs in seen.items():
        how = _weakest(runs)
        if _STRICTNESS[how] < _STRICTNESS[compared]:
            compared = how
        unique = len({output.key(how) for _, output in runs})
        groups.append(GroupResult(label, len(runs), unique))
        if divergence is None and unique > 1:
            divergence = first_divergence(label, runs, how)
    result = ProbeResult(
        name=probe.name,
        description=probe.description,
        runs=sum(g.runs for g in groups),
        unique_outputs=max((g.unique_outputs for g in groups), default=0),
        groups=tuple(groups),
        divergence=divergence,
        notes=probe.notes,
    )
    return result, compared


def _weakest(runs: list[tuple[str, Output]]) -> Compared:
    reference = runs[0][1]
    hows: list[Compared] = [reference.compared_by(output) for _, output in runs]
    return min(hows, key=lambda how: _STRICTNESS[how])


async def _round(
    client: httpx.AsyncClient, base: str, speaker: Adapter, round_: Round, bar: Any
) -> list[Output]:
    async def one(body: dict[str, Any]) -> Output:
        response = await _send(client, base, "POST", speaker.path, body)
        if response.status_code != 200:
            text = response.text.strip().replace("\n", " ")[:200]
            raise CheckError(
                f"POST {base}{speaker.path} answered {response.status_code}: "
                f"{text or response.reason_phrase}"
            )
        output = speaker.parse(_json(response, base, speaker.path))
        bar.update(1)
        return output

    # all requests of a round are in flight together, so the server batches them
    return list(await asyncio.gather(*(one(speaker.body(r)) for r in round_.requests)))


async def _send(
    client: httpx.AsyncClient, base: str, method: str, path: str, body: object = None
) -> httpx.Response:
    try:
        return await client.request(method, path, json=body)
    except httpx.TimeoutException:
        raise CheckError(
            f"{method} {base}{path} timed out after {client.timeout.read} s; "
            "raise --timeout for a slow server"
        ) from None
    except httpx.ConnectError as error:
        raise CheckError(
            f"cannot connect to {base}: {_reason(error)}; is the server up and "
            "listening on that port?"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise CheckError(f"{method} {base}{path} failed: {_reason(error)}") from None


def _json(response: httpx.Response, base: str, path: str, *, strict: bool = True) -> object:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        if not strict:
            return None
        shown = response.text[:120].replace("\n", " ")
        raise CheckError(f"{base}{path} answered something that is not JSON: {shown!r}") from None


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


class _NoBar:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, wanted: bool | None) -> Any:
    """tqdm on a terminal (or when asked), nothing otherwise; tqdm is optional."""
    if wanted is False or (wanted is None and not sys.stderr.isatty()):
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="req", desc="detargs check", file=sys.stderr, leave=False)
