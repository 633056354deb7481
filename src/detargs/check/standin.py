"""A stand-in inference server on 127.0.0.1, deterministic or with one non-determinism injected.

For testing code that checks servers (``detargs check``, a CI fixture) without a GPU. It
speaks the parts of SGLang's ``/generate`` and the OpenAI-compatible ``/v1/completions``
that ``detargs.check`` uses, with ``/flush_cache``, ``/model_info`` and ``/v1/models``.
Standard library only.

It batches like a real server: a scheduler thread takes the first waiting request, keeps
collecting until no request has arrived for ``gap_s`` (or ``window_s`` has passed), and
answers the whole batch at once. Its "model" hashes the prompt into tokens and logprobs;
``mode`` chooses what else the output depends on:

========================  ==========================================================
``deterministic``         nothing: the prompt (and the seed, when sampling)
``batch-size``            the number of requests in its batch (tokens from position 3)
``arrival-order``         its position in its batch (tokens from position 3)
``logprob-last-bit``      the batch size, in the last bit of each logprob only
``seed-ignored``          a fresh random state when sampling (the seed is ignored)
``cache-hit``             whether a prompt with the same first 32 characters was seen
                          since the last ``/flush_cache`` (tokens from position 3)
========================  ==========================================================

>>> from detargs.check.standin import StandinServer
>>> with StandinServer("deterministic") as server:
...     server.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import random
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

__all__ = ["StandinServer"]

MODES: Final = (
    "deterministic",
    "batch-size",
    "arrival-order",
    "logprob-last-bit",
    "seed-ignored",
    "cache-hit",
)
_STABLE_PREFIX: Final = 3  # tokens before this position never change, as in a real model
_CACHE_KEY: Final = 32  # characters of shared prefix that count as a cache hit
_MODEL: Final = "standin"


@dataclass
class _Job:
    api: str
    body: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    error: str | None = None


class StandinServer:
    """A real HTTP server on an ephemeral port of 127.0.0.1; use it as a context manager."""

    def __init__(
        self,
        mode: str = "deterministic",
        *,
        apis: Iterable[str] = ("sglang", "openai"),
        flush: bool = True,
        logprobs: bool = True,
        gap_s: float = 0.01,
        window_s: float = 0.1,
        vocab: int = 4096,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        self.mode = mode
        self.apis = frozenset(apis)
        self.flush = flush
        self.logprobs = logprobs
        self.gap_s = gap_s
        self.window_s = window_s
        self.vocab = vocab
        self.batch_sizes: list[int] = []
        """The size of every batch served, in order (for tests that check co-scheduling)."""
        self.flushes = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._cache: deque[str] = deque(maxlen=4096)
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the stand-in server is not running: use it in a with block")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests_served(self) -> int:
        return sum(self.batch_sizes)

    def start(self) -> StandinServer:
        self._http = _Listener(("127.0.0.1", 0), _handler(self))
        self._threads = [
            threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="standin-http",
                daemon=True,
            ),
            threading.Thread(target=self._schedule, name="standin-scheduler", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._http is None:
            return
        self._http.shutdown()
        self._http.server_close()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._http = None

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the scheduler -------------------------------------------------------------------

    def submit(self, api: str, body: dict[str, Any]) -> _Job:
        job = _Job(api, body)
        self._queue.put(job)
        job.done.wait()
        return job

    def _schedule(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.window_s
            stopping = False
            while True:
                wait = min(self.gap_s, deadline - time.monotonic())
                try:
                    job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._run(batch)
            if stopping:
                return

    def _run(self, batch: list[_Job]) -> None:
        self.batch_sizes.append(len(batch))
        for position, job in enumerate(batch):
            try:
                job.answer = self._answer(job, position, len(batch))
            except (KeyError, TypeError, ValueError) as error:
                job.error = f"bad request: {error}"
            job.done.set()

    def flush_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self.flushes += 1

    # --- the "model" ---------------------------------------------------------------------

    def _answer(self, job: _Job, position: int, size: int) -> dict[str, Any]:
        body = job.body
        if job.api == "sglang":
            prompt = body["text"]
            params = body.get("sampling_params") or {}
            count = int(params.get("max_new_tokens", 16))
            temperature = float(params.get("temperature", 1.0))
            seed = params.get("sampling_seed")
            want_logprobs = bool(body.get("return_logprob"))
        else:
            prompt = body["prompt"]
            count = int(body.get("max_tokens", 16))
            temperature = float(body.get("temperature", 1.0))
            seed = body.get("seed")
            want_logprobs = body.get("logprobs") is not None
        if not isinstance(prompt, str):
            raise TypeError("the prompt must be a string")
        tokens, logprobs = self._generate(prompt, count, temperature, seed, position, size)
        pieces = [f" w{token}" for token in tokens]
        text = "".join(pieces)
        show_logprobs = want_logprobs and self.logprobs
        if job.api == "sglang":
            meta: dict[str, Any] = {
                "id": uuid.uuid4().hex,
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": count,
            }
            if show_logprobs:
                triples = zip(logprobs, tokens, strict=True)
                meta["output_token_logprobs"] = [[lp, t, None] for lp, t in triples]
            return {"text": text, "output_ids": tokens, "meta_info": meta}
        choice: dict[str, Any] = {
            "index": 0,
            "text": text,
            "finish_reason": "length",
            "logprobs": None,
        }
        if show_logprobs:
            choice["logprobs"] = {
                "tokens": pieces,
                "token_logprobs": logprobs,
                "top_logprobs": None,
            }
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "model": _MODEL,
            "choices": [choice],
        }

    def _generate(
        self, prompt: str, count: int, temperature: float, seed: object, position: int, size: int
    ) -> tuple[list[int], list[float]]:
        digest = hashlib.blake2b(prompt.encode(), digest_size=16).hexdigest()
        if temperature > 0:
            if seed is None or self.mode == "seed-ignored":
                rng = random.Random()
            else:
                rng = random.Random(f"{digest}:{seed}:{temperature!r}")
        else:
            rng = random.Random(digest)
        salt = self._salt(prompt, position, size)
        with self._lock:
            self._cache.append(prompt)
        drift = random.Random(f"{digest}:drift:{salt}")
        tokens, logprobs = [], []
        for index in range(count):
            token, logprob = rng.randrange(self.vocab), -8.0 * rng.random()
            if salt is not None and index >= _STABLE_PREFIX:
                token = drift.randrange(self.vocab)
            if self.mode == "logprob-last-bit" and size > 1:
                logprob = math.nextafter(logprob, 0.0)
            tokens.append(token)
            logprobs.append(logprob)
        return tokens, logprobs

    def _salt(self, prompt: str, position: int, size: int) -> int | None:
        """What, besides the prompt, changes the tokens in this mode (None: nothing)."""
        if self.mode == "batch-size":
            return size if size > 1 else None
        if self.mode == "arrival-order":
            return position if position > 0 else None
        if self.mode == "cache-hit":
            key = prompt[:_CACHE_KEY]
            with self._lock:
                hit = len(key) == _CACHE_KEY and any(p.startswith(key) for p in self._cache)
            return 1 if hit else None
        return None


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of 32 new connections must not overflow the backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up (a check that stopped early, a closed pool) is no error here
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler(server: StandinServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients of a real server expect
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/health":
                self._send(200, b"", "text/plain")
            elif path in ("/model_info", "/get_model_info") and "sglang" in server.apis:
                self._json(200, {"model_path": _MODEL, "is_generation": True})
            elif path == "/v1/models" and "openai" in server.apis:
                self._json(200, {"object": "list", "data": [{"id": _MODEL, "object": "model"}]})
            elif path == "/flush_cache" and server.flush:
                self._flush()
            else:
                self._json(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            if path == "/flush_cache" and server.flush:
                self._flush()
                return
            api = {"/generate": "sglang", "/v1/completions": "openai"}.get(path)
            if api is None or api not in server.apis:
                self._json(404, {"detail": "Not Found"})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._json(400, {"error": "the body is not JSON"})
                return
            if not isinstance(body, dict):
                self._json(400, {"error": "the body is not a JSON object"})
                return
            job = server.submit(api, body)
            if job.error is not None:
                self._json(400, {"error": job.error})
            else:
                self._json(200, job.answer)

        def _flush(self) -> None:
            server.flush_cache()
            self._send(200, b"Cache flushed.\n", "text/plain")

        def _json(self, status: int, payload: object) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
