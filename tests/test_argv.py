from __future__ import annotations

import pytest
from packaging.version import Version

from detargs import DetargsWarning, InvalidArgsError, ServerArgs, from_argv, to_argv
from detargs.sglang.catalogue import catalogue_for, releases

ALL_RELEASES = releases()


def _max_bs_flag(release: str) -> str:
    # SGLang's own standalone fixture switched spelling in 0.5.15; 0.5.20 removed the old one
    return (
        "--cuda-graph-max-bs"
        if Version(release) < Version("0.5.15")
        else ("--cuda-graph-max-bs-decode")
    )


def standalone_fixture_argv(release: str) -> list[str]:
    return [
        "--trust-remote-code",
        _max_bs_flag(release),
        "8",
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
        "--mem-fraction-static",
        "0.7",
        "--attention-backend",
        "triton",
        "--enable-deterministic-inference",
    ]


MLA_FIXTURE_ARGV = [
    "--trust-remote-code",
    "--kv-cache-dtype",
    "fp8_e5m2",
    "--enable-deterministic-inference",
]


def accepted_by_catalogue(argv: list[str], release: str) -> bool:
    """Every token is a known option of ``release`` or a value its option takes."""
    catalogue = catalogue_for(release)
    position = 0
    while position < len(argv):
        name, has_value, _ = argv[position].partition("=")
        flag = catalogue.get(name)
        if flag is None:
            return False
        position += 1
        if flag.takes_value and not has_value:
            position += 1
    return True


@pytest.mark.parametrize("release", ALL_RELEASES)
def test_standalone_fixture_round_trips_in_every_release(release: str) -> None:
    args = from_argv(standalone_fixture_argv(release), sglang_version=release)
    assert args.cuda_graph_max_bs == 8
    assert args.speculative_eagle_topk == 2
    argv = to_argv(args, sglang_version=release)
    assert accepted_by_catalogue(argv, release)
    emitted = (
        "--cuda-graph-max-bs-decode"
        if Version(release) >= Version("0.5.14")
        else ("--cuda-graph-max-bs")
    )
    assert argv[argv.index(emitted) + 1] == "8"
    assert from_argv(argv, sglang_version=release) == args
    assert to_argv(from_argv(argv, sglang_version=release), sglang_version=release) == argv


@pytest.mark.parametrize("release", ALL_RELEASES)
def test_mla_fixture_round_trips_in_every_release(release: str) -> None:
    args = from_argv(MLA_FIXTURE_ARGV, sglang_version=release)
    argv = to_argv(args, sglang_version=release)
    assert argv == [
        "--enable-deterministic-inference",
        "--kv-cache-dtype",
        "fp8_e5m2",
        "--trust-remote-code",
    ]
    assert accepted_by_catalogue(argv, release)


@pytest.mark.parametrize(
    ("release", "argv", "expected"),
    [
        pytest.param("0.5.23", ["--tp", "2"], {"tp_size": 2}, id="unique-prefix"),
        pytest.param("0.5.23", ["--tensor-parallel-size", "4"], {"tp_size": 4}, id="alias"),
        pytest.param("0.5.10", ["--tp-size=4"], {"tp_size": 4}, id="equals-form"),
        pytest.param("0.5.23", ["--model", "m"], {"model_path": "m"}, id="model-alias"),
        pytest.param(
            "0.5.14",
            ["--cuda-graph-max-bs", "16"],
            {"cuda_graph_max_bs": 16},
            id="deprecated-alias-same-field",
        ),
        pytest.param(
            "0.5.10",
            ["--disable-piecewise-cuda-graph"],
            {"piecewise_cuda_graph": False},
            id="pcg-off-0.5.10",
        ),
        pytest.param(
            "0.5.12",
            ["--enforce-piecewise-cuda-graph", "--disable-piecewise-cuda-graph"],
            {"piecewise_cuda_graph": True},
            id="pcg-enforce-wins",
        ),
        pytest.param(
            "0.5.14",
            ["--disable-piecewise-cuda-graph"],
            {"piecewise_cuda_graph": False},
            id="pcg-deprecated-const",
        ),
        pytest.param(
            "0.5.17",
            ["--cuda-graph-backend-prefill", "tc_piecewise"],
            {"piecewise_cuda_graph": True},
            id="pcg-prefill-backend",
        ),
        pytest.param(
            "0.5.5",
            ["--enable-piecewise-cuda-graph"],
            {"piecewise_cuda_graph": True},
            id="pcg-opt-in",
        ),
        pytest.param("0.5.23", ["--host", "-weird"], None, id="dash-value-needs-equals"),
        pytest.param("0.5.23", ["--host=-weird"], {"host": "-weird"}, id="dash-value-equals"),
        pytest.param(
            "0.5.23",
            ["--chunked-prefill-size", "-1"],
            {"chunked_prefill_size": -1},
            id="negative-number-value",
        ),
    ],
)
def test_from_argv_reads_like_the_parser(
    release: str, argv: list[str], expected: dict[str, object] | None
) -> None:
    if expected is None:
        with pytest.raises(InvalidArgsError, match="needs a value"):
            from_argv(argv, sglang_version=release)
        return
    args = from_argv(argv, sglang_version=release)
    assert {name: getattr(args, name) for name in expected} == expected
    assert set(expected) <= args.model_fields_set


@pytest.mark.parametrize(
    ("release", "args", "argv"),
    [
        pytest.param(
            "0.5.13", ServerArgs(cuda_graph_max_bs=8), ["--cuda-graph-max-bs", "8"], id="max-bs-old"
        ),
        pytest.param(
            "0.5.14",
            ServerArgs(cuda_graph_max_bs=8),
            ["--cuda-graph-max-bs-decode", "8"],
            id="max-bs-new",
        ),
        pytest.param(
            "0.5.12",
            ServerArgs(piecewise_cuda_graph=False),
            ["--disable-piecewise-cuda-graph"],
            id="pcg-off-disable-flag",
        ),
        pytest.param(
            "0.5.14",
            ServerArgs(piecewise_cuda_graph=False),
            ["--cuda-graph-backend-prefill", "disabled"],
            id="pcg-off-prefill",
        ),
        pytest.param("0.5.9", ServerArgs(piecewise_cuda_graph=False), [], id="pcg-off-default"),
        pytest.param(
            "0.5.9",
            ServerArgs(piecewise_cuda_graph=True),
            ["--enable-piecewise-cuda-graph"],
            id="pcg-on-opt-in",
        ),
        pytest.param("0.5.23", ServerArgs(host="-h"), ["--host=-h"], id="dash-value"),
        pytest.param(
            "0.5.23",
            ServerArgs(extra={"log_level": "debug"}),
            ["--log-level", "debug"],
            id="passthrough",
        ),
        pytest.param("0.5.23", ServerArgs(tp_size=1), ["--tp-size", "1"], id="set-default-kept"),
        pytest.param("0.5.23", ServerArgs(), [], id="nothing-set"),
    ],
)
def test_to_argv_spells_for_the_release(release: str, args: ServerArgs, argv: list[str]) -> None:
    assert to_argv(args, sglang_version=release) == argv


def test_to_argv_order_ignores_input_order() -> None:
    forward = ["--tp-size", "2", "--trust-remote-code", "--log-level", "info", "--port", "1"]
    backward = ["--port", "1", "--log-level", "info", "--trust-remote-code", "--tp-size", "2"]
    assert to_argv(from_argv(forward, "0.5.23"), "0.5.23") == to_argv(
        from_argv(backward, "0.5.23"), "0.5.23"
    )


@pytest.mark.parametrize(
    ("release", "argv", "fragments"),
    [
        pytest.param(
            "0.5.23",
            ["--atention-backend", "fa3"],
            ["unknown flag --atention-backend", "did you mean --attention-backend"],
            id="typo",
        ),
        pytest.param(
            "0.5.23",
            ["--cuda-graph-max-bs", "8"],
            ["not a flag of SGLang 0.5.23", "0.5.3–0.5.19", "--cuda-graph-max-bs-decode"],
            id="removed-flag",
        ),
        pytest.param(
            "0.5.10",
            ["--cuda-graph-max-bs-decode", "8"],
            ["not a flag of SGLang 0.5.10", "0.5.14", "--cuda-graph-max-bs"],
            id="not-yet-a-flag",
        ),
        pytest.param(
            "0.5.20",
            ["--disable-piecewise-cuda-graph"],
            ["0.5.10–0.5.19", "--cuda-graph-backend-prefill disabled"],
            id="removed-pcg",
        ),
        pytest.param(
            "0.5.23",
            ["--tp-size", "two"],
            ["--tp-size needs an int value", "'two'"],
            id="wrong-type",
        ),
        pytest.param(
            "0.5.23",
            ["--attention-backend", "fa5"],
            ["--attention-backend 'fa5'", "choose one of"],
            id="not-a-choice",
        ),
        pytest.param(
            "0.5.10",
            ["--kv-cache-dtype", "nvfp4"],
            ["not accepted by SGLang 0.5.10", "accepts it in 0.5.16"],
            id="choice-of-later-release",
        ),
        pytest.param(
            "0.5.23",
            ["--attention-backend"],
            ["--attention-backend needs a value"],
            id="missing-value",
        ),
        pytest.param(
            "0.5.23", ["--trust-remote-code=yes"], ["takes no value"], id="switch-with-value"
        ),
        pytest.param("0.5.23", ["model"], ["unexpected argument 'model'"], id="positional"),
        pytest.param("0.5.23", ["--tp-size", "0"], ["--tp-size"], id="tp-zero"),
        pytest.param(
            "0.5.23",
            ["--rl-on-policy-target", "ppo"],
            ["choose one of: fsdp"],
            id="rl-target-choice",
        ),
        pytest.param(
            "0.5.4", ["--enable-ep-moe"], ["retired in SGLang 0.5.4", "drop it"], id="retired-flag"
        ),
    ],
)
def test_bad_argv_names_the_flag(release: str, argv: list[str], fragments: list[str]) -> None:
    with pytest.raises(InvalidArgsError) as caught:
        from_argv(argv, sglang_version=release)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("release", "args", "fragment"),
    [
        pytest.param(
            "0.5.4", ServerArgs(rl_on_policy_target="fsdp"), "0.5.4.post1", id="field-not-yet"
        ),
        pytest.param("0.5.10", ServerArgs(kv_cache_dtype="nvfp4"), "0.5.16", id="choice-not-yet"),
        pytest.param(
            "0.5.23", ServerArgs(piecewise_cuda_graph=True), "cannot be requested", id="pcg-gone"
        ),
        pytest.param(
            "0.5.23",
            ServerArgs(extra={"log_levle": "x"}),
            "did you mean log_level",
            id="extra-typo",
        ),
    ],
)
def test_to_argv_refuses_what_the_release_lacks(
    release: str, args: ServerArgs, fragment: str
) -> None:
    with pytest.raises(InvalidArgsError, match=fragment):
        to_argv(args, sglang_version=release)


def test_extra_cannot_shadow_a_field() -> None:
    with pytest.raises(InvalidArgsError, match="piecewise_cuda_graph"):
        ServerArgs(extra={"enforce_piecewise_cuda_graph": True})


def test_repeated_flag_last_wins_with_a_warning() -> None:
    with pytest.warns(DetargsWarning, match="overridden by the later --tp-size 4"):
        args = from_argv(["--tp-size", "2", "--tp-size", "4"], "0.5.23")
    assert args.tp_size == 4


def test_deprecated_noop_flag_is_dropped_with_a_warning() -> None:
    with pytest.warns(DetargsWarning, match="has no effect in SGLang 0.5.11"):
        args = from_argv(["--enable-piecewise-cuda-graph"], "0.5.11")
    assert args.piecewise_cuda_graph is None


def test_argv_words_must_be_strings() -> None:
    with pytest.raises(InvalidArgsError, match=r"argv\[1\] is 2 \(int\)"):
        from_argv(["--tp-size", 2], "0.5.23")  # type: ignore[list-item]


def test_a_string_is_not_an_argv() -> None:
    with pytest.raises(InvalidArgsError, match="list of strings"):
        from_argv("--tp-size 2", "0.5.23")


def test_the_codec_knows_every_value_type_in_the_catalogue() -> None:
    from detargs.sglang._flag_types import KNOWN_TYPES

    types = {flag.type for release in releases() for flag in catalogue_for(release).flags}
    assert types - {None} <= KNOWN_TYPES


@pytest.mark.parametrize(
    ("argv", "accepted"),
    [
        pytest.param(["--context-length", "32k"], True, id="size-si"),
        pytest.param(["--context-length", "4Ki"], True, id="size-iec"),
        pytest.param(["--context-length", "131072"], True, id="size-plain"),
        pytest.param(["--context-length", "banana"], False, id="size-garbage"),
        pytest.param(["--context-length", "1.5Ki"], False, id="size-iec-decimal"),
        pytest.param(["--forward-hooks", "[]"], True, id="json-list"),
        pytest.param(["--forward-hooks", "notjson"], False, id="json-garbage"),
        pytest.param(
            ["--cuda-graph-config", '{"prefill": {"backend": "full"}}'], True, id="graph-config"
        ),
        pytest.param(["--cuda-graph-config", "[1]"], False, id="graph-config-not-object"),
    ],
)
def test_values_of_sglang_converter_types_are_checked(argv: list[str], accepted: bool) -> None:
    if accepted:
        args = from_argv(argv, "0.5.23")
        assert to_argv(args, "0.5.23") == argv
    else:
        with pytest.raises(InvalidArgsError, match=argv[0]):
            from_argv(argv, "0.5.23")
