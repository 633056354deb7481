"""The deterministic-inference rules: pure functions of a ``Context``, in one tuple.

Each rule reads the context (the arguments so far, the launch GPU, the target
SGLang release, the model facts, the caller's environment) and returns what it
requires as ``Decision`` values, each with a reason a user can act on, or a
``Refusal`` when no value could make the launch deterministic. Rules never look
at globals, never log and never touch ``os.environ``; whether a required value
replaces the user's, stands beside it, or conflicts with it is the engine's call
(``detargs.resolution``), made the same way for every rule.

``RULES`` is the order. What SGLang itself does per release is kept in the
``_since`` tables below (first release, value), read from the released wheels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from packaging.version import Version

from ._values import PREFILL_GRAPH_DEST, LaunchValues
from .argv import encode_argv
from .catalogue import release_version
from .device import Arch, GpuInfo
from .model import MLA_ARCHITECTURES_BY_RELEASE, ModelFacts
from .version import TargetVersion

__all__ = [
    "RULES",
    "Caution",
    "Context",
    "Decision",
    "Outcome",
    "PrefillGraph",
    "Refusal",
    "Rule",
    "deterministic_backends",
    "fa4_majors",
    "mla_backends",
    "mla_checked_architectures",
    "piecewise_by_default",
    "prefill_graph_by_default",
    "radix_backends",
]

T = TypeVar("T")

DecisionKind = Literal["arg", "env", "note"]


@dataclass(frozen=True)
class Decision:
    """A value a rule decided, and why.

    ``kind`` is ``arg`` for a ``ServerArgs`` field (``extra.<dest>`` for a passthrough
    flag), ``env`` for an environment variable of the launch, ``note`` for something
    the rule checked and left as it is (``value`` is then what stands).
    """

    field: str
    value: Any
    rule: str
    reason: str
    kind: DecisionKind = "arg"
    previous: Any = None
    """The value before the decision (the user's, when ``overrode_user``)."""
    overrode_user: bool = False


@dataclass(frozen=True)
class Refusal:
    """An incompatibility that no value of ``field`` can fix: the user must drop it."""

    field: str
    value: Any
    rule: str
    reason: str


@dataclass(frozen=True)
class Caution:
    """Something the launch should know that no value changes: it becomes a warning."""

    rule: str
    text: str


Outcome = Decision | Refusal | Caution


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

    @property
    def release(self) -> Version:
        return self.target.version

    def since(self, release: str) -> bool:
        return self.release >= release_version(release)

    def value(self, name: str) -> Any:
        if name.startswith("extra."):
            return self.args.extra.get(name.removeprefix("extra."))
        return getattr(self.args, name)

    def is_set(self, name: str) -> bool:
        return name in self.user_set


Rule = Callable[[Context], tuple[Outcome, ...]]


def _since(table: tuple[tuple[str, T], ...], release: Version) -> T:
    """The value of the newest row whose first release is at or before ``release``."""
    chosen = table[0][1]
    for first, value in table:
        if release >= release_version(first):
            chosen = value
    return chosen


# --- what SGLang does, per release (sglang-rules reference §1a, §1d) ----------------

_DETERMINISTIC_BACKENDS: Final = (
    ("0.5.3", frozenset({"flashinfer", "fa3", "triton"})),
    ("0.5.13", frozenset({"flashinfer", "fa3", "triton", "ascend"})),
    ("0.5.16", frozenset({"ascend", "fa3", "fa4", "flashinfer", "triton"})),
    ("0.5.19", frozenset({"ascend", "fa3", "fa4", "flashinfer", "intel_xpu", "triton"})),
)
# 0.5.3.post2 and .post3 dropped SGLang's radix rule by accident; detargs keeps 0.5.3's
_RADIX_BACKENDS: Final = (
    ("0.5.3", frozenset({"fa3"})),
    ("0.5.4", frozenset({"fa3", "triton"})),
    ("0.5.13", frozenset({"fa3", "triton", "ascend"})),
    ("0.5.16", frozenset({"ascend", "fa3", "fa4", "triton"})),
)
_MLA_BACKENDS: Final = (
    ("0.5.3", frozenset({"fa3", "triton"})),
    ("0.5.17", frozenset({"ascend", "fa3", "fa4", "triton"})),
)


@dataclass(frozen=True)
class PrefillGraph:
    """The CUDA graph a release captures prefill in when nothing says otherwise."""

    name: str
    """How the release's own flags and docs name it."""
    turned_off_by_sglang: bool
    """Whether SGLang's own deterministic mode turns it off."""
    phase_settings: bool
    """Whether it is one phase of the per-phase CUDA-graph settings (0.5.14 on), which
    ``--disable-cuda-graph``, ``--disable-prefill-cuda-graph`` and a prefill backend in
    ``--cuda-graph-config`` also turn off; before, piecewise graphs had switches of their own."""


# 0.5.10-0.5.14 turn their own default off in deterministic mode; from 0.5.15 the default
# is the breakable graph, which SGLang's rule (written for tc_piecewise) no longer catches
_PREFILL_GRAPH_BY_DEFAULT: Final[tuple[tuple[str, PrefillGraph | None], ...]] = (
    ("0.5.3", None),
    ("0.5.10", PrefillGraph("torch.compile piecewise", turned_off_by_sglang=True,
                            phase_settings=False)),
    ("0.5.14", PrefillGraph("tc_piecewise", turned_off_by_sglang=True, phase_settings=True)),
    ("0.5.15", PrefillGraph("breakable", turned_off_by_sglang=False, phase_settings=True)),
)  # fmt: skip
# The kernel targets SGLang's fa4 backend runs on, without and with absorbed MLA; from
# 0.5.18 an sm12x build of the FA4 kernel is loaded for RTX PRO 6000 / RTX 50 / GB10
_FA4_MAJORS: Final = (
    ("0.5.3", frozenset({9, 10, 11})),
    ("0.5.18", frozenset({9, 10, 11, 12})),
)
_FA4_MLA_MAJORS: Final = frozenset({10, 11})


def deterministic_backends(release: Version) -> frozenset[str]:
    """The attention backends SGLang ``release`` accepts in deterministic mode."""
    return _since(_DETERMINISTIC_BACKENDS, release)


def radix_backends(release: Version) -> frozenset[str]:
    """The deterministic backends that keep the radix cache in ``release``."""
    return _since(_RADIX_BACKENDS, release)


def mla_checked_architectures(release: Version) -> frozenset[str]:
    """The absorbed-MLA architectures whose backends ``release`` restricts."""
    return _since(MLA_ARCHITECTURES_BY_RELEASE, release)


def mla_backends(release: Version) -> frozenset[str]:
    """The attention backends ``release`` allows for absorbed-MLA models."""
    return _since(_MLA_BACKENDS, release)


def prefill_graph_by_default(release: Version) -> PrefillGraph | None:
    """The CUDA graph ``release`` captures prefill in unless told not to (``None``: eager)."""
    return _since(_PREFILL_GRAPH_BY_DEFAULT, release)


def piecewise_by_default(release: Version) -> bool:
    """Whether ``release`` captures prefill in a piecewise-style CUDA graph unless told not
    to (torch.compile piecewise, tc_piecewise or breakable: each replays per batch shape)."""
    return prefill_graph_by_default(release) is not None


def fa4_majors(release: Version, *, mla: bool) -> frozenset[int]:
    """The compute-capability majors ``release``'s fa4 backend runs on."""
    majors = _since(_FA4_MAJORS, release)
    return majors & _FA4_MLA_MAJORS if mla else majors


# --- where kernels run (sglang-rules reference §1c footnote 3, §1d) ------------------

_OTHER_HARDWARE: Final = {
    "ascend": "runs on Ascend NPUs only",
    "intel_xpu": "runs on Intel GPUs only",
}


def _runs_on(backend: str, gpu: GpuInfo, mla: bool, release: Version) -> str | None:
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
    if backend == "fa4" and major not in fa4_majors(release, mla=mla):
        if mla:
            return f"fa4 runs absorbed MLA only on sm100/sm110; this GPU is {gpu.target}"
        targets = ", ".join(f"sm{m}0" for m in sorted(fa4_majors(release, mla=False)))
        return f"fa4 in SGLang {release} runs on {targets}; this GPU is {gpu.target}"
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
        if "triton" in radix_backends(ctx.release)
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
            "enable_deterministic_inference",
            True,
            "implied_by_rl_target",
            "--rl-on-policy-target implies deterministic inference; SGLang turns it on late, "
            "after its piecewise-graph and all-reduce-fusion rules ran, so detargs says it "
            "up front",
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
    allowed = deterministic_backends(ctx.release)
    mla = ctx.model.family == "absorbed-mla"
    mla_checked = ctx.model.architecture in mla_checked_architectures(ctx.release)
    mla_allowed = mla_backends(ctx.release)
    choice, why = _chosen_backend(ctx)
    outcomes: list[Outcome] = []
    for name in ("attention_backend", "prefill_attention_backend", "decode_attention_backend"):
        backend = ctx.value(name)
        if backend is None:
            continue
        problem = None
        if backend not in allowed:
            problem = (
                f"SGLang {ctx.target.release} runs deterministic inference only with "
                f"{', '.join(sorted(allowed))}"
            )
        elif mla_checked and backend not in mla_allowed:
            problem = (
                f"SGLang {ctx.target.release} allows only {', '.join(sorted(mla_allowed))} "
                f"for absorbed-MLA models such as {ctx.model.architecture}"
            )
        elif (reason := _runs_on(backend, ctx.gpu, mla, ctx.release)) is not None:
            problem = reason
        elif backend == "fa3" and ctx.args.kv_cache_dtype == "fp8_e5m2":
            problem = "fa3 does not read an fp8_e5m2 KV cache; triton does"
        if problem is not None:
            outcomes.append(
                Decision(name, choice, "attention_backend", f"{problem}; detargs picks: {why}")
            )
        else:
            outcomes.append(
                Decision(
                    name, backend, "attention_backend",
                    f"{backend} is kept: SGLang {ctx.target.release} runs it deterministically "
                    f"and it runs on {ctx.gpu.target}",
                    kind="note",
                )
            )  # fmt: skip
    if ctx.args.attention_backend is None and not ctx.is_set("attention_backend"):
        outcomes.append(Decision("attention_backend", choice, "attention_backend", why))
    outcomes.append(_family_note(ctx.model))
    return tuple(outcomes)


def _family_note(model: ModelFacts) -> Decision:
    if model.family == "unknown":
        reason = f"model family unknown: {model.detail}"
    elif model.family == "absorbed-mla":
        reason = (f"{model.detail}: an absorbed-MLA (DeepSeek-style) model, so the release's "
                  "MLA backend list applies")  # fmt: skip
    else:
        reason = f"{model.detail}: not an absorbed-MLA model"
    return Decision("model", model.architecture, "attention_backend", reason, kind="note")


def sampling_backend(ctx: Context) -> tuple[Outcome, ...]:
    """Sets `--sampling-backend pytorch`: pytorch sampling is batch-invariant, flashinfer's
    is not. SGLang replaces any other sampling backend silently; detargs makes it a
    conflict instead. An explicit `ascend` is kept from 0.5.13, as SGLang does."""
    if ctx.args.sampling_backend == "ascend" and ctx.since("0.5.13"):
        return (
            Decision(
                "sampling_backend", "ascend", "sampling_backend",
                "an explicit ascend sampling backend is kept, as SGLang does from 0.5.13",
                kind="note",
            ),
        )  # fmt: skip
    return (
        Decision(
            "sampling_backend", "pytorch", "sampling_backend",
            "pytorch sampling is batch-invariant; flashinfer's sampling kernels are not "
            "(SGLang replaces any other sampling backend silently)",
        ),
    )  # fmt: skip


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
    rule = "piecewise_cuda_graph"
    default = prefill_graph_by_default(ctx.release)
    requests = _prefill_graph_requests(ctx, rule, default)
    if default is not None and default.phase_settings:
        if ctx.args.disable_cuda_graph:
            return (*requests, _settled(rule, "--disable-cuda-graph turns every CUDA graph off"))
        if ctx.args.extra.get("disable_prefill_cuda_graph"):
            return (*requests, _settled(rule, "--disable-prefill-cuda-graph turns it off"))
        if _graph_config_prefill(ctx) is not None:
            # a prefill backend other than disabled is one of the requests above
            return (*requests, _settled(rule, "--cuda-graph-config sets the prefill backend"))
    if default is None:
        if requests:
            return requests
        return (
            Decision(
                rule, None, rule,
                f"SGLang {ctx.target.release} runs prefill eagerly unless asked for "
                "piecewise CUDA graphs: nothing to turn off",
                kind="note",
            ),
        )  # fmt: skip
    return (*requests, Decision(rule, False, rule, _prefill_graph_reason(ctx, default)))


def _prefill_graph_reason(ctx: Context, default: PrefillGraph) -> str:
    release = ctx.target.release
    off = " ".join(encode_argv(LaunchValues.of({"piecewise_cuda_graph": False}), ctx.target))
    if not default.turned_off_by_sglang:
        return (
            f"SGLang {release} captures prefill in a breakable CUDA graph by default: CUDA "
            "graph segments with eager breaks at attention, replayed at padded token-bucket "
            "sizes and run eagerly beyond them, so whether a prefill is padded or exact "
            "depends on the batch around it; it is the piecewise CUDA graph's successor, and "
            "SGLang's deterministic mode stopped turning it off in 0.5.15 only because its "
            f"rule checks for tc_piecewise. detargs writes {off}; decode CUDA graphs stay on. "
            "(One H200 run of SGLang 0.5.17 with a 2-layer random-weight model found the "
            "breakable graph batch-invariant; one tiny model is no guarantee. To keep it, "
            "ask for --cuda-graph-backend-prefill breakable with --on-conflict override.)"
        )
    return (
        f"SGLang {release} captures prefill in {default.name} CUDA graphs by default; they "
        "replay at padded token counts per batch shape, which is not batch-invariant "
        f"(SGLang's deterministic mode turns them off too; detargs writes {off} so the argv "
        "says it)"
    )


def _settled(rule: str, how: str) -> Decision:
    return Decision(rule, False, rule, f"prefill CUDA graphs are already off: {how}",
                    kind="note")  # fmt: skip


_PREFILL_GRAPH_OFF: Final = (
    "prefill CUDA graphs replay at padded token-bucket sizes per batch shape, which is not "
    "batch-invariant; deterministic inference needs prefill to run eagerly"
)


def _prefill_graph_requests(
    ctx: Context, rule: str, default: PrefillGraph | None
) -> tuple[Outcome, ...]:
    """One decision per way the user asked for a prefill CUDA graph, each dropping it."""
    outcomes: list[Outcome] = []
    if ctx.args.piecewise_cuda_graph is True:
        # where prefill runs eagerly by default, dropping the request is enough
        outcomes.append(Decision(rule, False if default else None, rule, _PREFILL_GRAPH_OFF))
    backend = ctx.args.extra.get(PREFILL_GRAPH_DEST)
    if backend is not None:  # breakable or full: the codec keeps the rest in the field
        outcomes.append(Decision(f"extra.{PREFILL_GRAPH_DEST}", None, rule,
                                 f"a {backend} prefill CUDA graph: {_PREFILL_GRAPH_OFF}"))
    if ctx.args.extra.get("enable_breakable_cuda_graph"):
        outcomes.append(Decision("extra.enable_breakable_cuda_graph", None, rule,
                                 f"a breakable prefill CUDA graph: {_PREFILL_GRAPH_OFF}"))
    config_backend = _graph_config_prefill(ctx)
    if config_backend not in (None, "disabled"):
        settings = json.loads(ctx.args.extra["cuda_graph_config"])  # type: ignore[arg-type]
        settings["prefill"]["backend"] = "disabled"
        outcomes.append(Decision("extra.cuda_graph_config", json.dumps(settings), rule,
                                 f"its prefill backend {config_backend}: {_PREFILL_GRAPH_OFF}; "
                                 "detargs writes it as disabled"))
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
    backends = [ctx.args.attention_backend, ctx.args.prefill_attention_backend,
                ctx.args.decode_attention_backend]  # fmt: skip
    capable = radix_backends(ctx.release)
    backend = next((name for name in backends if name is not None and name not in capable), None)
    if backend is None:
        return ()
    return (
        Decision(
            "disable_radix_cache", True, "radix_cache",
            f"the radix cache is not batch-invariant with {backend} in SGLang "
            f"{ctx.target.release} (only {', '.join(sorted(capable))} keep it)",
        ),
    )  # fmt: skip


def tensor_parallel(ctx: Context) -> tuple[Outcome, ...]:
    """With `--tp-size` above 1 the all-reduce must add in a fixed order:
    `--disable-custom-all-reduce` and `NCCL_ALGO=allreduce:tree`; from 0.5.18 also a fixed
    NCCL channel count and no torch symmetric-memory all-reduce. On ROCm (0.5.7 on) SGLang's
    one-stage all-reduce is deterministic as it is, and 0.5.23 refuses
    `--disable-custom-all-reduce` above `--tp-size 2`. The variables go in
    `Resolution.env`, never into `os.environ`."""
    if ctx.args.tp_size <= 1:
        return ()
    rule = "tensor_parallel"
    why = f"with --tp-size {ctx.args.tp_size} the all-reduce must add in a fixed order"
    if ctx.gpu.vendor == "amd" and ctx.since("0.5.7"):
        return _rocm_tensor_parallel(ctx, rule, why)
    outcomes: list[Outcome] = [
        Decision("disable_custom_all_reduce", True, rule,
                 f"{why}: SGLang's custom all-reduce kernel does not"),
        Decision("NCCL_ALGO", "allreduce:tree", rule,
                 f"{why}: NCCL's tree all-reduce does; SGLang sets it inside the server",
                 kind="env"),
    ]  # fmt: skip
    if ctx.since("0.5.18"):
        channels, source = _channels(ctx)
        fixed = f"a fixed NCCL channel count keeps the reduction order fixed ({source})"
        outcomes += [
            Decision("enable_torch_symm_mem", False, rule,
                     f"{why}: torch symmetric-memory all-reduce does not"),
            Decision("NCCL_MIN_NCHANNELS", channels, rule, fixed, kind="env"),
            Decision("NCCL_MAX_NCHANNELS", channels, rule, fixed, kind="env"),
        ]  # fmt: skip
    return tuple(outcomes)


_CHANNELS_VARIABLE: Final = "SGLANG_DETERMINISTIC_NCCL_NCHANNELS"


def _channels(ctx: Context) -> tuple[str, str]:
    """The count SGLang (0.5.18+) will pin: its own variable when the launch inherits one."""
    given = ctx.environ.get(_CHANNELS_VARIABLE, "").strip()
    if given.isdigit() and int(given) > 0:
        return given, f"{_CHANNELS_VARIABLE}={given}, which SGLang 0.5.18+ reads"
    return "8", "SGLang 0.5.18+ pins 8"


def _rocm_tensor_parallel(ctx: Context, rule: str, why: str) -> tuple[Outcome, ...]:
    # From 0.5.7 SGLang runs a one-stage all-reduce on ROCm, which is deterministic; turning
    # it off above tp 2 falls back to RCCL in every such release, though only 0.5.23 says so
    if ctx.args.tp_size > 2 and ctx.args.disable_custom_all_reduce:
        return (
            Decision(
                "disable_custom_all_reduce", False, rule,
                f"{why}: on ROCm above --tp-size 2, --disable-custom-all-reduce sends it "
                "through RCCL, which is not batch-invariant (SGLang 0.5.23 refuses it)",
            ),
        )  # fmt: skip
    return (
        Decision(
            "disable_custom_all_reduce", ctx.args.disable_custom_all_reduce, rule,
            f"{why}: on ROCm SGLang's one-stage all-reduce does, with no NCCL settings",
            kind="note",
        ),
    )  # fmt: skip


def release_incompatibilities(ctx: Context) -> tuple[Outcome, ...]:
    """What a given SGLang release refuses next to deterministic inference: rejection
    sampling (0.5.14–0.5.22), `--moe-a2a-backend deepep_v2` (0.5.19–0.5.20) and UNO
    speculative decoding (0.5.20 on), each caught before launch."""
    rule = "release_incompatibilities"
    release = ctx.target.release
    outcomes: list[Outcome] = []
    rejection = ctx.args.extra.get("speculative_use_rejection_sampling")
    if rejection and ctx.since("0.5.14") and not ctx.since("0.5.23"):
        outcomes.append(
            Decision(
                "extra.speculative_use_rejection_sampling", False, rule,
                "--speculative-use-rejection-sampling draws from a global RNG in SGLang "
                f"{release}, "
                "which is not batch-invariant (allowed on CUDA from 0.5.23)",
            )
        )  # fmt: skip
    a2a = ctx.args.extra.get("moe_a2a_backend")
    if a2a == "deepep_v2" and ctx.since("0.5.19") and not ctx.since("0.5.21"):
        outcomes.append(
            Decision(
                "extra.moe_a2a_backend", "deepep", rule,
                f"--moe-a2a-backend deepep_v2 in SGLang {release} does not pass deterministic "
                "sorting to DeepEP; deepep does",
            )
        )  # fmt: skip
    algorithm = ctx.args.speculative_algorithm
    if algorithm is not None and algorithm.upper() == "UNO" and ctx.since("0.5.20"):
        outcomes.append(
            Refusal(
                "speculative_algorithm", algorithm, rule,
                "UNO speculative decoding samples without per-request seeds, so it cannot be "
                "deterministic; choose another --speculative-algorithm or drop it",
            )
        )  # fmt: skip
    return tuple(outcomes)


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
            "fp8_kv_cache",
            f"--kv-cache-dtype {dtype}: outputs stay batch-invariant, but prefill and decode "
            "logprobs of the same tokens differ (prefill attends over unquantised keys and "
            "values, decode reads the fp8 cache; SGLang issue 25790), so compare logprobs "
            "of one phase only",
        ),
    )


RULES: Final[tuple[Rule, ...]] = (
    implied_by_rl_target,
    attention_backend,
    sampling_backend,
    piecewise_cuda_graph,
    radix_cache,
    tensor_parallel,
    release_incompatibilities,
    fp8_kv_cache,
)
"""The rules, in the order they run; a later rule sees earlier decisions."""
