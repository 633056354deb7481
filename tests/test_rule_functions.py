"""Each rule called directly on a ``Context``, without the engine.

``rule_context`` builds the context the engine would build for a launch; a row says which
rule, for which launch, returns which outcomes (field, value, kind), in order.
"""

from __future__ import annotations

from typing import Any

import pytest

from detargs.decisions import Caution, Decision, Outcome, Refusal
from detargs.profiles import profile
from detargs.sglang import rules
from detargs.sglang._argv_read import read_values
from detargs.sglang.model import model_facts
from detargs.sglang.rules import RULES, Context
from detargs.sglang.version import target_version


def rule_context(
    *argv: str,
    release: str = "0.5.23",
    device: str = "h100",
    model_arch: str | None = None,
    environ: dict[str, str] | None = None,
) -> Context:
    target = target_version(release)
    values, _ = read_values(["--enable-deterministic-inference", *argv], target)
    model = model_facts(values.model_path, model_arch)
    return Context.of(
        values, gpu=profile(device).launch_gpu(), target=target, model=model, environ=environ
    )


def shape(outcomes: tuple[Outcome, ...]) -> list[tuple[str, Any, str]]:
    shown: list[tuple[str, Any, str]] = []
    for outcome in outcomes:
        if isinstance(outcome, Decision):
            shown.append((outcome.field, outcome.value, outcome.kind))
        elif isinstance(outcome, Refusal):
            shown.append((outcome.field, outcome.value, "refusal"))
        else:
            shown.append(("", None, "caution"))
    return shown


CASES = [
    pytest.param(rules.implied_by_rl_target, rule_context(), [], id="rl-target-already-on"),
    pytest.param(
        rules.attention_backend,
        rule_context(),
        [("attention_backend", "fa3", "arg"), ("model", None, "note")],
        id="attention-hopper-fa3",
    ),
    pytest.param(
        rules.attention_backend,
        rule_context(device="b200"),
        [("attention_backend", "triton", "arg"), ("model", None, "note")],
        id="attention-blackwell-triton",
    ),
    pytest.param(
        rules.attention_backend,
        rule_context("--kv-cache-dtype", "fp8_e5m2"),
        [("attention_backend", "triton", "arg"), ("model", None, "note")],
        id="attention-e5m2-triton",
    ),
    pytest.param(
        rules.attention_backend,
        rule_context("--attention-backend", "fa3", device="b200"),
        [("attention_backend", "triton", "arg"), ("model", None, "note")],
        id="attention-fa3-on-blackwell-replaced",
    ),
    pytest.param(
        rules.attention_backend,
        rule_context("--attention-backend", "flashinfer", model_arch="DeepseekV2ForCausalLM"),
        [("attention_backend", "fa3", "arg"), ("model", "DeepseekV2ForCausalLM", "note")],
        id="attention-mla-flashinfer-replaced",
    ),
    pytest.param(
        rules.sampling_backend,
        rule_context(),
        [("sampling_backend", "pytorch", "arg")],
        id="sampling-pytorch",
    ),
    pytest.param(
        rules.sampling_backend,
        rule_context("--sampling-backend", "ascend"),
        [("sampling_backend", "ascend", "note")],
        id="sampling-ascend-kept",
    ),
    pytest.param(
        rules.sampling_backend,
        rule_context("--sampling-backend", "ascend", release="0.5.12"),
        [("sampling_backend", "pytorch", "arg")],
        id="sampling-ascend-0.5.12",
    ),
    pytest.param(
        rules.piecewise_cuda_graph,
        rule_context(),
        [("piecewise_cuda_graph", False, "arg")],
        id="prefill-graph-breakable-off",
    ),
    pytest.param(
        rules.piecewise_cuda_graph,
        rule_context(release="0.5.9"),
        [("piecewise_cuda_graph", None, "note")],
        id="prefill-eager-0.5.9",
    ),
    pytest.param(
        rules.piecewise_cuda_graph,
        rule_context("--cuda-graph-backend-prefill", "full"),
        [("extra.cuda_graph_backend_prefill", None, "arg"), ("piecewise_cuda_graph", False, "arg")],
        id="prefill-full-dropped",
    ),
    pytest.param(
        rules.piecewise_cuda_graph,
        rule_context("--disable-cuda-graph"),
        [("piecewise_cuda_graph", False, "note")],
        id="prefill-settled",
    ),
    pytest.param(
        rules.radix_cache,
        rule_context("--attention-backend", "flashinfer"),
        [("disable_radix_cache", True, "arg")],
        id="radix-off-flashinfer",
    ),
    pytest.param(
        rules.radix_cache, rule_context("--attention-backend", "fa3"), [], id="radix-kept-fa3"
    ),
    pytest.param(
        rules.tensor_parallel,
        rule_context("--tp-size", "2", device="h100x2"),
        [
            ("disable_custom_all_reduce", True, "arg"),
            ("NCCL_ALGO", "allreduce:tree", "env"),
            ("enable_torch_symm_mem", False, "arg"),
            ("NCCL_MIN_NCHANNELS", "8", "env"),
            ("NCCL_MAX_NCHANNELS", "8", "env"),
        ],
        id="tp2-0.5.23",
    ),
    pytest.param(
        rules.tensor_parallel,
        rule_context("--tp-size", "2", release="0.5.17", device="h100x2"),
        [("disable_custom_all_reduce", True, "arg"), ("NCCL_ALGO", "allreduce:tree", "env")],
        id="tp2-0.5.17",
    ),
    pytest.param(
        rules.tensor_parallel,
        rule_context(
            "--tp-size", "2", device="h100x2", environ={"SGLANG_DETERMINISTIC_NCCL_NCHANNELS": "4"}
        ),
        [
            ("disable_custom_all_reduce", True, "arg"),
            ("NCCL_ALGO", "allreduce:tree", "env"),
            ("enable_torch_symm_mem", False, "arg"),
            ("NCCL_MIN_NCHANNELS", "4", "env"),
            ("NCCL_MAX_NCHANNELS", "4", "env"),
        ],
        id="tp2-sglang-channels",
    ),
    pytest.param(
        rules.tensor_parallel,
        rule_context("--tp-size", "4", "--disable-custom-all-reduce", device="mi300xx4"),
        [("disable_custom_all_reduce", False, "arg")],
        id="tp4-rocm-rccl",
    ),
    pytest.param(rules.tensor_parallel, rule_context(), [], id="tp1-nothing"),
    pytest.param(
        rules.rejection_sampling,
        rule_context("--speculative-use-rejection-sampling", release="0.5.20"),
        [("extra.speculative_use_rejection_sampling", False, "arg")],
        id="rejection-0.5.20",
    ),
    pytest.param(
        rules.rejection_sampling,
        rule_context("--speculative-use-rejection-sampling"),
        [],
        id="rejection-0.5.23-allowed",
    ),
    pytest.param(
        rules.deepep_v2,
        rule_context("--moe-a2a-backend", "deepep_v2", release="0.5.19"),
        [("extra.moe_a2a_backend", "deepep", "arg")],
        id="deepep-v2-0.5.19",
    ),
    pytest.param(
        rules.deepep_v2,
        rule_context("--moe-a2a-backend", "deepep_v2"),
        [],
        id="deepep-v2-0.5.23-allowed",
    ),
    pytest.param(
        rules.uno_speculative,
        rule_context("--speculative-algorithm", "UNO"),
        [("speculative_algorithm", "UNO", "refusal")],
        id="uno-refused",
    ),
    pytest.param(
        rules.uno_speculative, rule_context("--speculative-algorithm", "EAGLE"), [], id="eagle-fine"
    ),
    pytest.param(
        rules.fp8_kv_cache,
        rule_context("--kv-cache-dtype", "fp8_e4m3"),
        [("", None, "caution")],
        id="fp8-caution",
    ),
    pytest.param(rules.fp8_kv_cache, rule_context(), [], id="auto-no-caution"),
]


@pytest.mark.parametrize(("rule", "context", "expected"), CASES)
def test_a_rule_returns_what_it_requires(
    rule: rules.Rule, context: Context, expected: list[tuple[str, Any, str]]
) -> None:
    outcomes = rule(context)
    assert shape(outcomes) == expected
    # rules leave naming to the engine and always give a reason
    assert all(outcome.rule == "" for outcome in outcomes)
    assert all(
        (outcome.text if isinstance(outcome, Caution) else outcome.reason) for outcome in outcomes
    )


def test_every_rule_has_direct_cases() -> None:
    covered = {param.values[0].__name__ for param in CASES}  # type: ignore[union-attr]
    assert covered == {rule.__name__ for rule in RULES}


def test_rl_target_implies_deterministic_inference() -> None:
    target = target_version("0.5.23")
    values, _ = read_values(["--rl-on-policy-target", "fsdp"], target)
    context = Context.of(
        values, gpu=profile("h100").launch_gpu(), target=target, model=model_facts(None)
    )
    assert shape(rules.implied_by_rl_target(context)) == [
        ("enable_deterministic_inference", True, "arg")
    ]


def test_the_context_marks_what_the_user_set() -> None:
    context = rule_context(
        "--tp-size", "2", "--cuda-graph-backend-prefill", "full", device="h100x2"
    )
    assert context.is_set("tp_size")
    assert context.is_set("extra.cuda_graph_backend_prefill")
    assert not context.is_set("attention_backend")
    assert context.facts.prefill_graph is not None
