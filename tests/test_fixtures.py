"""``DeterministicServerMixin``: the two origin fixtures, caching, devices, unittest use."""

from __future__ import annotations

import io
import sys
import unittest
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import pytest

from detargs import ConflictError, InvalidArgsError
from detargs.fixtures import DeterministicServerMixin
from detargs.testing import FakeNvml, fake_device

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_1B = "meta-llama/Llama-3.2-1B-Instruct"

# The launch arguments of SGLang's StandaloneServerBase (Triton class), as it wrote them
# up to 0.5.14 (origin-fixtures.md, fixture 1).
STANDALONE_ARGV_0_5_10 = [
    "--trust-remote-code",
    "--cuda-graph-max-bs",
    "8",
    "--speculative-algorithm",
    "STANDALONE",
    "--speculative-draft-model-path",
    LLAMA_1B,
    "--speculative-num-steps",
    "4",
    "--speculative-eagle-topk",
    "2",
    "--speculative-num-draft-tokens",
    "7",
    "--mem-fraction-static",
    "0.7",
    "--attention-backend",
    "triton",
    "--enable-deterministic-inference",
]


class StandaloneTriton(DeterministicServerMixin):
    """Origin fixture 1: standalone speculative decoding on the Triton backend."""

    model = LLAMA_8B
    draft_model = LLAMA_1B
    trust_remote_code = True
    cuda_graph_max_bs = 8
    speculative_algorithm = "STANDALONE"
    speculative_num_steps = 4
    speculative_eagle_topk = 2
    speculative_num_draft_tokens = 7
    mem_fraction_static = 0.7
    attention_backend = "triton"
    enable_deterministic_inference = True


def mla_fp8(model_dir: Path) -> type[DeterministicServerMixin]:
    """Origin fixture 2: TestMLA of test_mla_fp8.py, with a local DeepSeek-V2-Lite config."""

    class MlaFp8(DeterministicServerMixin):
        model = str(model_dir)
        trust_remote_code = True
        kv_cache_dtype = "fp8_e5m2"
        enable_deterministic_inference = True

    return MlaFp8


def configured(base: type[DeterministicServerMixin], **attributes: Any) -> type[Any]:
    """A fresh subclass of ``base`` with ``attributes`` set, as a fixture author writes one."""
    return type(base.__name__, (base,), dict(attributes))


ORIGIN_CASES = [
    pytest.param(
        "standalone",
        "h100",
        "0.5.10",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--disable-piecewise-cuda-graph",
            "--cuda-graph-max-bs",
            "8",
            "--mem-fraction-static",
            "0.7",
            "--trust-remote-code",
            "--speculative-algorithm",
            "STANDALONE",
            "--speculative-draft-model-path",
            LLAMA_1B,
            "--speculative-num-steps",
            "4",
            "--speculative-eagle-topk",
            "2",
            "--speculative-num-draft-tokens",
            "7",
        ],
        {},
        id="standalone-triton-h100-0.5.10",
    ),
    pytest.param(
        "standalone",
        "b200",
        "0.5.10",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--disable-piecewise-cuda-graph",
            "--cuda-graph-max-bs",
            "8",
            "--mem-fraction-static",
            "0.7",
            "--trust-remote-code",
            "--speculative-algorithm",
            "STANDALONE",
            "--speculative-draft-model-path",
            LLAMA_1B,
            "--speculative-num-steps",
            "4",
            "--speculative-eagle-topk",
            "2",
            "--speculative-num-draft-tokens",
            "7",
        ],
        {},
        id="standalone-triton-b200-0.5.10",
    ),
    pytest.param(
        "standalone",
        "h100",
        "0.5.23",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--cuda-graph-backend-prefill",
            "disabled",
            "--cuda-graph-max-bs-decode",
            "8",
            "--mem-fraction-static",
            "0.7",
            "--trust-remote-code",
            "--speculative-algorithm",
            "STANDALONE",
            "--speculative-draft-model-path",
            LLAMA_1B,
            "--speculative-num-steps",
            "4",
            "--speculative-eagle-topk",
            "2",
            "--speculative-num-draft-tokens",
            "7",
        ],
        {},
        id="standalone-triton-h100-0.5.23",
    ),
    pytest.param(
        "standalone",
        "b200",
        "0.5.23",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--cuda-graph-backend-prefill",
            "disabled",
            "--cuda-graph-max-bs-decode",
            "8",
            "--mem-fraction-static",
            "0.7",
            "--trust-remote-code",
            "--speculative-algorithm",
            "STANDALONE",
            "--speculative-draft-model-path",
            LLAMA_1B,
            "--speculative-num-steps",
            "4",
            "--speculative-eagle-topk",
            "2",
            "--speculative-num-draft-tokens",
            "7",
        ],
        {},
        id="standalone-triton-b200-0.5.23",
    ),
    pytest.param(
        "mla",
        "h100",
        "0.5.10",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--disable-piecewise-cuda-graph",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
        ],
        {},
        id="mla-fp8-h100-0.5.10",
    ),
    pytest.param(
        "mla",
        "b200",
        "0.5.10",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--disable-piecewise-cuda-graph",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
        ],
        {},
        id="mla-fp8-b200-0.5.10",
    ),
    pytest.param(
        "mla",
        "h100",
        "0.5.23",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--cuda-graph-backend-prefill",
            "disabled",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
        ],
        {},
        id="mla-fp8-h100-0.5.23",
    ),
    pytest.param(
        "mla",
        "b200",
        "0.5.23",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--cuda-graph-backend-prefill",
            "disabled",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
        ],
        {},
        id="mla-fp8-b200-0.5.23",
    ),
    pytest.param(
        "mla-tp2",
        "h100x2",
        "0.5.23",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--cuda-graph-backend-prefill",
            "disabled",
            "--disable-custom-all-reduce",
            "--tp-size",
            "2",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
        ],
        {"NCCL_ALGO": "allreduce:tree", "NCCL_MAX_NCHANNELS": "8", "NCCL_MIN_NCHANNELS": "8"},
        id="mla-fp8-tp2-h100x2-0.5.23",
    ),
    pytest.param(
        "mla-tp2",
        "b200x2",
        "0.5.10",
        [
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--disable-piecewise-cuda-graph",
            "--disable-custom-all-reduce",
            "--tensor-parallel-size",
            "2",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
        ],
        {"NCCL_ALGO": "allreduce:tree"},
        id="mla-fp8-tp2-b200x2-0.5.10",
    ),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mixin reads the real environment (DETARGS_DEVICE, and NCCL_* for conflicts).
    for name in (
        "DETARGS_DEVICE",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_ALGO",
        "NCCL_MIN_NCHANNELS",
        "NCCL_MAX_NCHANNELS",
    ):
        monkeypatch.delenv(name, raising=False)


def _origin(kind: str, model_dir: Path) -> type[DeterministicServerMixin]:
    if kind == "standalone":
        return StandaloneTriton
    if kind == "mla":
        return mla_fp8(model_dir)
    return configured(mla_fp8(model_dir), tp_size=2)


@pytest.mark.parametrize(("kind", "device", "version", "argv", "env"), ORIGIN_CASES)
def test_origin_fixture_launch(
    kind: str,
    device: str,
    version: str,
    argv: list[str],
    env: dict[str, str],
    deepseek_v2_lite: Path,
) -> None:
    fixture = configured(_origin(kind, deepseek_v2_lite), device=device, sglang_version=version)
    assert fixture.get_server_args() == argv
    assert fixture.get_server_env() == env
    assert fixture.get_resolution().sglang_version == version


@pytest.mark.parametrize("device", ["h100", "b200"])
def test_mla_fixture_reads_the_local_config(device: str, deepseek_v2_lite: Path) -> None:
    fixture = configured(mla_fp8(deepseek_v2_lite), device=device, sglang_version="0.5.23")
    notes = {(d.field, d.value) for d in fixture.get_resolution().decisions if d.kind == "note"}
    assert ("model", "DeepseekV2ForCausalLM") in notes


@pytest.mark.parametrize(
    ("device", "reason_start"),
    [
        pytest.param(
            "h100", "Hopper (sm90) would take fa3, but fa3 does not read an fp8_e5m2", id="h100"
        ),
        pytest.param("b200", "Blackwell (sm100): triton is batch-invariant", id="b200"),
    ],
)
def test_mla_fixture_explains_why_triton(
    device: str, reason_start: str, deepseek_v2_lite: Path
) -> None:
    fixture = configured(mla_fp8(deepseek_v2_lite), device=device, sglang_version="0.5.23")
    [decision] = [d for d in fixture.get_resolution().decisions if d.field == "attention_backend"]
    assert decision.value == "triton"
    assert decision.reason.startswith(reason_start)


def test_sglang_fixture_argv_as_extra_args_matches_the_attribute_form() -> None:
    as_argv = configured(
        DeterministicServerMixin,
        model=LLAMA_8B,
        extra_args=STANDALONE_ARGV_0_5_10,
        device="h100",
        sglang_version="0.5.10",
    )
    as_attributes = configured(StandaloneTriton, device="h100", sglang_version="0.5.10")
    assert as_argv.get_server_args() == as_attributes.get_server_args()


def test_extra_args_are_read_as_the_target_release_reads_them() -> None:
    # --cuda-graph-max-bs was removed in SGLang 0.5.20
    fixture = configured(
        DeterministicServerMixin,
        extra_args=STANDALONE_ARGV_0_5_10,
        device="h100",
        sglang_version="0.5.23",
    )
    with pytest.raises(InvalidArgsError, match="--cuda-graph-max-bs-decode") as caught:
        fixture.get_server_args()
    assert caught.value.flag == "--cuda-graph-max-bs"


# --- --model-path ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "expected_head"),
    [
        pytest.param(False, ["--attention-backend", "triton"], id="left-out-by-default"),
        pytest.param(
            True,
            ["--model-path", LLAMA_8B, "--attention-backend", "triton"],
            id="kept-with-include_model_path",
        ),
    ],
)
def test_model_path(include: bool, expected_head: list[str]) -> None:
    fixture = configured(
        StandaloneTriton, device="h100", sglang_version="0.5.23", include_model_path=include
    )
    argv = fixture.get_server_args()
    assert argv[: len(expected_head)] == expected_head
    assert argv.count("--model-path") == (1 if include else 0)
    assert fixture.get_resolution().argv[:2] == ("--model-path", LLAMA_8B)


def test_model_path_from_an_mla_fixture_is_the_local_directory(deepseek_v2_lite: Path) -> None:
    fixture = configured(
        mla_fp8(deepseek_v2_lite), device="b200", sglang_version="0.5.23", include_model_path=True
    )
    assert fixture.get_server_args()[:2] == ["--model-path", str(deepseek_v2_lite)]


# --- caching -------------------------------------------------------------------------


def _fake_nvml(monkeypatch: pytest.MonkeyPatch, name: str, count: int = 1) -> FakeNvml:
    """Serve ``import pynvml`` from a FakeNvml: the mixin's real NVML path, no GPU."""
    fake = FakeNvml.from_profile(name, count=count)
    monkeypatch.setitem(sys.modules, "pynvml", cast(ModuleType, fake))
    return fake


def test_resolution_runs_once_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml(monkeypatch, "h100")
    fixture = configured(StandaloneTriton, sglang_version="0.5.23")
    first = fixture.get_resolution()
    for _ in range(3):
        fixture.get_server_args()
        fixture.get_server_env()
    assert fixture.get_resolution() is first
    assert fake.init_calls == 1  # the GPUs were probed once, for the first call only


def test_the_cache_outlives_a_change_of_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETARGS_DEVICE", "h100")
    fixture = configured(StandaloneTriton, sglang_version="0.5.10")
    assert fixture.get_resolution().device is not None
    monkeypatch.setenv("DETARGS_DEVICE", "b200")
    device = fixture.get_resolution().device
    assert device is not None
    assert device.launch_gpu().name == "NVIDIA H100 80GB HBM3"


def test_a_subclass_with_other_attributes_resolves_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_nvml(monkeypatch, "h100", count=2)
    base = configured(
        DeterministicServerMixin,
        model=LLAMA_8B,
        enable_deterministic_inference=True,
        sglang_version="0.5.23",
    )
    subclass = configured(base, attention_backend="triton", tp_size=2)
    assert base.get_server_args() == [
        "--attention-backend",
        "fa3",
        "--sampling-backend",
        "pytorch",
        "--enable-deterministic-inference",
        "--cuda-graph-backend-prefill",
        "disabled",
    ]
    assert subclass.get_server_args() == [
        "--attention-backend",
        "triton",
        "--sampling-backend",
        "pytorch",
        "--enable-deterministic-inference",
        "--cuda-graph-backend-prefill",
        "disabled",
        "--disable-custom-all-reduce",
        "--tp-size",
        "2",
    ]
    assert subclass.get_server_env() == {
        "NCCL_ALGO": "allreduce:tree",
        "NCCL_MAX_NCHANNELS": "8",
        "NCCL_MIN_NCHANNELS": "8",
    }
    assert base.get_server_env() == {}
    assert fake.init_calls == 2  # one probe per class
    base.get_server_args()
    assert fake.init_calls == 2


def test_a_subclass_resolved_first_leaves_its_base_to_resolve_its_own() -> None:
    base = configured(StandaloneTriton, device="h100", sglang_version="0.5.23")
    subclass = configured(base, attention_backend="fa3")
    assert subclass.get_server_args()[:2] == ["--attention-backend", "fa3"]
    assert base.get_server_args()[:2] == ["--attention-backend", "triton"]


# --- the device ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("class_device", "env_device", "nvml_profile", "expected_gpu", "expected_source"),
    [
        pytest.param("b200", "h100", "l40s", "NVIDIA B200", "profile", id="class-attribute"),
        pytest.param(None, "b200", "l40s", "NVIDIA B200", "profile", id="DETARGS_DEVICE"),
        pytest.param(
            None,
            "auto",
            "h100",
            "NVIDIA H100 80GB HBM3",
            "nvml",
            id="DETARGS_DEVICE-auto-then-nvml",
        ),
        pytest.param(None, None, "b200", "NVIDIA B200", "nvml", id="nvml"),
    ],
)
def test_device_precedence(
    class_device: str | None,
    env_device: str | None,
    nvml_profile: str,
    expected_gpu: str,
    expected_source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_nvml(monkeypatch, nvml_profile)
    if env_device is not None:
        monkeypatch.setenv("DETARGS_DEVICE", env_device)
    fixture = configured(StandaloneTriton, device=class_device, sglang_version="0.5.23")
    device = fixture.get_resolution().device
    assert device is not None
    assert (device.launch_gpu().name, device.source) == (expected_gpu, expected_source)
    assert fake.init_calls == (1 if expected_source == "nvml" else 0)
    assert not fake.initialized


def test_device_from_nvml_decides_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvml(monkeypatch, "b200", count=2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    fixture = configured(
        DeterministicServerMixin, enable_deterministic_inference=True, sglang_version="0.5.23"
    )
    resolution = fixture.get_resolution()
    assert resolution.device is not None
    assert resolution.device.count == 1
    assert fixture.get_server_args()[:2] == ["--attention-backend", "triton"]


@pytest.mark.parametrize(
    "device",
    [
        pytest.param(fake_device("b200"), id="DeviceInfo"),
        pytest.param("saved-json", id="saved-json-path"),
    ],
)
def test_device_attribute_forms(device: Any, tmp_path: Path) -> None:
    if device == "saved-json":
        device = tmp_path / "b200.json"
        device.write_text(fake_device("b200").to_json(), encoding="utf-8")
        device = str(device)
    fixture = configured(
        DeterministicServerMixin,
        enable_deterministic_inference=True,
        device=device,
        sglang_version="0.5.23",
    )
    assert fixture.get_server_args()[:2] == ["--attention-backend", "triton"]


# --- conflicts -------------------------------------------------------------------------


def test_a_conflicting_attribute_is_an_error_naming_the_flag() -> None:
    fixture = configured(
        StandaloneTriton, device="h100", sglang_version="0.5.23", sampling_backend="flashinfer"
    )
    with pytest.raises(ConflictError, match="--sampling-backend flashinfer"):
        fixture.get_server_args()


def test_on_conflict_override_replaces_the_attribute() -> None:
    fixture = configured(
        StandaloneTriton,
        device="h100",
        sglang_version="0.5.23",
        sampling_backend="flashinfer",
        on_conflict="override",
    )
    assert fixture.get_server_args()[2:4] == ["--sampling-backend", "pytorch"]
    [decision] = [d for d in fixture.get_resolution().decisions if d.field == "sampling_backend"]
    assert (decision.previous, decision.overrode_user) == ("flashinfer", True)


def test_an_unknown_on_conflict_is_refused() -> None:
    fixture = configured(StandaloneTriton, device="h100", on_conflict="replace")
    with pytest.raises(InvalidArgsError, match="on_conflict must be 'error' or 'override'"):
        fixture.get_resolution()


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param(
            {"attention_backend": ""},
            ["--attention-backend", "fa3"],
            id="empty-string-means-not-chosen",
        ),
        pytest.param(
            {"attention_backend": None}, ["--attention-backend", "fa3"], id="none-means-not-chosen"
        ),
    ],
)
def test_sglang_style_unset_attributes(attributes: dict[str, Any], expected: list[str]) -> None:
    fixture = configured(
        DeterministicServerMixin,
        enable_deterministic_inference=True,
        device="h100",
        sglang_version="0.5.23",
        **attributes,
    )
    assert fixture.get_server_args()[:2] == expected


def test_a_fixture_without_deterministic_inference_is_left_alone() -> None:
    class FlashInferClass(DeterministicServerMixin):
        attention_backend = "flashinfer"
        enable_deterministic_inference = False
        device = "h100"

    assert FlashInferClass.get_server_args() == ["--attention-backend", "flashinfer"]
    assert FlashInferClass.get_resolution().decisions == ()


# --- unittest.TestCase, with a stand-in for SGLang's popen_launch_server ---------------


def popen_launch_server(
    model: str,
    base_url: str,
    timeout: float,
    other_args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The command SGLang 0.5.10+'s popen_launch_server would start (sglang-rules §4)."""
    del timeout, env
    url = urlsplit(base_url)
    return [
        "sglang",
        "serve",
        "--model-path",
        model,
        *(other_args or ()),
        "--host",
        str(url.hostname),
        "--port",
        str(url.port),
    ]


class TestMLA(DeterministicServerMixin, unittest.TestCase):
    """The origin MLA fixture as its unittest class is written, launched through the stand-in."""

    model = "deepseek-ai/DeepSeek-V2-Lite"
    model_arch = "DeepseekV2ForCausalLM"
    trust_remote_code = True
    kv_cache_dtype = "fp8_e5m2"
    enable_deterministic_inference = True
    tp_size = 2
    device = "b200x2"
    sglang_version = "0.5.23"
    base_url = "http://127.0.0.1:21000"
    command: ClassVar[list[str]]
    env: ClassVar[dict[str, str]]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.env = cls.get_server_env()
        cls.command = popen_launch_server(
            cls.model, cls.base_url, timeout=600, other_args=cls.get_server_args(), env=cls.env
        )

    def test_command(self) -> None:
        assert self.command == [
            "sglang",
            "serve",
            "--model-path",
            "deepseek-ai/DeepSeek-V2-Lite",
            "--attention-backend",
            "triton",
            "--sampling-backend",
            "pytorch",
            "--enable-deterministic-inference",
            "--cuda-graph-backend-prefill",
            "disabled",
            "--disable-custom-all-reduce",
            "--tp-size",
            "2",
            "--kv-cache-dtype",
            "fp8_e5m2",
            "--trust-remote-code",
            "--host",
            "127.0.0.1",
            "--port",
            "21000",
        ]

    def test_env(self) -> None:
        assert self.env == {
            "NCCL_ALGO": "allreduce:tree",
            "NCCL_MAX_NCHANNELS": "8",
            "NCCL_MIN_NCHANNELS": "8",
        }

    def test_model_family_came_from_model_arch(self) -> None:
        notes = [d for d in self.get_resolution().decisions if d.field == "model"]
        assert [d.value for d in notes] == ["DeepseekV2ForCausalLM"]


def test_the_unittest_class_runs_under_unittest() -> None:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(TestMLA)
    stream = io.StringIO()
    result = unittest.TextTestRunner(stream=stream, verbosity=0).run(suite)
    assert result.wasSuccessful(), stream.getvalue()
    assert result.testsRun == 3
