"""``LaunchValues``: a launch's argument values as a plain frozen record.

``ServerArgs`` (``detargs.sglang.args``) is the public, validated pydantic model and the one
declaration of a launch's fields. The codec and the rules engine work on this record
instead, so that a cold ``detargs resolve`` goes from argv to argv without importing
pydantic (its import and schema building cost more than everything else the command
does). The record's field block is generated from ``ServerArgs``' source (names,
annotations, defaults) by ``detargs.sglang._record_fields`` and checked for drift by the
tests; both refuse the same values: the ranges below are checked by ``ServerArgs``
and by the argv reader alike, and ``invalid_arguments`` builds the message for both.

Values read from an argv are already checked against the target release's catalogue
(kinds, types, choices); the checks here are the rest of what ``ServerArgs`` checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from . import _prefill_graph

__all__ = [
    "DEFAULTS",
    "FIELDS",
    "FIELD_DESTS",
    "RANGED",
    "AttentionBackend",
    "ExtraValue",
    "KvCacheDtype",
    "LaunchValues",
    "SamplingBackend",
    "invalid_arguments",
    "out_of_range",
    "refusal",
]

AttentionBackend = Literal[
    "triton",
    "torch_native",
    "flex_attention",
    "dsa",
    "nsa",
    "qsa",
    "dsv4",
    "compressed",
    "cutlass_mla",
    "fa3",
    "fa4",
    "flashinfer",
    "llada2_cfg_flashinfer",
    "flashmla",
    "trtllm_mla",
    "cutedsl_mla",
    "tokenspeed_mla",
    "trtllm_mha",
    "dual_chunk_flash_attn",
    "hpc_ops",
    "minicpm_flashattn",
    "minicpm_flashinfer",
    "aiter",
    "wave",
    "intel_amx",
    "ascend",
    "intel_xpu",
]
"""Every attention backend some catalogued release accepts; each release accepts a subset."""

ATTENTION_BACKENDS: tuple[str, ...] = get_args(AttentionBackend)

SamplingBackend = Literal["flashinfer", "pytorch", "ascend", "intel_xpu", "token_oracle"]
KvCacheDtype = Literal[
    "auto",
    "fp8_e5m2",
    "fp8_e4m3",
    "bf16",
    "bfloat16",
    "fp4_e2m1",
    "mxfp8",
    "nvfp4",
    "fp4_mx_block16",
]

ExtraValue = bool | int | float | str | tuple[str, ...] | tuple[int, ...] | tuple[float, ...]
"""A passthrough flag's value: typed as the catalogue types it; lists are tuples."""

FIELD_DESTS: Mapping[str, tuple[str, ...]] = {
    "cuda_graph_max_bs": ("cuda_graph_max_bs", "cuda_graph_max_bs_decode"),
    # up to 0.5.13 argparse names these after the long alias; SGLang copies them over
    "tp_size": ("tensor_parallel_size", "tp_size"),
    "dp_size": ("data_parallel_size", "dp_size"),
    _prefill_graph.FIELD: _prefill_graph.SWITCHES,
}
"""Fields whose argparse dest differs from their name, or changed between releases.

Any other field's dest is its name. ``cuda_graph_backend_prefill`` also carries the
piecewise choice from 0.5.14 on; ``detargs.sglang._prefill_graph`` handles that one by value."""


@dataclass(frozen=True, slots=True)
class LaunchValues:
    """Every ``ServerArgs`` field with its value, and which ones were set.

    Set means given by the user or decided by a rule; only set fields are written to
    the argv, as with ``ServerArgs.model_fields_set``.
    """

    # --- fields: generated from ServerArgs by python -m detargs.sglang._record_fields --write
    model_path: str | None = None
    attention_backend: AttentionBackend | None = None
    prefill_attention_backend: AttentionBackend | None = None
    decode_attention_backend: AttentionBackend | None = None
    sampling_backend: SamplingBackend | None = None
    enable_deterministic_inference: bool = False
    disable_radix_cache: bool = False
    piecewise_cuda_graph: bool | None = None
    disable_cuda_graph: bool = False
    cuda_graph_max_bs: int | None = None
    disable_custom_all_reduce: bool = False
    enable_torch_symm_mem: bool = False
    tp_size: int = 1
    dp_size: int = 1
    kv_cache_dtype: KvCacheDtype = "auto"
    mem_fraction_static: float | None = None
    trust_remote_code: bool = False
    speculative_algorithm: str | None = None
    speculative_draft_model_path: str | None = None
    speculative_num_steps: int | None = None
    speculative_eagle_topk: int | None = None
    speculative_num_draft_tokens: int | None = None
    rl_on_policy_target: Literal["fsdp"] | None = None
    chunked_prefill_size: int | None = None
    random_seed: int | None = None
    host: str = "127.0.0.1"
    port: int = 30000
    nnodes: int = 1
    node_rank: int = 0
    dist_init_addr: str | None = None
    extra: Mapping[str, ExtraValue] = field(default_factory=dict)
    # --- end of the generated fields
    fields_set: frozenset[str] = frozenset()

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> LaunchValues:
        """The record with ``values`` set (``extra`` keyed by dest, sorted)."""
        data = dict(values)
        if "extra" in data:
            data["extra"] = dict(sorted(data["extra"].items()))
        return cls(**data, fields_set=frozenset(values))

    def set_values(self) -> dict[str, Any]:
        """The fields that are set, with their values."""
        return {name: getattr(self, name) for name in self.fields_set}


FIELDS: Final = tuple(
    item.name for item in dataclasses.fields(LaunchValues) if item.name != "fields_set"
)
"""The field names in declaration order (``fields_set`` is bookkeeping, not a field)."""
DEFAULTS: Final[Mapping[str, Any]] = {name: getattr(LaunchValues(), name) for name in FIELDS}

_AT_LEAST: Final[Mapping[str, int]] = {
    "tp_size": 1,
    "dp_size": 1,
    "cuda_graph_max_bs": 1,
    "speculative_num_steps": 1,
    "speculative_eagle_topk": 1,
    "speculative_num_draft_tokens": 1,
    "nnodes": 1,
    "node_rank": 0,
}
RANGED: Final = (*_AT_LEAST, "mem_fraction_static", "port")
"""The fields whose values SGLang's parser takes but its server refuses out of range."""


def out_of_range(name: str, value: Any) -> str | None:
    """Why ``value`` is refused for field ``name``, or ``None``.

    >>> out_of_range("tp_size", 0)
    'must be at least 1'
    >>> out_of_range("mem_fraction_static", 1.5)
    'must be above 0 and at most 1'
    """
    if value is None or isinstance(value, bool):
        return None
    if name in _AT_LEAST and value < _AT_LEAST[name]:
        return f"must be at least {_AT_LEAST[name]}"
    if name == "mem_fraction_static" and not 0 < value <= 1:
        return "must be above 0 and at most 1"
    if name == "port" and not 0 <= value <= 65535:
        return "must be a port number from 0 to 65535"
    return None


def refusal(values: Mapping[str, Any]) -> str | None:
    """What ``ServerArgs`` would refuse in these set field values beyond their types and
    choices, as one message naming each flag, or ``None``.

    >>> refusal({"tp_size": 0, "model_path": "m"})
    'invalid server arguments: --tp-size: must be at least 1 (got 0)'
    """
    problems: list[tuple[str | None, str, Any]] = [
        (f"--{name.replace('_', '-')}", problem, values[name])
        for name in FIELDS
        if name in values and (problem := out_of_range(name, values[name])) is not None
    ]
    clash = _prefill_graph.clash(values.get("piecewise_cuda_graph"), values.get("extra", {}))
    if clash is not None:
        problems.append((None, clash, None))
    return invalid_arguments(problems) if problems else None


def invalid_arguments(problems: Iterable[tuple[str | None, str, Any]]) -> str:
    """The one message for launch values refused by ``ServerArgs`` or the argv reader.

    Each problem is ``(flag, why, value)``, said as ``flag: why (got value)``; one that
    no single flag owns (``flag`` None) is said alone.

    >>> invalid_arguments([("--port", "must be a port number from 0 to 65535", -1)])
    'invalid server arguments: --port: must be a port number from 0 to 65535 (got -1)'
    """
    parts = [
        why if flag is None else f"{flag}: {why} (got {value!r})" for flag, why, value in problems
    ]
    return "invalid server arguments: " + "; ".join(parts)
