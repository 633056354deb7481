"""Named table tests over architectures x target releases x models, origin fixtures included."""

from __future__ import annotations

from pathlib import Path

import pytest

from detargs import ConflictError, ServerArgs, UnsupportedDeviceError, from_argv, resolve
from detargs.sglang.rules import RULES

from .test_argv import MLA_FIXTURE_ARGV, accepted_by_catalogue, standalone_fixture_argv

ORIGIN_RELEASES = ("0.5.10", "0.5.13", "0.5.14", "0.5.20", "0.5.23")


def _pcg(release: str) -> list[str]:
    return {
        "0.5.10": ["--disable-piecewise-cuda-graph"],
        "0.5.13": ["--disable-piecewise-cuda-graph"],
    }.get(release, ["--cuda-graph-backend-prefill", "disabled"])


def _max_bs(release: str) -> str:
    old = release in ("0.5.10", "0.5.13")
    return "--cuda-graph-max-bs" if old else "--cuda-graph-max-bs-decode"


@pytest.mark.parametrize("device", ["h100", "b200"])
@pytest.mark.parametrize("release", ORIGIN_RELEASES)
def test_standalone_speculative_fixture(device: str, release: str) -> None:
    launch = resolve(
        from_argv(standalone_fixture_argv(release), release),
        device=device,
        sglang_version=release,
        environ={},
    )
    assert list(launch.argv) == [
        "--attention-backend",
        "triton",
        "--sampling-backend",
        "pytorch",
        "--enable-deterministic-inference",
        *_pcg(release),
        _max_bs(release),
        "8",
        "--mem-fraction-static",
        "0.7",
        "--trust-remote-code",
        "--speculative-algorithm",
        "STANDALONE",
        "--speculative-draft-model-path",
        "D",
        "--speculative-num-steps",
        "4",
        "--speculative-eagle-topk",
        "2",
        "--speculative-num-draft-tokens",
        "7",
    ]
    assert launch.env == {}
    assert accepted_by_catalogue(list(launch.argv), release)


@pytest.mark.parametrize("device", ["h100", "b200"])
@pytest.mark.parametrize("release", ORIGIN_RELEASES)
def test_mla_fp8_fixture(device: str, release: str, deepseek_v2_lite: Path) -> None:
    args = from_argv(["--model-path", str(deepseek_v2_lite), *MLA_FIXTURE_ARGV], release)
    launch = resolve(args, device=device, sglang_version=release, environ={})
    assert list(launch.argv) == [
        "--model-path",
        str(deepseek_v2_lite),
        "--attention-backend",
        "triton",
        "--sampling-backend",
        "pytorch",
        "--enable-deterministic-inference",
        *_pcg(release),
        "--kv-cache-dtype",
        "fp8_e5m2",
        "--trust-remote-code",
    ]
    backend = next(d for d in launch.decisions if d.field == "attention_backend")
    assert "fp8_e5m2" in backend.reason if device == "h100" else "Blackwell" in backend.reason


@pytest.mark.parametrize(
    ("device", "release", "backend", "radix_off"),
    [
        pytest.param("h100", "0.5.23", "fa3", False, id="hopper-fa3"),
        pytest.param("h200", "0.5.10", "fa3", False, id="h200-fa3"),
        pytest.param("gh200", "0.5.4", "fa3", False, id="gh200-fa3-old"),
        pytest.param("b200", "0.5.23", "triton", False, id="b200-triton"),
        pytest.param("b200", "0.5.10", "triton", False, id="b200-triton-where-sglang-errs"),
        pytest.param("b300", "0.5.18", "triton", False, id="b300-sm103-triton"),
        pytest.param("gb200", "0.5.12", "triton", False, id="gb200-triton"),
        pytest.param("rtx-pro-6000", "0.5.16", "triton", False, id="sm120-triton"),
        pytest.param("rtx-5090", "0.5.7", "triton", False, id="rtx5090-triton"),
        pytest.param("dgx-spark", "0.5.23", "triton", False, id="sm121-triton"),
        pytest.param("a100", "0.5.23", "triton", False, id="ampere-triton"),
        pytest.param("l40s", "0.5.12", "triton", False, id="ada-triton"),
        pytest.param("b200", "0.5.3", "triton", True, id="0.5.3-radix-only-fa3"),
        pytest.param("h100", "0.5.3", "fa3", False, id="0.5.3-fa3-keeps-radix"),
        pytest.param("mi300x", "0.5.23", "triton", False, id="rocm-cdna3-triton"),
        pytest.param("mi355x", "0.5.12", "triton", False, id="rocm-cdna4-triton"),
    ],
)
def test_default_backend_per_architecture(
    device: str, release: str, backend: str, radix_off: bool
) -> None:
    launch = resolve(
        ServerArgs(enable_deterministic_inference=True),
        device=device,
        sglang_version=release,
        environ={},
    )
    assert launch.args.attention_backend == backend
    assert launch.args.sampling_backend == "pytorch"
    assert launch.args.disable_radix_cache is radix_off
    assert ("--disable-radix-cache" in launch.argv) is radix_off


@pytest.mark.parametrize(
    ("device", "release", "argv", "conflict"),
    [
        pytest.param(
            "b200",
            "0.5.23",
            ["--attention-backend", "fa3"],
            "fa3 needs sm80–sm90",
            id="fa3-on-blackwell",
        ),
        pytest.param(
            "h100",
            "0.5.23",
            ["--attention-backend", "trtllm_mha"],
            "runs deterministic inference only with",
            id="not-in-allow-list",
        ),
        pytest.param(
            "h100",
            "0.5.15",
            ["--attention-backend", "fa4"],
            "runs deterministic inference only with",
            id="fa4-before-0.5.16",
        ),
        pytest.param(
            "h100",
            "0.5.23",
            ["--attention-backend", "fa3", "--kv-cache-dtype", "fp8_e5m2"],
            "fp8_e5m2",
            id="fa3-e5m2",
        ),
        pytest.param(
            "h100",
            "0.5.23",
            ["--sampling-backend", "flashinfer"],
            "pytorch sampling",
            id="flashinfer-sampling",
        ),
        pytest.param(
            "h100", "0.5.12", ["--enforce-piecewise-cuda-graph"], "piecewise", id="enforce-pcg"
        ),
        pytest.param(
            "h100",
            "0.5.17",
            ["--cuda-graph-backend-prefill", "tc_piecewise"],
            "piecewise",
            id="tc-piecewise",
        ),
        pytest.param(
            "h100",
            "0.5.16",
            ["--speculative-use-rejection-sampling"],
            "--speculative-use-rejection-sampling",
            id="rejection-sampling",
        ),
        pytest.param(
            "h100", "0.5.19", ["--moe-a2a-backend", "deepep_v2"], "deepep_v2", id="deepep-v2"
        ),
        pytest.param("h100", "0.5.20", ["--speculative-algorithm", "UNO"], "UNO", id="uno"),
        pytest.param(
            "a100", "0.5.23", ["--attention-backend", "ascend"], "Ascend", id="ascend-on-nvidia"
        ),
        pytest.param(
            "mi300x", "0.5.23", ["--attention-backend", "fa3"], "NVIDIA GPUs only", id="fa3-on-rocm"
        ),
        pytest.param(
            "mi300x8",
            "0.5.23",
            ["--tp-size", "8", "--disable-custom-all-reduce"],
            "RCCL",
            id="rocm-tp-above-2-custom-all-reduce-off",
        ),
        pytest.param(
            "mi300x8",
            "0.5.22",
            ["--tp-size", "8", "--disable-custom-all-reduce"],
            "RCCL",
            id="rocm-rccl-before-0.5.23-too",
        ),
    ],
)
def test_conflicts_name_the_flag(device: str, release: str, argv: list[str], conflict: str) -> None:
    args = from_argv([*argv, "--enable-deterministic-inference"], release)
    with pytest.raises(ConflictError) as caught:
        resolve(args, device=device, sglang_version=release, environ={})
    assert conflict in str(caught.value)
    assert all(c.flag.startswith("--") for c in caught.value.conflicts)


def test_radix_cache_follows_every_backend_that_runs() -> None:
    argv = [
        "--prefill-attention-backend",
        "flashinfer",
        "--decode-attention-backend",
        "flashinfer",
        "--enable-deterministic-inference",
    ]
    launch = resolve(from_argv(argv, "0.5.23"), device="b200", sglang_version="0.5.23", environ={})
    radix = next(d for d in launch.decisions if d.field == "disable_radix_cache")
    assert radix.value is True
    assert "flashinfer" in radix.reason


def test_mla_model_allow_list(deepseek_v2_lite: Path) -> None:
    args = from_argv(
        [
            "--model-path",
            str(deepseek_v2_lite),
            "--attention-backend",
            "flashinfer",
            "--enable-deterministic-inference",
        ],
        "0.5.16",
    )
    with pytest.raises(ConflictError, match="absorbed-MLA models such as DeepseekV2ForCausalLM"):
        resolve(args, device="b200", sglang_version="0.5.16", environ={})


def test_fa4_with_mla_needs_sm100(deepseek_v2_lite: Path) -> None:
    args = from_argv(
        [
            "--model-path",
            str(deepseek_v2_lite),
            "--attention-backend",
            "fa4",
            "--enable-deterministic-inference",
        ],
        "0.5.17",
    )
    launch = resolve(args, device="b200", sglang_version="0.5.17", environ={})
    assert launch.args.attention_backend == "fa4"
    with pytest.raises(ConflictError, match="sm100/sm110"):
        resolve(args, device="h100", sglang_version="0.5.17", environ={})


def test_explicit_model_arch_and_unknown_family() -> None:
    args = ServerArgs(model_path="org/not-local", enable_deterministic_inference=True)
    unknown = resolve(args, device="b200", sglang_version="0.5.23", environ={})
    family = next(d for d in unknown.decisions if d.field == "model")
    assert "model family unknown" in family.reason
    known = resolve(
        args, device="b200", sglang_version="0.5.23", environ={}, model_arch="DeepseekV3ForCausalLM"
    )
    family = next(d for d in known.decisions if d.field == "model")
    assert "absorbed-MLA" in family.reason


@pytest.mark.parametrize(
    ("release", "env", "symm"),
    [
        pytest.param("0.5.17", {"NCCL_ALGO": "allreduce:tree"}, False, id="before-0.5.18"),
        pytest.param(
            "0.5.18",
            {"NCCL_ALGO": "allreduce:tree", "NCCL_MAX_NCHANNELS": "8", "NCCL_MIN_NCHANNELS": "8"},
            True,
            id="from-0.5.18",
        ),
    ],
)
def test_tensor_parallel(release: str, env: dict[str, str], symm: bool) -> None:
    args = ServerArgs(enable_deterministic_inference=True, tp_size=8)
    launch = resolve(args, device="h100x8", sglang_version=release, environ={})
    assert launch.env == env
    assert "--disable-custom-all-reduce" in launch.argv
    assert any(d.field == "enable_torch_symm_mem" for d in launch.decisions) is symm


@pytest.mark.parametrize(
    ("release", "tp", "flags"),
    [
        pytest.param("0.5.23", 8, [], id="rocm-one-stage-all-reduce"),
        pytest.param("0.5.23", 2, ["--disable-custom-all-reduce"], id="rocm-tp2-custom-ar-off"),
        pytest.param("0.5.22", 2, ["--disable-custom-all-reduce"], id="rocm-0.5.22-tp2"),
    ],
)
def test_rocm_tensor_parallel_sets_no_nccl(release: str, tp: int, flags: list[str]) -> None:
    args = from_argv(["--enable-deterministic-inference", "--tp-size", str(tp), *flags], release)
    launch = resolve(args, device=f"mi300x{tp}", sglang_version=release, environ={})
    assert launch.env == {}
    assert ("--disable-custom-all-reduce" in launch.argv) is bool(flags)


def test_rl_on_policy_target_implies_deterministic() -> None:
    launch = resolve(
        ServerArgs(rl_on_policy_target="fsdp"), device="h100", sglang_version="0.5.23", environ={}
    )
    assert launch.args.enable_deterministic_inference is True
    assert launch.decisions[0].rule == "implied_by_rl_target"


def test_older_than_ampere_is_refused() -> None:
    with pytest.raises(UnsupportedDeviceError, match="older than sm80"):
        resolve(ServerArgs(enable_deterministic_inference=True), device="t4", environ={})


def test_rules_are_one_ordered_tuple_of_functions() -> None:
    names = [rule.__name__ for rule in RULES]
    assert names.index("attention_backend") < names.index("radix_cache")
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("device", "warned"),
    [
        pytest.param("l40s", True, id="ada-warns"),
        pytest.param("rtx-4090", True, id="ada-consumer-warns"),
        pytest.param("a100", False, id="ampere-quiet"),
        pytest.param("h100", False, id="hopper-quiet"),
    ],
)
def test_ada_resolutions_carry_the_shared_memory_warning(device: str, warned: bool) -> None:
    launch = resolve(
        ServerArgs(enable_deterministic_inference=True),
        device=device,
        sglang_version="0.5.23",
        environ={},
    )
    assert any("shared memory" in text for text in launch.warnings) is warned


# --- fa4 on sm12x, fp8 KV cache ---------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "device", "kept"),
    [
        pytest.param("0.5.17", "rtx-pro-6000", False, id="sm120-0.5.17-no-sm12x-kernel"),
        pytest.param("0.5.18", "rtx-pro-6000", True, id="sm120-0.5.18"),
        pytest.param("0.5.20", "rtx-pro-6000", True, id="sm120-0.5.20"),
        pytest.param("0.5.22", "rtx-pro-6000", True, id="sm120-0.5.22"),
        pytest.param("0.5.23", "rtx-pro-6000", True, id="sm120-0.5.23"),
        pytest.param("0.5.23", "h100", True, id="sm90-0.5.23"),
        pytest.param("0.5.23", "b200", True, id="sm100-0.5.23"),
        pytest.param("0.5.23", "a100", False, id="sm80-paged-kv-assert"),
        pytest.param("0.5.23", "l40s", False, id="sm89-paged-kv-assert"),
    ],
)
def test_fa4_runs_where_its_kernels_do(release: str, device: str, kept: bool) -> None:
    args = from_argv(["--attention-backend", "fa4", "--enable-deterministic-inference"], release)
    if kept:
        launch = resolve(args, device=device, sglang_version=release, environ={})
        assert launch.args.attention_backend == "fa4"
    else:
        with pytest.raises(ConflictError, match="fa4"):
            resolve(args, device=device, sglang_version=release, environ={})


def test_fa4_with_mla_is_refused_on_sm120(deepseek_v2_lite: Path) -> None:
    args = from_argv(
        [
            "--model-path",
            str(deepseek_v2_lite),
            "--attention-backend",
            "fa4",
            "--enable-deterministic-inference",
        ],
        "0.5.23",
    )
    with pytest.raises(ConflictError, match="absorbed MLA only on sm100/sm110"):
        resolve(args, device="rtx-pro-6000", sglang_version="0.5.23", environ={})


@pytest.mark.parametrize(
    ("dtype", "warned"),
    [
        pytest.param("fp8_e5m2", True, id="fp8-e5m2"),
        pytest.param("fp8_e4m3", True, id="fp8-e4m3"),
        pytest.param("auto", False, id="auto"),
        pytest.param("bf16", False, id="bf16"),
    ],
)
def test_an_fp8_kv_cache_carries_the_logprob_warning(dtype: str, warned: bool) -> None:
    args = from_argv(["--kv-cache-dtype", dtype, "--enable-deterministic-inference"], "0.5.23")
    launch = resolve(args, device="b200", sglang_version="0.5.23", environ={})
    matching = [text for text in launch.warnings if "25790" in text]
    assert bool(matching) is warned
    if warned:
        assert "prefill and decode logprobs" in matching[0]
        assert "25790" in launch.explain()
        assert launch.to_dict()["warnings"] == list(launch.warnings)
