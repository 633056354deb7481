"""The deterministic-inference rules: pure functions of a ``Context``, in one tuple.

Each rule reads the context (the arguments so far, the launch GPU, the target
SGLang release and its facts, the model facts, the caller's environment) and returns
what it requires as ``Decision`` values, each with a reason a user can act on, a
``Refusal`` when no value could make the launch deterministic, or a ``Caution`` for
what no value changes. Rules never look at globals, never log and never touch
``os.environ``; whether a required value replaces the user's, stands beside it, or
conflicts with it is the engine's call (``detargs.resolution``), made the same way for
every rule, and the engine records which rule decided each outcome.

``RULES`` is the order. What SGLang itself does per release is not written here: the
rules read it from ``detargs.sglang.releases`` (``ctx.facts``), one table row per release.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from packaging.version import Version

from ..decisions import Caution, Decision, Outcome, Refusal
from ..device import Arch, GpuInfo
from . import _prefill_graph
from ._prefill_graph import DEST as PREFILL_GRAPH_DEST
from ._values import LaunchValues
from .catalogue import catalogue_for
from .model import ModelFacts
from .releases import PrefillGraph, ReleaseFacts, release_facts
from .version import TargetVersion

__all__ = ["RULES", "Context", "Rule", "device_warnings"]


@dataclass(frozen=True)
class Context:
    """Everything a rule may read."""

    args: LaunchValues
    """The arguments as they stand: the user's, plus earlier rules' decisions."""
    user_set: frozenset[str]
    """Fields the user set (``extra.<dest>`` for passthrough flags)."""
    gpu: GpuInfo
    target: TargetVersion
    model: ModelFacts
    environ: Mapping[str, str] = field(default_factory=dict)
    """The environment the launch inherits (read only, for conflicts)."""

    @classmethod
    def of(
        cls,
        args: LaunchValues,
        *,
        gpu: GpuInfo,
        target: TargetVersion,
        model: ModelFacts,
        environ: Mapping[str, str] | None = None,
    ) -> Context:
        """The context of a launch the user wrote as ``args``: what they set is what is set,
        except a field set to ``None``, which asks for SGLang's default (a rule's to decide)."""
        names = {name for name in args.fields_set if getattr(args, name) is not None}
        names.discard("extra")
        names.update(f"extra.{dest}" for dest in args.extra)
        return cls(
            args=args,
            user_set=frozenset(names),
            gpu=gpu,
            target=target,
            model=model,
            environ={} if environ is None else environ,
        )

    @property
    def release(self) -> Version:
        return self.target.version

    @property
    def facts(self) -> ReleaseFacts:
        """What the target release does in deterministic mode (``detargs.sglang.releases``)."""
        return release_facts(self.release)

    def value(self, name: str) -> Any:
        if name.startswith("extra."):
            return self.args.extra.get(name.removeprefix("extra."))
        return getattr(self.args, name)

    def is_set(self, name: str) -> bool:
        return name in self.user_set


Rule = Callable[[Context], tuple[Outcome, ...]]


def device_warnings(gpu: GpuInfo) -> list[str]:
    """What the rules assume about ``gpu`` that the launch should know, before any rule runs."""
    if gpu.arch is Arch.UNKNOWN:
        return [
            f"{gpu.name} ({gpu.target}) is newer than any architecture detargs knows; the "
            "choices below assume it runs what Blackwell runs"
        ]
    if gpu.arch is Arch.ADA:
        return [
            f"{gpu.name} ({gpu.target}): SGLang's batch-invariant matmul kernels have been "
            "reported to need more shared memory than sm89 has (Triton OutOfResources at "
            "start-up on an L40S); if the server fails that way, that is why"
        ]
    return []


# --- where kernels run (sglang-rules reference §1c footnote 3, §1d) ------------------

_FA4_MLA_MAJORS: Final = frozenset({10, 11})
"""fa4 runs absorbed MLA only on sm100/sm110: flash_attn.cute implements its qv argument
there alone."""
_OTHER_HARDWARE: Final = {
    "ascend": "runs on Ascend NPUs only",
    "intel_xpu": "runs on Intel GPUs only",
}


def _runs_on(backend: str, gpu: GpuInfo, mla: bool, ctx: Context) -> str | None:
    """Why ``backend`` cannot run on ``gpu`` (``None`` when it can)."""
    major = gpu.capability.major
    if backend in _OTHER_HARDWARE:
        return f"{backend} {_OTHER_HARDWARE[backend]}"
    if gpu.vendor == "amd" and backend in ("fa3", "fa4", "flashinfer"):
        return f"{backend} runs on NVIDIA GPUs only; this GPU is AMD {gpu.target}"
    if backend == "fa3":
        if major == 9 or (major == 8 and not mla):
            return None
        needs = "sm90 for an MLA model" if mla else "sm80–sm90"
        return f"fa3 needs {needs}; this GPU is {gpu.target}"
    fa4_majors = ctx.facts.fa4_majors & _FA4_MLA_MAJORS if mla else ctx.facts.fa4_majors
    if backend == "fa4" and major not in fa4_majors:
        if mla:
            return f"fa4 runs absorbed MLA only on sm100/sm110; this GPU is {gpu.target}"
        targets = ", ".join(f"sm{m}0" for m in sorted(fa4_majors))
        return f"fa4 in SGLang {ctx.target.release} runs on {targets}; this GPU is {gpu.target}"
    return None


def _chosen_backend(ctx: Context) -> tuple[str, str]:
    """The backend detargs picks when the user gives none, and why."""
    gpu = ctx.gpu
    sm = gpu.target
    e5m2 = ctx.args.kv_cache_dtype == "fp8_e5m2"
    if gpu.vendor == "amd":
        return "triton", (
            f"ROCm ({sm}): triton runs on AMD Instinct and is batch-invariant; SGLang's ROCm "
            "default (aiter) is not in its deterministic list, and fa3 is NVIDIA-only"
        )
    if gpu.arch is Arch.HOPPER and not e5m2:
        return "fa3", f"Hopper ({sm}): fa3 is SGLang's batch-invariant backend built for it"
    if gpu.arch is Arch.HOPPER:
        return "triton", (
            f"Hopper ({sm}) would take fa3, but fa3 does not read an fp8_e5m2 KV cache "
            "(SGLang rewrites fa3 to triton for it), so triton is chosen directly"
        )
    radix = (
        "keeps the radix cache"
        if "triton" in ctx.facts.radix_backends
        else f"needs the radix cache off in SGLang {ctx.target.release}"
    )
    if gpu.arch is Arch.BLACKWELL:
        return "triton", (
            f"Blackwell ({sm}): triton is batch-invariant here and {radix}; fa3 does not run "
            "on Blackwell and flashinfer would turn the radix cache off"
        )
    return "triton", (
        f"{gpu.arch.value.capitalize()} ({sm}): triton runs on every GPU from sm80, is "
        f"batch-invariant and {radix}; fa3 is built for Hopper"
    )


# --- the rules ---------------------------------------------------------------------


def implied_by_rl_target(ctx: Context) -> tuple[Outcome, ...]:
    """`--rl-on-policy-target` implies deterministic inference. SGLang switches it on late,
    after its own piecewise-graph and all-reduce rules ran; detargs writes
    `--enable-deterministic-inference` up front so every later rule sees it."""
    if ctx.args.enable_deterministic_inference or ctx.args.rl_on_policy_target is None:
        return ()
    return (
        Decision(
            field="enable_deterministic_inference",
            value=True,
            reason="--rl-on-policy-target implies deterministic inference; SGLang turns it on "
            "late, after its piecewise-graph and all-reduce-fusion rules ran, so detargs says "
            "it up front",
        ),
    )


def attention_backend(ctx: Context) -> tuple[Outcome, ...]:
    """Picks the attention backend when none is given: **fa3 on Hopper, triton on
    Blackwell**, triton on Ampere, Ada and ROCm, and triton for an `fp8_e5m2` KV cache
    (fa3 cannot read one). A backend you give (also `--prefill-attention-backend` and
    `--decode-attention-backend`) is kept when the target release runs it
    deterministically, on this GPU, for this model family; otherwise it is a conflict. The
    model family (absorbed-MLA or not) comes from `architectures[0]` of a local
    `config.json`, or from `--model-arch`; it is recorded as a note."""
    facts = ctx.facts
    mla = ctx.model.family == "absorbed-mla"
    mla_checked = ctx.model.architecture in facts.mla_architectures
    choice, why = _chosen_backend(ctx)
    outcomes: list[Outcome] = []
    for name in ("attention_backend", "prefill_attention_backend", "decode_attention_backend"):
        backend = ctx.value(name)
        if backend is None:
            continue
        problem = None
        if backend not in facts.deterministic_backends:
            problem = (
                f"SGLang {ctx.target.release} runs deterministic inference only with "
                f"{', '.join(sorted(facts.deterministic_backends))}"
            )
        elif mla_checked and backend not in facts.mla_backends:
            problem = (
                f"SGLang {ctx.target.release} allows only {', '.join(sorted(facts.mla_backends))} "
                f"for absorbed-MLA models such as {ctx.model.architecture}"
            )
        elif (reason := _runs_on(backend, ctx.gpu, mla, ctx)) is not None:
            problem = reason
        elif backend == "fa3" and ctx.args.kv_cache_dtype == "fp8_e5m2":
            problem = "fa3 does not read an fp8_e5m2 KV cache; triton does"
        if problem is not None:
            outcomes.append(
                Decision(field=name, value=choice, reason=f"{problem}; detargs picks: {why}")
            )
        else:
            outcomes.append(
                Decision(
                    field=name,
                    value=backend,
                    kind="note",
                    reason=f"{backend} is kept: SGLang {ctx.target.release} runs it "
                    f"deterministically and it runs on {ctx.gpu.target}",
                )
            )
    if ctx.args.attention_backend is None and not ctx.is_set("attention_backend"):
        outcomes.append(Decision(field="attention_backend", value=choice, reason=why))
    outcomes.append(_family_note(ctx.model))
    return tuple(outcomes)


def _family_note(model: ModelFacts) -> Decision:
    if model.family == "unknown":
        reason = f"model family unknown: {model.detail}"
    elif model.family == "absorbed-mla":
        reason = (
            f"{model.detail}: an absorbed-MLA (DeepSeek-style) model, so the release's "
            "MLA backend list applies"
        )
    else:
        reason = f"{model.detail}: not an absorbed-MLA model"
    return Decision(field="model", value=model.architecture, reason=reason, kind="note")


def sampling_backend(ctx: Context) -> tuple[Outcome, ...]:
    """Sets `--sampling-backend pytorch`: pytorch sampling is batch-invariant, flashinfer's
    is not. SGLang replaces any other sampling backend silently; detargs makes it a
    conflict instead. An explicit `ascend` is kept from 0.5.13, as SGLang does."""
    if ctx.args.sampling_backend == "ascend" and ctx.facts.keeps_ascend_sampling:
        return (
            Decision(
                field="sampling_backend",
                value="ascend",
                kind="note",
                reason="an explicit ascend sampling backend is kept, as SGLang does from 0.5.13",
            ),
        )
    return (
        Decision(
            field="sampling_backend",
            value="pytorch",
            reason="pytorch sampling is batch-invariant; flashinfer's sampling kernels "
            "are not (SGLang replaces any other sampling backend silently)",
        ),
    )


def piecewise_cuda_graph(ctx: Context) -> tuple[Outcome, ...]:
    """Turns prefill CUDA graphs off wherever the release captures prefill in one by
    default, in that release's spelling: torch.compile piecewise graphs (0.5.10–0.5.13,
    `--disable-piecewise-cuda-graph`), tc_piecewise (0.5.14) and the breakable graph
    (0.5.15 on), all with `--cuda-graph-backend-prefill disabled` from 0.5.14. Each is
    replayed at padded token-bucket sizes and left for eager runs beyond them, so how a
    prefill is computed depends on the batch around it. SGLang's own deterministic mode
    stops turning the prefill graph off in 0.5.15, when its default becomes breakable;
    detargs keeps the policy. Decode CUDA graphs stay on. A prefill graph you ask for
    (`--cuda-graph-backend-prefill breakable|full|tc_piecewise`,
    `--enable-breakable-cuda-graph`, `--enforce-piecewise-cuda-graph`, a prefill backend in
    `--cuda-graph-config`) is a conflict; `--disable-cuda-graph` and
    `--disable-prefill-cuda-graph` already settle it."""
    default = ctx.facts.prefill_graph
    requests = _prefill_graph_requests(ctx, default)
    if default is not None and default.phase_settings:
        if ctx.args.disable_cuda_graph:
            return (*requests, _settled("--disable-cuda-graph turns every CUDA graph off"))
        if ctx.args.extra.get("disable_prefill_cuda_graph"):
            return (*requests, _settled("--disable-prefill-cuda-graph turns it off"))
        if _graph_config_prefill(ctx) is not None:
            # a prefill backend other than disabled is one of the requests above
            return (*requests, _settled("--cuda-graph-config sets the prefill backend"))
    if default is None:
        if requests:
            return requests
        return (
            Decision(
                field="piecewise_cuda_graph",
                value=None,
                kind="note",
                reason=f"SGLang {ctx.target.release} runs prefill eagerly unless asked "
                "for piecewise CUDA graphs: nothing to turn off",
            ),
        )
    return (
        *requests,
        Decision(
            field="piecewise_cuda_graph", value=False, reason=_prefill_graph_reason(ctx, default)
        ),
    )


def _prefill_graph_reason(ctx: Context, default: PrefillGraph) -> str:
    release = ctx.target.release
    off = " ".join(_prefill_graph.encode(False, catalogue_for(release)))
    if not default.turned_off_by_sglang:
        return (
            f"SGLang {release} captures prefill in a {default.name} CUDA graph by default: "
            "CUDA graph segments with eager breaks at attention, replayed at padded "
            "token-bucket sizes and run eagerly beyond them, so whether a prefill is padded or "
            "exact depends on the batch around it; it is the piecewise CUDA graph's successor, "
            "and SGLang's deterministic mode stopped turning it off in 0.5.15 only because its "
            f"rule checks for tc_piecewise. detargs writes {off}; decode CUDA graphs stay on. "
            "(One H200 run of SGLang 0.5.17 with a 2-layer random-weight model found the "
            "breakable graph batch-invariant; one tiny model is no guarantee: detargs check "
            "tells whether a server that keeps it is.)"
        )
    return (
        f"SGLang {release} captures prefill in {default.name} CUDA graphs by default; they "
        "replay at padded token counts per batch shape, which is not batch-invariant "
        f"(SGLang's deterministic mode turns them off too; detargs writes {off} so the argv "
        "says it)"
    )


def _settled(how: str) -> Decision:
    return Decision(
        field="piecewise_cuda_graph",
        value=False,
        kind="note",
        reason=f"prefill CUDA graphs are already off: {how}",
    )


_PREFILL_GRAPH_OFF: Final = (
    "prefill CUDA graphs replay at padded token-bucket sizes per batch shape, which is not "
    "batch-invariant; deterministic inference needs prefill to run eagerly"
)


def _prefill_graph_requests(ctx: Context, default: PrefillGraph | None) -> tuple[Outcome, ...]:
    """One decision per way the user asked for a prefill CUDA graph, each dropping it."""
    outcomes: list[Outcome] = []
    if ctx.args.piecewise_cuda_graph is True:
        # where prefill runs eagerly by default, dropping the request is enough
        outcomes.append(
            Decision(
                field="piecewise_cuda_graph",
                value=False if default else None,
                reason=_PREFILL_GRAPH_OFF,
            )
        )
    backend = ctx.args.extra.get(PREFILL_GRAPH_DEST)
    if backend is not None:  # breakable or full: the codec keeps the rest in the field
        outcomes.append(
            Decision(
                field=f"extra.{PREFILL_GRAPH_DEST}",
                value=None,
                reason=f"a {backend} prefill CUDA graph: {_PREFILL_GRAPH_OFF}",
            )
        )
    if ctx.args.extra.get("enable_breakable_cuda_graph"):
        outcomes.append(
            Decision(
                field="extra.enable_breakable_cuda_graph",
                value=None,
                reason=f"a breakable prefill CUDA graph: {_PREFILL_GRAPH_OFF}",
            )
        )
    config_backend = _graph_config_prefill(ctx)
    if config_backend not in (None, "disabled"):
        settings = json.loads(ctx.args.extra["cuda_graph_config"])  # type: ignore[arg-type]
        settings["prefill"]["backend"] = "disabled"
        outcomes.append(
            Decision(
                field="extra.cuda_graph_config",
                value=json.dumps(settings),
                reason=f"its prefill backend {config_backend}: "
                f"{_PREFILL_GRAPH_OFF}; detargs writes it as disabled",
            )
        )
    return tuple(outcomes)


def _graph_config_prefill(ctx: Context) -> str | None:
    """The prefill backend named in ``--cuda-graph-config``, if any."""
    text = ctx.args.extra.get("cuda_graph_config")
    if not isinstance(text, str):
        return None
    try:
        settings = json.loads(text)
    except ValueError:
        return None  # the codec refuses malformed JSON before any rule runs
    prefill = settings.get("prefill") if isinstance(settings, dict) else None
    backend = prefill.get("backend") if isinstance(prefill, dict) else None
    return backend if isinstance(backend, str) else None


def radix_cache(ctx: Context) -> tuple[Outcome, ...]:
    """Turns the radix (prefix) cache off when an attention backend in use is not one that
    keeps it batch-invariant in the target release."""
    # prefill/decode backends, when given, run beside (or instead of) the main one
    backends = [
        ctx.args.attention_backend,
        ctx.args.prefill_attention_backend,
        ctx.args.decode_attention_backend,
    ]
    capable = ctx.facts.radix_backends
    backend = next((name for name in backends if name is not None and name not in capable), None)
    if backend is None:
        return ()
    return (
        Decision(
            field="disable_radix_cache",
            value=True,
            reason=f"the radix cache is not batch-invariant with {backend} in SGLang "
            f"{ctx.target.release} (only {', '.join(sorted(capable))} keep it)",
        ),
    )


def tensor_parallel(ctx: Context) -> tuple[Outcome, ...]:
    """With `--tp-size` above 1 the all-reduce must add in a fixed order:
    `--disable-custom-all-reduce` and `NCCL_ALGO=allreduce:tree`; from 0.5.18 also a fixed
    NCCL channel count and no torch symmetric-memory all-reduce. On ROCm (0.5.7 on) SGLang's
    one-stage all-reduce is deterministic as it is, and 0.5.23 refuses
    `--disable-custom-all-reduce` above `--tp-size 2`. The variables go in
    `Resolution.env`, never into `os.environ`."""
    if ctx.args.tp_size <= 1:
        return ()
    why = f"with --tp-size {ctx.args.tp_size} the all-reduce must add in a fixed order"
    if ctx.gpu.vendor == "amd" and ctx.facts.rocm_one_stage_all_reduce:
        return _rocm_tensor_parallel(ctx, why)
    outcomes: list[Outcome] = [
        Decision(
            field="disable_custom_all_reduce",
            value=True,
            reason=f"{why}: SGLang's custom all-reduce kernel does not",
        ),
        Decision(
            field="NCCL_ALGO",
            value="allreduce:tree",
            kind="env",
            reason=f"{why}: NCCL's tree all-reduce does; SGLang sets it inside the server",
        ),
    ]
    if ctx.facts.pins_nccl_channels:
        channels, source = _channels(ctx)
        fixed = f"a fixed NCCL channel count keeps the reduction order fixed ({source})"
        outcomes += [
            Decision(
                field="enable_torch_symm_mem",
                value=False,
                reason=f"{why}: torch symmetric-memory all-reduce does not",
            ),
            Decision(field="NCCL_MIN_NCHANNELS", value=channels, reason=fixed, kind="env"),
            Decision(field="NCCL_MAX_NCHANNELS", value=channels, reason=fixed, kind="env"),
        ]
    return tuple(outcomes)


_CHANNELS_VARIABLE: Final = "SGLANG_DETERMINISTIC_NCCL_NCHANNELS"


def _channels(ctx: Context) -> tuple[str, str]:
    """The count SGLang (0.5.18+) will pin: its own variable when the launch inherits one."""
    given = ctx.environ.get(_CHANNELS_VARIABLE, "").strip()
    if given.isdigit() and int(given) > 0:
        return given, f"{_CHANNELS_VARIABLE}={given}, which SGLang 0.5.18+ reads"
    return "8", "SGLang 0.5.18+ pins 8"


def _rocm_tensor_parallel(ctx: Context, why: str) -> tuple[Outcome, ...]:
    # SGLang's one-stage all-reduce on ROCm is deterministic; turning it off above tp 2
    # falls back to RCCL in every such release, though only 0.5.23 says so
    if ctx.args.tp_size > 2 and ctx.args.disable_custom_all_reduce:
        return (
            Decision(
                field="disable_custom_all_reduce",
                value=False,
                reason=f"{why}: on ROCm above --tp-size 2, --disable-custom-all-reduce "
                "sends it through RCCL, which is not batch-invariant (SGLang 0.5.23 "
                "refuses it)",
            ),
        )
    return (
        Decision(
            field="disable_custom_all_reduce",
            value=ctx.args.disable_custom_all_reduce,
            kind="note",
            reason=f"{why}: on ROCm SGLang's one-stage all-reduce does, with no NCCL settings",
        ),
    )


def rejection_sampling(ctx: Context) -> tuple[Outcome, ...]:
    """Drops `--speculative-use-rejection-sampling` where the release refuses it next to
    deterministic inference (0.5.14–0.5.22): its sampling kernel draws from a global RNG."""
    if not (
        ctx.args.extra.get("speculative_use_rejection_sampling")
        and ctx.facts.refuses_rejection_sampling
    ):
        return ()
    return (
        Decision(
            field="extra.speculative_use_rejection_sampling",
            value=False,
            reason="--speculative-use-rejection-sampling draws from a global RNG in "
            f"SGLang {ctx.target.release}, which is not batch-invariant (allowed on CUDA "
            "from 0.5.23)",
        ),
    )


def deepep_v2(ctx: Context) -> tuple[Outcome, ...]:
    """Replaces `--moe-a2a-backend deepep_v2` with `deepep` where the release does not pass
    deterministic sorting to DeepEP v2 (0.5.19–0.5.20), which SGLang refuses."""
    if ctx.args.extra.get("moe_a2a_backend") != "deepep_v2" or not ctx.facts.refuses_deepep_v2:
        return ()
    return (
        Decision(
            field="extra.moe_a2a_backend",
            value="deepep",
            reason=f"--moe-a2a-backend deepep_v2 in SGLang {ctx.target.release} does not "
            "pass deterministic sorting to DeepEP; deepep does",
        ),
    )


def uno_speculative(ctx: Context) -> tuple[Outcome, ...]:
    """Refuses UNO speculative decoding (0.5.20 on), which samples without per-request
    seeds; no value of it can be deterministic."""
    algorithm = ctx.args.speculative_algorithm
    if algorithm is None or algorithm.upper() != "UNO" or not ctx.facts.refuses_uno:
        return ()
    return (
        Refusal(
            field="speculative_algorithm",
            value=algorithm,
            reason="UNO speculative decoding samples without per-request seeds, so it "
            "cannot be deterministic; choose another --speculative-algorithm or drop it",
        ),
    )


_FP8_KV_CACHE: Final = frozenset({"fp8_e5m2", "fp8_e4m3", "mxfp8"})


def fp8_kv_cache(ctx: Context) -> tuple[Outcome, ...]:
    """Warns when the KV cache is fp8: outputs stay batch-invariant, but the logprobs
    prefill computes for a token differ from the ones decode computes for the same token,
    since prefill attends over the unquantised keys and values and decode reads them back
    from the fp8 cache (SGLang issue 25790). Compare logprobs of one phase only."""
    dtype = ctx.args.kv_cache_dtype
    if dtype not in _FP8_KV_CACHE:
        return ()
    return (
        Caution(
            text=f"--kv-cache-dtype {dtype}: outputs stay batch-invariant, but prefill "
            "and decode logprobs of the same tokens differ (prefill attends over "
            "unquantised keys and values, decode reads the fp8 cache; SGLang issue "
            "25790), so compare logprobs of one phase only"
        ),
    )


RULES: Final[tuple[Rule, ...]] = (
    implied_by_rl_target,
    attention_backend,
    sampling_backend,
    piecewise_cuda_graph,
    radix_cache,
    tensor_parallel,
    rejection_sampling,
    deepep_v2,
    uno_speculative,
    fp8_kv_cache,
)
"""The rules, in the order they run; a later rule sees earlier decisions."""
