"""The per-release table: each fact changes exactly where the released wheels say it does.

Rows are written from the SGLang reference (§1a–§1g), release by release, so that an edit of
``detargs.sglang.releases.CHANGES`` that moves a boundary fails here by name.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from packaging.version import Version

from detargs.sglang.catalogue import releases
from detargs.sglang.releases import ABSORBED_MLA_ARCHITECTURES, CHANGES, ReleaseFacts, release_facts


def facts(release: str) -> ReleaseFacts:
    return release_facts(Version(release))


@pytest.mark.parametrize(
    ("fact", "before", "at", "value_before", "value_at"),
    [
        pytest.param(
            "radix_backends",
            "0.5.3.post3",
            "0.5.4",
            {"fa3"},
            {"fa3", "triton"},
            id="radix-triton-0.5.4",
        ),
        pytest.param(
            "deterministic_backends",
            "0.5.12.post1",
            "0.5.13",
            {"fa3", "flashinfer", "triton"},
            {"ascend", "fa3", "flashinfer", "triton"},
            id="ascend-0.5.13",
        ),
        pytest.param(
            "deterministic_backends",
            "0.5.15.post1",
            "0.5.16",
            {"ascend", "fa3", "flashinfer", "triton"},
            {"ascend", "fa3", "fa4", "flashinfer", "triton"},
            id="fa4-0.5.16",
        ),
        pytest.param(
            "deterministic_backends",
            "0.5.18",
            "0.5.19",
            {"ascend", "fa3", "fa4", "flashinfer", "triton"},
            {"ascend", "fa3", "fa4", "flashinfer", "intel_xpu", "triton"},
            id="intel-xpu-0.5.19",
        ),
        pytest.param(
            "mla_backends",
            "0.5.16",
            "0.5.17",
            {"fa3", "triton"},
            {"ascend", "fa3", "fa4", "triton"},
            id="mla-fa4-0.5.17",
        ),
        pytest.param(
            "fa4_majors", "0.5.17", "0.5.18", {9, 10, 11}, {9, 10, 11, 12}, id="fa4-sm12x-0.5.18"
        ),
        pytest.param(
            "keeps_ascend_sampling",
            "0.5.12.post1",
            "0.5.13",
            False,
            True,
            id="ascend-sampling-0.5.13",
        ),
        pytest.param(
            "rocm_one_stage_all_reduce",
            "0.5.6.post2",
            "0.5.7",
            False,
            True,
            id="rocm-one-stage-0.5.7",
        ),
        pytest.param(
            "pins_nccl_channels", "0.5.17", "0.5.18", False, True, id="nccl-channels-0.5.18"
        ),
        pytest.param(
            "refuses_rejection_sampling",
            "0.5.13.post1",
            "0.5.14",
            False,
            True,
            id="rejection-refused-0.5.14",
        ),
        pytest.param(
            "refuses_rejection_sampling",
            "0.5.22",
            "0.5.23",
            True,
            False,
            id="rejection-allowed-0.5.23",
        ),
        pytest.param(
            "refuses_deepep_v2", "0.5.18", "0.5.19", False, True, id="deepep-v2-refused-0.5.19"
        ),
        pytest.param(
            "refuses_deepep_v2", "0.5.20", "0.5.21", True, False, id="deepep-v2-allowed-0.5.21"
        ),
        pytest.param("refuses_uno", "0.5.19", "0.5.20", False, True, id="uno-refused-0.5.20"),
    ],
)
def test_a_fact_changes_at_its_release(
    fact: str, before: str, at: str, value_before: Any, value_at: Any
) -> None:
    assert getattr(facts(before), fact) == value_before
    assert getattr(facts(at), fact) == value_at


@pytest.mark.parametrize(
    ("release", "graph", "turned_off_by_sglang"),
    [
        pytest.param("0.5.9", None, None, id="0.5.9-eager"),
        pytest.param("0.5.10", "torch.compile piecewise", True, id="0.5.10-torch-compile"),
        pytest.param("0.5.13.post1", "torch.compile piecewise", True, id="0.5.13-torch-compile"),
        pytest.param("0.5.14", "tc_piecewise", True, id="0.5.14-tc-piecewise"),
        pytest.param("0.5.15", "breakable", False, id="0.5.15-breakable"),
        pytest.param("0.5.23", "breakable", False, id="0.5.23-breakable"),
    ],
)
def test_the_prefill_graph_of_each_release(
    release: str, graph: str | None, turned_off_by_sglang: bool | None
) -> None:
    default = facts(release).prefill_graph
    assert (default and default.name) == graph
    assert (default and default.turned_off_by_sglang) == turned_off_by_sglang


@pytest.mark.parametrize(
    ("release", "architecture", "checked"),
    [
        pytest.param("0.5.4", "DeepseekV3ForCausalLM", False, id="0.5.4-none"),
        pytest.param("0.5.4.post1", "DeepseekV3ForCausalLM", True, id="0.5.4.post1-deepseek"),
        pytest.param("0.5.6", "PixtralForConditionalGeneration", False, id="0.5.6-no-pixtral"),
        pytest.param("0.5.6.post1", "PixtralForConditionalGeneration", True, id="pixtral"),
        pytest.param("0.5.8.post1", "GlmMoeDsaForCausalLM", False, id="0.5.8-no-glm-dsa"),
        pytest.param("0.5.9", "GlmMoeDsaForCausalLM", True, id="0.5.9-glm-dsa"),
        pytest.param("0.5.17", "Glm4MoeLiteForCausalLM", False, id="0.5.17-no-glm4-lite"),
        pytest.param("0.5.18", "Glm4MoeLiteForCausalLM", True, id="0.5.18-glm4-lite"),
        pytest.param("0.5.19", "Glm5NextForConditionalGeneration", False, id="0.5.19-no-glm5"),
        pytest.param("0.5.20", "Glm5NextForConditionalGeneration", True, id="0.5.20-glm5"),
    ],
)
def test_the_mla_architectures_each_release_checks(
    release: str, architecture: str, checked: bool
) -> None:
    assert (architecture in facts(release).mla_architectures) is checked
    assert architecture in ABSORBED_MLA_ARCHITECTURES


def test_the_first_row_names_every_fact_and_rows_ascend() -> None:
    assert set(CHANGES[0][1]) == {field.name for field in fields(ReleaseFacts)}
    firsts = [Version(first) for first, _ in CHANGES]
    assert firsts == sorted(firsts)
    assert CHANGES[0][0] == releases()[0]
    # every row names a catalogued release, and changes something
    assert all(first in releases() and row for first, row in CHANGES)


@pytest.mark.parametrize("release", releases())
def test_every_release_has_facts(release: str) -> None:
    assert "triton" in facts(release).deterministic_backends
