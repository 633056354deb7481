"""The committed SGLang flag catalogue: per-version facts and structure (no network, no sglang)."""

from __future__ import annotations

import itertools
import json
from importlib import resources
from typing import Any

import pytest
from packaging.version import Version

from detargs.sglang.catalogue import Flag, catalogue_for, flag_history, releases

EXPECTED_RELEASES = (
    "0.5.3",
    "0.5.3.post1",
    "0.5.3.post2",
    "0.5.3.post3",
    "0.5.4",
    "0.5.4.post1",
    "0.5.4.post2",
    "0.5.4.post3",
    "0.5.5",
    "0.5.5.post1",
    "0.5.5.post2",
    "0.5.5.post3",
    "0.5.6",
    "0.5.6.post1",
    "0.5.6.post2",
    "0.5.7",
    "0.5.8",
    "0.5.8.post1",
    "0.5.9",
    "0.5.10",
    "0.5.10.post1",
    "0.5.11",
    "0.5.12",
    "0.5.12.post1",
    "0.5.13",
    "0.5.13.post1",
    "0.5.14",
    "0.5.15",
    "0.5.15.post1",
    "0.5.16",
    "0.5.17",
    "0.5.18",
    "0.5.19",
    "0.5.20",
    "0.5.21",
    "0.5.22",
    "0.5.23",
)

MAX_DATA_BYTES = 400_000  # the generated file is about 250 kB

ATTENTION_0_5_3 = (
    "triton",
    "torch_native",
    "flex_attention",
    "nsa",
    "cutlass_mla",
    "fa3",
    "fa4",
    "flashinfer",
    "flashmla",
    "trtllm_mla",
    "trtllm_mha",
    "dual_chunk_flash_attn",
    "aiter",
    "wave",
    "intel_amx",
    "ascend",
)
ATTENTION_0_5_23 = (
    "triton",
    "torch_native",
    "flex_attention",
    "dsa",
    "nsa",
    "qsa",
    "dsv4",
    "compressed",
    "fa3",
    "fa4",
    "flashinfer",
    "llada2_cfg_flashinfer",
    "flashmla",
    "trtllm_mla",
    "cutedsl_mla",
    "tokenspeed_mla",
    "trtllm_mha",
    "hpc_ops",
    "minicpm_flashattn",
    "minicpm_flashinfer",
    "aiter",
    "wave",
    "intel_amx",
    "ascend",
    "intel_xpu",
)
KV_0_5_3 = ("auto", "fp8_e5m2", "fp8_e4m3")
KV_0_5_4 = (*KV_0_5_3, "bf16", "bfloat16")
KV_0_5_4_POST3 = (*KV_0_5_4, "fp4_e2m1")
KV_0_5_16 = (
    "auto",
    "fp8_e5m2",
    "fp8_e4m3",
    "mxfp8",
    "bf16",
    "bfloat16",
    "nvfp4",
    "fp4_mx_block16",
    "fp4_e2m1",
)
KV_0_5_21 = KV_0_5_16[:-1]
SPEC_0_5_3 = ("EAGLE", "EAGLE3", "NEXTN", "STANDALONE", "NGRAM")


def _span(first: str, last: str) -> list[str]:
    """Every catalogued release from ``first`` through ``last``."""
    return [r for r in EXPECTED_RELEASES if Version(first) <= Version(r) <= Version(last)]


def _flag(release: str, option: str) -> Flag:
    flag = catalogue_for(release).get(option)
    assert flag is not None, f"{option} missing in {release}"
    return flag


def _text() -> str:
    data_dir = resources.files("detargs.sglang").joinpath("_data")
    return data_dir.joinpath("sglang_flags.json").read_text("utf-8")


def _raw() -> dict[str, Any]:
    text = _text()
    data: dict[str, Any] = json.loads(text)
    return data


# --------------------------------------------------------------------------- per-version facts


@pytest.mark.parametrize(
    ("option", "present"),
    [
        pytest.param("--disable-piecewise-cuda-graph", _span("0.5.10", "0.5.19"), id="disable-pcg"),
        pytest.param(
            "--enable-piecewise-cuda-graph", _span("0.5.3.post2", "0.5.13.post1"), id="enable-pcg"
        ),
        pytest.param("--enforce-piecewise-cuda-graph", _span("0.5.10", "0.5.19"), id="enforce-pcg"),
        pytest.param("--cuda-graph-max-bs", _span("0.5.3", "0.5.19"), id="cuda-graph-max-bs"),
        pytest.param("--cuda-graph-max-bs-decode", _span("0.5.14", "0.5.23"), id="max-bs-decode"),
        pytest.param("--rl-on-policy-target", _span("0.5.4.post1", "0.5.23"), id="rl-target"),
        pytest.param(
            "--enable-deterministic-inference", list(EXPECTED_RELEASES), id="deterministic"
        ),
        pytest.param(
            "--cuda-graph-backend-prefill",
            _span("0.5.14", "0.5.23"),
            id="cuda-graph-backend-prefill",
        ),
        pytest.param("--enable-ep-moe", [], id="ep-moe-rejected-everywhere"),
    ],
)
def test_flag_exists_exactly_in(option: str, present: list[str]) -> None:
    assert [r for r in releases() if catalogue_for(r).get(option) is not None] == present


@pytest.mark.parametrize(
    ("option", "first", "last", "kind", "dest", "const", "replaced_by"),
    [
        pytest.param(
            "--disable-piecewise-cuda-graph",
            "0.5.10",
            "0.5.13.post1",
            "store_true",
            "disable_piecewise_cuda_graph",
            None,
            None,
            id="disable-pcg-bool",
        ),
        pytest.param(
            "--disable-piecewise-cuda-graph",
            "0.5.14",
            "0.5.19",
            "store_const",
            "cuda_graph_backend_prefill",
            "disabled",
            "--cuda-graph-backend-prefill",
            id="disable-pcg-const",
        ),
        pytest.param(
            "--enable-piecewise-cuda-graph",
            "0.5.3.post2",
            "0.5.9",
            "store_true",
            "enable_piecewise_cuda_graph",
            None,
            None,
            id="enable-pcg-bool",
        ),
        pytest.param(
            "--enable-piecewise-cuda-graph",
            "0.5.10",
            "0.5.13.post1",
            "noop",
            "enable_piecewise_cuda_graph",
            None,
            None,
            id="enable-pcg-noop",
        ),
        pytest.param(
            "--enforce-piecewise-cuda-graph",
            "0.5.14",
            "0.5.19",
            "store_const",
            "cuda_graph_backend_prefill",
            "tc_piecewise",
            "--cuda-graph-backend-prefill",
            id="enforce-pcg-const",
        ),
        pytest.param(
            "--cuda-graph-max-bs",
            "0.5.3",
            "0.5.13.post1",
            "value",
            "cuda_graph_max_bs",
            None,
            None,
            id="max-bs-value",
        ),
        pytest.param(
            "--cuda-graph-max-bs",
            "0.5.14",
            "0.5.19",
            "value",
            "cuda_graph_max_bs_decode",
            None,
            "--cuda-graph-max-bs-decode",
            id="max-bs-alias",
        ),
        pytest.param(
            "--disable-cuda-graph",
            "0.5.3",
            "0.5.13.post1",
            "store_true",
            "disable_cuda_graph",
            None,
            None,
            id="disable-cuda-graph",
        ),
        pytest.param(
            "--enable-deterministic-inference",
            "0.5.3",
            "0.5.23",
            "store_true",
            "enable_deterministic_inference",
            None,
            None,
            id="deterministic",
        ),
    ],
)
def test_flag_span_facts(
    option: str,
    first: str,
    last: str,
    kind: str,
    dest: str,
    const: object,
    replaced_by: str | None,
) -> None:
    matching = [f for f in flag_history(option) if (f.first, f.last) == (first, last)]
    assert len(matching) == 1, [f.span() for f in flag_history(option)]
    flag = matching[0]
    assert (flag.kind, flag.dest, flag.const, flag.replaced_by) == (kind, dest, const, replaced_by)
    assert flag.deprecated == (replaced_by is not None or kind == "noop")


@pytest.mark.parametrize("release", [pytest.param(r, id=r) for r in _span("0.5.14", "0.5.19")])
def test_disable_cuda_graph_deprecated_store_true(release: str) -> None:
    flag = _flag(release, "--disable-cuda-graph")
    assert (flag.kind, flag.dest) == ("store_true", "disable_cuda_graph")
    assert flag.replaced_by is not None


@pytest.mark.parametrize(
    ("release", "choices"),
    [
        pytest.param("0.5.3", ATTENTION_0_5_3, id="0.5.3"),
        pytest.param("0.5.3.post3", ATTENTION_0_5_3, id="0.5.3.post3"),
        pytest.param("0.5.4", (*ATTENTION_0_5_3, "intel_xpu"), id="0.5.4-intel_xpu"),
        pytest.param("0.5.11", (*ATTENTION_0_5_3, "intel_xpu"), id="0.5.11"),
        pytest.param("0.5.23", ATTENTION_0_5_23, id="0.5.23-exact"),
    ],
)
def test_attention_backend_choices(release: str, choices: tuple[str, ...]) -> None:
    for option in (
        "--attention-backend",
        "--prefill-attention-backend",
        "--decode-attention-backend",
    ):
        flag = _flag(release, option)
        assert flag.choices == choices, option
        assert (flag.kind, flag.type, flag.default) == ("value", "str", None)


@pytest.mark.parametrize(
    ("backend", "first", "last"),
    [
        pytest.param("fa4", "0.5.3", "0.5.23", id="fa4"),
        pytest.param("fa3", "0.5.3", "0.5.23", id="fa3"),
        pytest.param("intel_xpu", "0.5.4", "0.5.23", id="intel_xpu"),
        pytest.param("dsv4", "0.5.12", "0.5.23", id="dsv4"),
        pytest.param("tokenspeed_mla", "0.5.12", "0.5.23", id="tokenspeed_mla"),
        pytest.param("dsa", "0.5.13", "0.5.23", id="dsa"),
        pytest.param("hpc_ops", "0.5.17", "0.5.23", id="hpc_ops"),
        pytest.param("minicpm_flashattn", "0.5.19", "0.5.23", id="minicpm_flashattn"),
        pytest.param("qsa", "0.5.20", "0.5.23", id="qsa"),
        pytest.param("cutlass_mla", "0.5.3", "0.5.19", id="cutlass_mla-removed"),
        pytest.param("dual_chunk_flash_attn", "0.5.3", "0.5.19", id="dual_chunk-removed"),
        pytest.param("llada2_cfg_flashinfer", "0.5.22", "0.5.23", id="llada2"),
    ],
)
def test_attention_backend_choice_span(backend: str, first: str, last: str) -> None:
    having = [r for r in releases() if backend in (_flag(r, "--attention-backend").choices or ())]
    assert having == _span(first, last)


@pytest.mark.parametrize(
    ("first", "last", "choices"),
    [
        pytest.param("0.5.3", "0.5.3.post3", KV_0_5_3, id="0.5.3"),
        pytest.param("0.5.4", "0.5.4.post2", KV_0_5_4, id="0.5.4-bf16"),
        pytest.param("0.5.4.post3", "0.5.15.post1", KV_0_5_4_POST3, id="0.5.4.post3-fp4_e2m1"),
        pytest.param("0.5.16", "0.5.20", KV_0_5_16, id="0.5.16-nvfp4"),
        pytest.param("0.5.21", "0.5.23", KV_0_5_21, id="0.5.21-drops-fp4_e2m1"),
    ],
)
def test_kv_cache_dtype_choices(first: str, last: str, choices: tuple[str, ...]) -> None:
    for release in _span(first, last):
        flag = _flag(release, "--kv-cache-dtype")
        assert flag.choices == choices, release
        assert (flag.type, flag.default) == ("str", "auto")


@pytest.mark.parametrize(
    ("first", "last", "choices"),
    [
        pytest.param("0.5.3", "0.5.10.post1", SPEC_0_5_3, id="closed-list"),
        pytest.param("0.5.11", "0.5.11", ("DFLASH", *SPEC_0_5_3), id="0.5.11-dflash"),
        pytest.param("0.5.12", "0.5.23", None, id="free-string"),
    ],
)
def test_speculative_algorithm_choices(
    first: str, last: str, choices: tuple[str, ...] | None
) -> None:
    for release in _span(first, last):
        flag = _flag(release, "--speculative-algorithm")
        assert (flag.choices, flag.type, flag.default) == (choices, "str", None), release


@pytest.mark.parametrize(
    ("first", "last", "choices"),
    [
        pytest.param("0.5.3", "0.5.5.post2", ("flashinfer", "pytorch"), id="two"),
        pytest.param(
            "0.5.5.post3",
            "0.5.6.post2",
            ("flashinfer", "pytorch", "ascend"),
            id="0.5.5.post3-ascend",
        ),
        pytest.param("0.5.7", "0.5.20", ("ascend", "flashinfer", "pytorch"), id="0.5.7-set"),
        pytest.param(
            "0.5.21",
            "0.5.23",
            ("ascend", "flashinfer", "intel_xpu", "pytorch"),
            id="0.5.21-intel_xpu",
        ),
    ],
)
def test_sampling_backend_choices(first: str, last: str, choices: tuple[str, ...]) -> None:
    for release in _span(first, last):
        flag = _flag(release, "--sampling-backend")
        assert (flag.choices, flag.type, flag.default) == (choices, "str", None), release
        assert "token_oracle" not in (flag.choices or ())  # env-gated, off by default


@pytest.mark.parametrize("release", [pytest.param(r, id=r) for r in _span("0.5.4.post1", "0.5.23")])
def test_rl_on_policy_target(release: str) -> None:
    flag = _flag(release, "--rl-on-policy-target")
    assert (flag.kind, flag.type, flag.choices, flag.default) == ("value", "str", ("fsdp",), None)


@pytest.mark.parametrize(
    ("first", "last", "options", "dest"),
    [
        pytest.param(
            "0.5.3",
            "0.5.13.post1",
            ("--tensor-parallel-size", "--tp-size"),
            "tensor_parallel_size",
            id="argparse-era",
        ),
        pytest.param(
            "0.5.14",
            "0.5.23",
            ("--tp-size", "--tensor-parallel-size"),
            "tp_size",
            id="dataclass-era",
        ),
    ],
)
def test_tp_size_aliases(first: str, last: str, options: tuple[str, ...], dest: str) -> None:
    for release in _span(first, last):
        catalogue = catalogue_for(release)
        flag = _flag(release, "--tp-size")
        assert catalogue.get("--tensor-parallel-size") is flag
        assert (flag.options, flag.dest, flag.type, flag.default) == (options, dest, "int", 1)
        assert catalogue.primary(dest) is flag


@pytest.mark.parametrize("release", [pytest.param(r, id=r) for r in EXPECTED_RELEASES])
def test_every_release_basics(release: str) -> None:
    catalogue = catalogue_for(release)
    model = _flag(release, "--model-path")
    assert catalogue.get("--model") is model
    assert (model.options, model.dest, model.required) == (
        ("--model-path", "--model"),
        "model_path",
        True,
    )
    assert [f.name for f in catalogue.flags if f.required] == ["--model-path"]
    deterministic = _flag(release, "--enable-deterministic-inference")
    assert (deterministic.kind, deterministic.default) == ("store_true", False)
    for option, kind in (
        ("--disable-radix-cache", "store_true"),
        ("--trust-remote-code", "store_true"),
        ("--enable-torch-symm-mem", "store_true"),
        ("--disable-custom-all-reduce", "store_true"),
    ):
        assert _flag(release, option).kind == kind, option
    assert (_flag(release, "--port").type, _flag(release, "--port").default) == ("int", 30000)
    assert _flag(release, "--host").default == "127.0.0.1"
    assert _flag(release, "--mem-fraction-static").type == "float"


# --------------------------------------------------------------------------- structure


def test_releases_are_the_expected_ascending_37() -> None:
    assert releases() == EXPECTED_RELEASES
    assert len(releases()) == 37
    assert sorted(releases(), key=Version) == list(releases())


def test_entries_use_catalogued_releases_in_order() -> None:
    index = {r: i for i, r in enumerate(releases())}
    data = _raw()
    for entry in [*data["flags"], *data.get("rejected", [])]:
        assert entry["first"] in index, entry
        assert entry["last"] in index, entry
        assert index[entry["first"]] <= index[entry["last"]], entry


def test_no_option_overlaps_itself() -> None:
    index = {r: i for i, r in enumerate(releases())}
    data = _raw()
    seen: dict[str, list[tuple[int, int]]] = {}
    for entry in [*data["flags"], *data.get("rejected", [])]:
        span = (index[entry["first"]], index[entry["last"]])
        for option in entry["options"]:
            for other in seen.get(option, []):
                assert span[1] < other[0] or other[1] < span[0], (option, entry["first"])
            seen.setdefault(option, []).append(span)


def _facts(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key not in ("first", "last")}


def test_merged_spans_are_maximal() -> None:
    """Two entries for one canonical option that touch must differ in some fact."""
    index = {r: i for i, r in enumerate(releases())}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for entry in _raw()["flags"]:
        by_name.setdefault(entry["options"][0], []).append(entry)
    for name, entries in by_name.items():
        entries.sort(key=lambda e: index[e["first"]])
        for before, after in itertools.pairwise(entries):
            if index[before["last"]] + 1 == index[after["first"]]:
                assert _facts(before) != _facts(after), name


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(o, id=o)
        for o in (
            "--disable-piecewise-cuda-graph",
            "--enable-piecewise-cuda-graph",
            "--cuda-graph-max-bs",
            "--kv-cache-dtype",
            "--attention-backend",
            "--enable-deterministic-inference",
            "--sampling-backend",
            "--tp-size",
        )
    ],
)
def test_specifier_contains_exactly_the_span(option: str) -> None:
    index = {r: i for i, r in enumerate(releases())}
    for flag in flag_history(option):
        inside = [r for r in releases() if index[flag.first] <= index[r] <= index[flag.last]]
        assert [r for r in releases() if Version(r) in flag.specifier] == inside, flag.span()


def test_every_specifier_contains_exactly_its_span() -> None:
    index = {r: i for i, r in enumerate(releases())}
    versions = [Version(r) for r in releases()]
    for name in sorted({entry["options"][0] for entry in _raw()["flags"]}):
        for item in flag_history(name):
            low, high = index[item.first], index[item.last]
            got = [i for i, v in enumerate(versions) if v in item.specifier]
            assert got == list(range(low, high + 1)), (item.name, item.span())


def test_catalogue_indexes_every_option() -> None:
    for release in releases():
        catalogue = catalogue_for(release)
        options = [o for f in catalogue.flags for o in f.options]
        assert len(options) == len(set(options)), release
        assert set(catalogue.by_option) == set(options)
        assert all(o.startswith("-") for o in options)


def test_fact_vocabulary() -> None:
    kinds = {"store_true", "store_false", "store_const", "value", "nargs", "append", "noop"}
    for entry in _raw()["flags"]:
        assert entry["kind"] in kinds, entry
        kind_type = entry["type"]
        assert (
            kind_type is None
            or kind_type in {"str", "int", "float", "json", "bool"}
            or (kind_type.startswith("fn:"))
        ), entry
        choices = entry["choices"]
        assert choices is None or all(isinstance(c, str) for c in choices), entry
        assert entry["nargs"] in (None, "+", "*", "?") or isinstance(entry["nargs"], int), entry
        if entry["kind"] in ("store_true", "store_false", "store_const", "noop"):
            assert entry["nargs"] is None, entry
        assert isinstance(entry["required"], bool)


def test_data_file_is_small_and_one_entry_per_line() -> None:
    text = _text()
    assert len(text.encode()) < MAX_DATA_BYTES
    data = _raw()
    lines = text.splitlines()
    assert len(lines) == len(data["flags"]) + len(data.get("rejected", [])) + 6
    index = {r: i for i, r in enumerate(releases())}
    keys = [(e["options"][0], index[e["first"]]) for e in data["flags"]]
    assert keys == sorted(keys)
