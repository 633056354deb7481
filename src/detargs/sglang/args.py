"""``ServerArgs``: one SGLang server launch, as a frozen pydantic model.

A field is one concept, whatever SGLang calls its flag in a given release
(``cuda_graph_max_bs`` is ``--cuda-graph-max-bs`` up to 0.5.13 and
``--cuda-graph-max-bs-decode`` after); the argv codec (``detargs.sglang.argv``) maps fields
to the target release's flags. Every other catalogued flag rides along in
``extra``, keyed by its argparse dest and checked against the catalogue when the
argv is built.

Which fields the user set is ``model_fields_set``: rules read it so they never
replace an explicit choice silently.

Values SGLang's parser would take but its server would refuse at start-up (a
``--tp-size`` of 0, a ``--mem-fraction-static`` above 1) are refused here, earlier.

This class is the one declaration of the launch fields. The codec and the rules engine
run on ``LaunchValues`` (``detargs.sglang._values``), the same fields as a plain record whose
field block is generated from this class's source (``python -m detargs.sglang._record_fields
--write`` after a field changes; the tests check it), so that the CLI never imports
pydantic; ``values()`` and ``from_values()`` convert, and the range checks and the
message that reports them are that module's, shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import InvalidArgsError
from ._prefill_graph import clash as prefill_graph_clash
from ._values import (
    FIELD_DESTS,
    RANGED,
    AttentionBackend,
    ExtraValue,
    KvCacheDtype,
    LaunchValues,
    SamplingBackend,
    invalid_arguments,
    out_of_range,
)

__all__ = ["ServerArgs"]


class ServerArgs(BaseModel):
    """The arguments of one ``python -m sglang.launch_server`` launch.

    >>> args = ServerArgs(model_path="m", enable_deterministic_inference=True)
    >>> sorted(args.model_fields_set)
    ['enable_deterministic_inference', 'model_path']
    """

    # Descriptions are given as Field(description=...), not as attribute docstrings: pydantic
    # extracts those by reading and tokenizing this file at import (~20 ms per process).
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: str | None = Field(
        None, description="The model weights: a local directory or a hub id (``--model-path``)."
    )
    attention_backend: AttentionBackend | None = Field(
        None, description="Attention kernels for prefill and decode (``--attention-backend``)."
    )
    prefill_attention_backend: AttentionBackend | None = Field(
        None, description="Attention kernels for prefill only (``--prefill-attention-backend``)."
    )
    decode_attention_backend: AttentionBackend | None = Field(
        None, description="Attention kernels for decode only (``--decode-attention-backend``)."
    )
    sampling_backend: SamplingBackend | None = Field(
        None, description="Sampling kernels (``--sampling-backend``)."
    )
    enable_deterministic_inference: bool = Field(
        False, description="Ask SGLang for batch-invariant, run-to-run identical outputs."
    )
    disable_radix_cache: bool = Field(
        False, description="Turn the prefix (radix) cache off (``--disable-radix-cache``)."
    )
    piecewise_cuda_graph: bool | None = Field(
        None,
        description=(
            "Piecewise CUDA graphs for prefill: True asks for them, False turns them off.\n"
            "\n"
            "Spelled ``--enable-piecewise-cuda-graph`` (0.5.3.post2–0.5.9),\n"
            "``--enforce-``/``--disable-piecewise-cuda-graph`` (0.5.10–0.5.13) and\n"
            "``--cuda-graph-backend-prefill tc_piecewise``/``disabled`` (0.5.14 on)."
        ),
    )
    disable_cuda_graph: bool = Field(
        False, description="Turn every CUDA graph off (``--disable-cuda-graph``)."
    )
    cuda_graph_max_bs: int | None = Field(
        None,
        description=(
            "Largest decode batch captured in a CUDA graph (``--cuda-graph-max-bs[-decode]``)."
        ),
    )
    disable_custom_all_reduce: bool = Field(
        False, description="Use NCCL instead of SGLang's custom all-reduce kernel."
    )
    enable_torch_symm_mem: bool = Field(False, description="Use torch symmetric-memory all-reduce.")
    tp_size: int = Field(1, description="Tensor-parallel degree (``--tp-size``).")
    dp_size: int = Field(1, description="Data-parallel degree (``--dp-size``).")
    kv_cache_dtype: KvCacheDtype = Field(
        "auto", description="KV-cache element type (``--kv-cache-dtype``)."
    )
    mem_fraction_static: float | None = Field(
        None,
        description=(
            "Fraction of GPU memory for weights and KV cache (``--mem-fraction-static``)."
        ),
    )
    trust_remote_code: bool = Field(
        False, description="Allow the model's own Python code from its repository."
    )
    speculative_algorithm: str | None = Field(
        None, description="Speculative decoding algorithm, e.g. ``EAGLE`` or ``STANDALONE``."
    )
    speculative_draft_model_path: str | None = Field(
        None, description="Draft model for speculative decoding."
    )
    speculative_num_steps: int | None = Field(None, description="Draft steps per verification.")
    speculative_eagle_topk: int | None = Field(
        None, description="Branching factor of the draft tree."
    )
    speculative_num_draft_tokens: int | None = Field(
        None, description="Draft tokens verified per step."
    )
    rl_on_policy_target: Literal["fsdp"] | None = Field(
        None,
        description=(
            "Match an RL trainer's numerics; implies deterministic inference (0.5.4.post1 on)."
        ),
    )
    chunked_prefill_size: int | None = Field(
        None, description="Prefill chunk size in tokens; -1 turns chunking off."
    )
    random_seed: int | None = Field(None, description="Seed for SGLang's random number generators.")
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(30000, description="Port the server listens on.")
    nnodes: int = Field(1, description="Number of nodes in a multi-node launch.")
    node_rank: int = Field(0, description="This node's rank in a multi-node launch.")
    dist_init_addr: str | None = Field(
        None, description="``host:port`` of rank 0 for multi-node initialisation."
    )
    extra: Mapping[str, ExtraValue] = Field(
        default_factory=dict,
        description=('Every other catalogued flag, by argparse dest (``{"log_level": "debug"}``).'),
    )

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise InvalidArgsError(_explain(error)) from None

    @classmethod
    def validate_dict(cls, data: Mapping[str, Any]) -> ServerArgs:
        """Build from a mapping, raising ``InvalidArgsError`` (never pydantic's error)."""
        return cls(**dict(data))

    @classmethod
    def from_values(cls, values: LaunchValues) -> ServerArgs:
        """The model of a ``LaunchValues`` record, with the same fields set."""
        return cls(**values.set_values())

    def values(self) -> LaunchValues:
        """These arguments as the plain record the codec and the rules engine read."""
        return LaunchValues.of({name: getattr(self, name) for name in self.model_fields_set})

    @field_validator(*RANGED)
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        # one check for ServerArgs and the argv reader (detargs.sglang._values), one message
        problem = out_of_range(str(info.field_name), value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("extra")
    @classmethod
    def _sorted_extra(cls, value: Mapping[str, ExtraValue]) -> Mapping[str, ExtraValue]:
        # a stable key order keeps dumps, argv and fingerprints independent of input order
        first_class = {dest: name for name in cls.model_fields for dest in _dests(name)}
        overlap = sorted(dest for dest in value if dest in first_class)
        if overlap:
            fields = sorted({first_class[dest] for dest in overlap})
            raise ValueError(f"{overlap} belong to the fields {fields}; set those, not extra")
        clash = prefill_graph_clash(None, value)
        if clash is not None:
            raise ValueError(clash)
        return dict(sorted(value.items()))

    @model_validator(mode="after")
    def _one_prefill_graph_choice(self) -> ServerArgs:
        clash = prefill_graph_clash(self.piecewise_cuda_graph, self.extra)
        if clash is not None:
            raise ValueError(clash)
        return self

    def user_set(self) -> dict[str, Any]:
        """The fields the user set, with their values (``extra`` included when set)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _dests(field: str) -> tuple[str, ...]:
    return FIELD_DESTS.get(field, (field,))


def _explain(error: ValidationError) -> str:
    problems: list[tuple[str | None, str, Any]] = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "ServerArgs"
        message = item["msg"].removeprefix("Value error, ")
        problems.append((_flag_for_location(location), message, item.get("input")))
    return invalid_arguments(problems)


def _flag_for_location(location: str) -> str:
    head, _, _ = location.partition(".")
    if head == "extra":
        return location
    return "--" + head.replace("_", "-")
