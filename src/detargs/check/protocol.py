"""How to ask a server for a completion: SGLang's ``/generate`` and OpenAI's ``/v1/completions``.

Everything detargs knows about these two wire formats lives here (SGLang 0.5.x facts,
read from its HTTP server and its own determinism probe):

- ``POST /generate`` takes ``{"text", "sampling_params": {"temperature",
  "max_new_tokens", "sampling_seed", "ignore_eos"}, "return_logprob"}`` and answers
  ``{"text", "meta_info": {"output_token_logprobs": [[logprob, token_id, text], ...]}}``;
  ``sampling_seed`` must be left out rather than sent as null.
- ``GET /model_info`` (``/get_model_info`` before 0.5.x renamed it) exists only on
  SGLang's native server; ``GET /v1/models`` on both.
- ``POST /flush_cache`` empties the radix cache: 200 when done, 400 while requests are
  still running, 404 where the server has none.
- ``POST /v1/completions`` takes ``{"model", "prompt", "max_tokens", "temperature",
  "seed", "logprobs": 1}`` and answers ``choices[0]`` with ``text`` and
  ``logprobs.tokens`` / ``logprobs.token_logprobs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import CheckError
from .probes import Request
from .report import Output

__all__ = ["FLUSH_PATH", "PROBE_PATHS", "Adapter"]

Api = Literal["sglang", "openai"]
FLUSH_PATH: Final = "/flush_cache"
PROBE_PATHS: Final[Mapping[Api, tuple[str, ...]]] = {
    "sglang": ("/model_info", "/get_model_info"),
    "openai": ("/v1/models",),
}


@dataclass(frozen=True)
class SGLangGenerate:
    """SGLang's native ``/generate``."""

    model: str | None = None
    name: Api = "sglang"
    path: str = "/generate"

    def body(self, request: Request) -> dict[str, Any]:
        sampling: dict[str, Any] = {
            "temperature": request.temperature,
            "max_new_tokens": request.max_new_tokens,
            "ignore_eos": True,  # every run the same length, so positions line up
        }
        if request.seed is not None:
            sampling["sampling_seed"] = request.seed
        return {"text": request.prompt, "sampling_params": sampling, "return_logprob": True}

    def parse(self, payload: object) -> Output:
        if isinstance(payload, list) and len(payload) == 1:
            payload = payload[0]
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise _bad(self.path, "no 'text' in the answer", payload)
        meta = payload.get("meta_info")
        triples = meta.get("output_token_logprobs") if isinstance(meta, dict) else None
        if not isinstance(triples, list):
            ids = payload.get("output_ids")
            tokens = tuple(ids) if isinstance(ids, list) else ()
            return Output(payload["text"], tokens, None)
        tokens_: list[int | str] = []
        logprobs: list[float | None] = []
        for item in triples:
            # a logprob that is not finite comes as null (orjson): a value like any other
            if not (
                isinstance(item, list)
                and len(item) >= 2
                and _logprob(item[0])
                and isinstance(item[1], int)
            ):
                raise _bad(
                    self.path,
                    "output_token_logprobs is not [logprob, token_id, text] triples",
                    payload,
                )
            logprobs.append(None if item[0] is None else float(item[0]))
            tokens_.append(item[1])
        return Output(payload["text"], tuple(tokens_), tuple(logprobs))


@dataclass(frozen=True)
class OpenAICompletions:
    """The OpenAI-compatible ``/v1/completions`` (SGLang, vLLM and others serve it)."""

    model: str | None = None
    name: Api = "openai"
    path: str = "/v1/completions"

    def body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model or "default",
            "prompt": request.prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "logprobs": 1,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def parse(self, payload: object) -> Output:
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _bad(self.path, "no 'choices' in the answer", payload)
        choice = choices[0]
        text = choice.get("text")
        if not isinstance(text, str):
            raise _bad(self.path, "choices[0] has no 'text'", payload)
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict):
            return Output(text)
        tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            return Output(text)
        if isinstance(values, list) and len(values) == len(tokens) and all(map(_logprob, values)):
            return Output(
                text, tuple(tokens), tuple(None if v is None else float(v) for v in values)
            )
        return Output(text, tuple(tokens))


Adapter = SGLangGenerate | OpenAICompletions


def adapter(api: Api, model: str | None) -> Adapter:
    return SGLangGenerate(model) if api == "sglang" else OpenAICompletions(model)


def model_name(api: Api, payload: object) -> str | None:
    """The served model's name from the answer to the detection request."""
    if not isinstance(payload, dict):
        return None
    if api == "sglang":
        name = payload.get("model_path")
        return name if isinstance(name, str) else None
    data = payload.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        name = data[0].get("id")
        return name if isinstance(name, str) else None
    return None


def _logprob(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _bad(path: str, what: str, payload: object) -> CheckError:
    shown = repr(payload)
    shown = shown if len(shown) <= 160 else shown[:157] + "..."
    return CheckError(f"{path} answered something that is not a completion: {what}: {shown}")
