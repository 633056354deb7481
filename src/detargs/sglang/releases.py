"""What each SGLang release does in deterministic mode, as rows of one table.

Every per-release fact the rules read is a field of ``ReleaseFacts``. ``CHANGES`` holds
one row per release that changed any of them, naming only what changed; the facts of a
release are the first row updated by every later row up to that release. Each row was
read from the released wheels (the SGLang reference in the project's shared notes,
§1a–§1g), and ``docs/rules.md`` is generated from this table. Adding a release means:
regenerate the flag catalogue, add a row here if anything changed, add test rows.

>>> facts = release_facts(Version("0.5.18"))
>>> facts.prefill_graph.name, facts.pins_nccl_channels
('breakable', True)
>>> sorted(release_facts(Version("0.5.9")).deterministic_backends)
['fa3', 'flashinfer', 'triton']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Final, TypedDict

from packaging.version import Version

from .catalogue import release_version

__all__ = ["ABSORBED_MLA_ARCHITECTURES", "PrefillGraph", "ReleaseFacts", "release_facts"]


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
    ``--cuda-graph-config`` also turn off; before, piecewise graphs had switches of their
    own."""


@dataclass(frozen=True)
class ReleaseFacts:
    """One SGLang release's deterministic-mode behaviour, as the rules read it."""

    deterministic_backends: frozenset[str]
    """The attention backends the release accepts in deterministic mode."""
    radix_backends: frozenset[str]
    """The deterministic backends with which the radix cache stays on."""
    mla_architectures: frozenset[str]
    """The absorbed-MLA (DeepSeek-style) architectures whose backends it restricts."""
    mla_backends: frozenset[str]
    """The attention backends it allows for those architectures."""
    prefill_graph: PrefillGraph | None
    """The CUDA graph prefill runs in unless told otherwise (``None``: eager)."""
    fa4_majors: frozenset[int]
    """The compute-capability majors its fa4 kernels run on (absorbed MLA: 10 and 11 only)."""
    keeps_ascend_sampling: bool
    """Whether an explicit ``--sampling-backend ascend`` survives deterministic mode."""
    rocm_one_stage_all_reduce: bool
    """Whether ROCm runs the deterministic one-stage all-reduce with ``--tp-size`` above 1."""
    pins_nccl_channels: bool
    """Whether deterministic TP pins the NCCL channel count and turns torch symmetric
    memory off."""
    refuses_rejection_sampling: bool
    """Whether ``--speculative-use-rejection-sampling`` is refused next to it (on CUDA)."""
    refuses_deepep_v2: bool
    """Whether ``--moe-a2a-backend deepep_v2`` is refused next to it."""
    refuses_uno: bool
    """Whether UNO speculative decoding is refused next to it."""


class Changes(TypedDict, total=False):
    """The facts one release changed; a row of ``CHANGES``."""

    deterministic_backends: frozenset[str]
    radix_backends: frozenset[str]
    mla_architectures: frozenset[str]
    mla_backends: frozenset[str]
    prefill_graph: PrefillGraph | None
    fa4_majors: frozenset[int]
    keeps_ascend_sampling: bool
    rocm_one_stage_all_reduce: bool
    pins_nccl_channels: bool
    refuses_rejection_sampling: bool
    refuses_deepep_v2: bool
    refuses_uno: bool


_DEEPSEEK: Final = frozenset(
    {"DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM"}
)
_MISTRAL: Final = frozenset({"MistralLarge3ForCausalLM", "PixtralForConditionalGeneration"})
_GLM_DSA: Final = frozenset({"GlmMoeDsaForCausalLM"})
_BASE_BACKENDS: Final = frozenset({"flashinfer", "fa3", "triton"})

CHANGES: Final[tuple[tuple[str, Changes], ...]] = (
    (
        "0.5.3",
        Changes(
            deterministic_backends=_BASE_BACKENDS,
            # 0.5.3.post2 and .post3 dropped SGLang's radix rule by accident; detargs keeps 0.5.3's
            radix_backends=frozenset({"fa3"}),
            mla_architectures=frozenset(),
            mla_backends=frozenset({"fa3", "triton"}),
            prefill_graph=None,
            fa4_majors=frozenset({9, 10, 11}),
            keeps_ascend_sampling=False,
            rocm_one_stage_all_reduce=False,
            pins_nccl_channels=False,
            refuses_rejection_sampling=False,
            refuses_deepep_v2=False,
            refuses_uno=False,
        ),
    ),
    ("0.5.4", Changes(radix_backends=frozenset({"fa3", "triton"}))),
    ("0.5.4.post1", Changes(mla_architectures=_DEEPSEEK)),
    ("0.5.6.post1", Changes(mla_architectures=_DEEPSEEK | _MISTRAL)),
    ("0.5.7", Changes(rocm_one_stage_all_reduce=True)),
    ("0.5.9", Changes(mla_architectures=_DEEPSEEK | _MISTRAL | _GLM_DSA)),
    (
        "0.5.10",
        Changes(
            prefill_graph=PrefillGraph(
                "torch.compile piecewise", turned_off_by_sglang=True, phase_settings=False
            )
        ),
    ),
    (
        "0.5.13",
        Changes(
            deterministic_backends=_BASE_BACKENDS | {"ascend"},
            radix_backends=frozenset({"fa3", "triton", "ascend"}),
            keeps_ascend_sampling=True,
        ),
    ),
    (
        "0.5.14",
        Changes(
            prefill_graph=PrefillGraph(
                "tc_piecewise", turned_off_by_sglang=True, phase_settings=True
            ),
            refuses_rejection_sampling=True,
        ),
    ),
    # the default becomes the breakable graph, which SGLang's rule (written for
    # tc_piecewise) no longer turns off
    (
        "0.5.15",
        Changes(
            prefill_graph=PrefillGraph("breakable", turned_off_by_sglang=False, phase_settings=True)
        ),
    ),
    (
        "0.5.16",
        Changes(
            deterministic_backends=_BASE_BACKENDS | {"ascend", "fa4"},
            radix_backends=frozenset({"ascend", "fa3", "fa4", "triton"}),
        ),
    ),
    ("0.5.17", Changes(mla_backends=frozenset({"ascend", "fa3", "fa4", "triton"}))),
    # an sm12x build of the FA4 kernel (RTX PRO 6000, RTX 50, GB10) is loaded from here
    (
        "0.5.18",
        Changes(
            mla_architectures=_DEEPSEEK | _MISTRAL | _GLM_DSA | {"Glm4MoeLiteForCausalLM"},
            fa4_majors=frozenset({9, 10, 11, 12}),
            pins_nccl_channels=True,
        ),
    ),
    (
        "0.5.19",
        Changes(
            deterministic_backends=_BASE_BACKENDS | {"ascend", "fa4", "intel_xpu"},
            refuses_deepep_v2=True,
        ),
    ),
    (
        "0.5.20",
        Changes(
            mla_architectures=_DEEPSEEK
            | _MISTRAL
            | _GLM_DSA
            | {"Glm4MoeLiteForCausalLM", "Glm5NextForConditionalGeneration"},
            refuses_uno=True,
        ),
    ),
    ("0.5.21", Changes(refuses_deepep_v2=False)),
    ("0.5.23", Changes(refuses_rejection_sampling=False)),
)
"""From which release each fact holds: ``(first release, what changed)``, ascending."""

ABSORBED_MLA_ARCHITECTURES: Final = frozenset().union(
    *(row["mla_architectures"] for _, row in CHANGES if "mla_architectures" in row)
)
"""Every architecture some catalogued SGLang release treats as absorbed MLA."""


@functools.cache
def release_facts(release: Version) -> ReleaseFacts:
    """The facts of ``release``: the first row of ``CHANGES`` and every later row up to it."""
    facts = ReleaseFacts(**CHANGES[0][1])  # the first row names every fact
    for since, changes in CHANGES[1:]:
        if release >= release_version(since):
            facts = replace(facts, **changes)
    return facts
