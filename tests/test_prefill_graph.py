"""Prefill CUDA graphs are off in every deterministic launch, per release and GPU.

The spellings and spans below are written out from the released wheels (see the SGLang
reference, §1e and §3), not computed from detargs' own tables, so that a change of the
rules or the codec has to agree with them.
"""

from __future__ import annotations

import json

import pytest
from packaging.version import Version

from detargs import ConflictError, from_argv, resolve
from detargs.sglang.catalogue import catalogue_for, releases

from .test_argv import accepted_by_catalogue

PROFILES = ("h100", "b200", "rtx-pro-6000", "a100")
FROM_0_5_10 = tuple(r for r in releases() if Version(r) >= Version("0.5.10"))
BEFORE_0_5_10 = tuple(r for r in releases() if Version(r) < Version("0.5.10"))


def off_spelling(release: str) -> list[str]:
    if Version(release) < Version("0.5.14"):
        return ["--disable-piecewise-cuda-graph"]
    return ["--cuda-graph-backend-prefill", "disabled"]


def in_span(release: str, first: str, last: str) -> bool:
    return Version(first) <= Version(release) <= Version(last)


def config(backend: str) -> str:
    return json.dumps({"prefill": {"backend": backend}, "decode": {"backend": "full"}})


# (what the user writes, first release, last release), as each release's parser takes it
REQUESTS = (
    (("--enforce-piecewise-cuda-graph",), "0.5.10", "0.5.19"),
    (("--enable-breakable-cuda-graph",), "0.5.11", "0.5.19"),
    (("--cuda-graph-backend-prefill", "tc_piecewise"), "0.5.14", "0.5.21"),
    (("--cuda-graph-backend-prefill", "breakable"), "0.5.14", "0.5.23"),
    (("--cuda-graph-backend-prefill", "full"), "0.5.14", "0.5.23"),
    (("--cuda-graph-config", config("breakable")), "0.5.14", "0.5.23"),
    (("--cuda-graph-config", config("full")), "0.5.14", "0.5.21"),
)


def deterministic(release: str, device: str, *words: str, override: bool = False) -> list[str]:
    args = from_argv(["--model-path", "m", "--enable-deterministic-inference", *words], release)
    launch = resolve(
        args,
        device=device,
        sglang_version=release,
        environ={},
        on_conflict="override" if override else "error",
    )
    return list(launch.argv)


@pytest.mark.parametrize("device", PROFILES)
@pytest.mark.parametrize("release", FROM_0_5_10)
def test_prefill_graphs_are_off_in_the_release_spelling(release: str, device: str) -> None:
    argv = deterministic(release, device)
    spelling = off_spelling(release)
    assert argv[argv.index(spelling[0]) : argv.index(spelling[0]) + len(spelling)] == spelling
    assert accepted_by_catalogue(argv, release)
    # decode CUDA graphs stay on: nothing turns them or all graphs off
    assert not {
        "--disable-cuda-graph",
        "--disable-decode-cuda-graph",
        "--cuda-graph-backend-decode",
    } & set(argv)


@pytest.mark.parametrize("release", BEFORE_0_5_10)
def test_releases_that_prefill_eagerly_get_no_graph_flag(release: str) -> None:
    argv = deterministic(release, "h100")
    assert not [word for word in argv if "piecewise" in word or "prefill" in word]


@pytest.mark.parametrize(
    ("release", "device", "request_words"),
    [
        pytest.param(release, device, words, id=f"{release}-{device}-{' '.join(words)[:48]}")
        for release in FROM_0_5_10
        for device in PROFILES
        for words, first, last in REQUESTS
        if in_span(release, first, last)
    ],
)
def test_a_prefill_graph_request_is_a_conflict_settled_by_override(
    release: str, device: str, request_words: tuple[str, ...]
) -> None:
    with pytest.raises(ConflictError) as caught:
        deterministic(release, device, *request_words)
    assert {c.rule for c in caught.value.conflicts} == {"piecewise_cuda_graph"}
    assert all(c.fixable for c in caught.value.conflicts)
    argv = deterministic(release, device, *request_words, override=True)
    assert accepted_by_catalogue(argv, release)
    if request_words[0] == "--cuda-graph-config":
        written = json.loads(argv[argv.index("--cuda-graph-config") + 1])
        assert written["prefill"] == {"backend": "disabled"}
        assert written["decode"] == {"backend": "full"}
        assert "--cuda-graph-backend-prefill" not in argv
    else:
        spelling = off_spelling(release)
        at = argv.index(spelling[0])
        assert argv[at : at + len(spelling)] == spelling
        assert argv.count(spelling[0]) == 1
        assert not {
            "--enforce-piecewise-cuda-graph",
            "--enable-breakable-cuda-graph",
            "breakable",
            "full",
            "tc_piecewise",
        } & set(argv)


@pytest.mark.parametrize(
    ("release", "words"),
    [
        pytest.param("0.5.14", ("--disable-cuda-graph",), id="0.5.14-disable-cuda-graph"),
        pytest.param("0.5.23", ("--disable-cuda-graph",), id="0.5.23-disable-cuda-graph"),
        pytest.param("0.5.18", ("--disable-prefill-cuda-graph",), id="0.5.18-disable-prefill"),
        pytest.param(
            "0.5.23", ("--cuda-graph-config", config("disabled")), id="0.5.23-config-disabled"
        ),
        pytest.param(
            "0.5.18", ("--disable-piecewise-cuda-graph",), id="0.5.18-deprecated-disable-piecewise"
        ),
    ],
)
def test_a_setting_that_already_turns_prefill_graphs_off_settles_it(
    release: str, words: tuple[str, ...]
) -> None:
    argv = deterministic(release, "h100", *words)
    assert argv.count("--cuda-graph-backend-prefill") <= 1
    assert "breakable" not in argv


def test_disable_cuda_graph_is_kept_as_given_and_nothing_else_is_added() -> None:
    # 0.5.23 deprecates --disable-cuda-graph; it is the user's own, so it stands as written
    argv = deterministic("0.5.23", "h100", "--disable-cuda-graph")
    assert "--disable-cuda-graph" in argv
    assert "--cuda-graph-backend-prefill" not in argv


def test_the_reason_names_the_breakable_graph_and_the_measurement() -> None:
    args = from_argv(["--enable-deterministic-inference"], "0.5.23")
    launch = resolve(args, device="h100", sglang_version="0.5.23", environ={})
    decision = next(d for d in launch.decisions if d.rule == "piecewise_cuda_graph")
    assert decision.kind == "arg"
    assert decision.value is False
    assert "breakable CUDA graph" in decision.reason
    assert "0.5.15" in decision.reason
    assert "H200" in decision.reason
    assert "breakable CUDA graph" in launch.explain()


# --- no deprecated spelling is ever written by a rule ------------------------------------

LAUNCHES = (
    pytest.param((), "h100", id="plain-h100"),
    pytest.param((), "b200", id="plain-b200"),
    pytest.param(("--tp-size", "2"), "h100x2", id="tp2"),
    pytest.param(("--kv-cache-dtype", "fp8_e5m2"), "h100", id="fp8-e5m2"),
    pytest.param(("--cuda-graph-max-bs", "8"), "b200", id="max-bs"),
    pytest.param(("--attention-backend", "flashinfer"), "b200", id="flashinfer-radix"),
)


@pytest.mark.parametrize(("words", "device"), LAUNCHES)
@pytest.mark.parametrize("release", releases())
def test_detargs_writes_no_flag_its_release_deprecates(
    release: str, words: tuple[str, ...], device: str
) -> None:
    if words and words[0] == "--cuda-graph-max-bs" and Version(release) >= Version("0.5.20"):
        words = ("--cuda-graph-max-bs-decode", "8")
    args = from_argv(["--enable-deterministic-inference", *words], release)
    launch = resolve(args, device=device, sglang_version=release, environ={})
    catalogue = catalogue_for(release)
    written = [catalogue.get(word.partition("=")[0]) for word in launch.argv]
    deprecated = [flag.name for flag in written if flag is not None and flag.deprecated]
    assert deprecated == []


def test_explain_says_an_overridden_prefill_backend_is_dropped() -> None:
    args = from_argv(
        ["--enable-deterministic-inference", "--cuda-graph-backend-prefill", "breakable"], "0.5.17"
    )
    text = resolve(
        args, device="h100", sglang_version="0.5.17", environ={}, on_conflict="override"
    ).explain()
    assert "extra.cuda_graph_backend_prefill: dropped  [piecewise_cuda_graph, replaced your" in text
