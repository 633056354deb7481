"""The resolution engine: conflicts, overrides, environment, idempotence, the result's shape."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from detargs import ConflictError, InvalidArgsError, ServerArgs, from_argv, resolve
from detargs.testing import fake_device

DETERMINISTIC = ServerArgs(enable_deterministic_inference=True)


def test_without_deterministic_mode_nothing_changes() -> None:
    args = from_argv(["--attention-backend", "flashinfer", "--tp-size", "4"], "0.5.23")
    launch = resolve(args, sglang_version="0.5.23")  # no device: none is detected
    assert launch.decisions == ()
    assert launch.env == {}
    assert launch.args == args
    assert list(launch.argv) == ["--attention-backend", "flashinfer", "--tp-size", "4"]
    assert launch.device is None


def test_all_conflicts_are_raised_together() -> None:
    args = from_argv(
        [
            "--attention-backend",
            "fa3",
            "--sampling-backend",
            "flashinfer",
            "--enable-deterministic-inference",
        ],
        "0.5.23",
    )
    with pytest.raises(ConflictError) as caught:
        resolve(args, device="b200", sglang_version="0.5.23", environ={})
    flags = [conflict.flag for conflict in caught.value.conflicts]
    assert flags == ["--attention-backend", "--sampling-backend"]
    first = caught.value.conflicts[0]
    assert (first.user_value, first.required, first.rule) == ("fa3", "triton", "attention_backend")
    assert "2 conflicts" in str(caught.value)
    assert "--on-conflict override" in str(caught.value)


def test_override_replaces_and_says_so() -> None:
    args = from_argv(["--attention-backend", "fa3", "--enable-deterministic-inference"], "0.5.23")
    launch = resolve(
        args, device="b200", sglang_version="0.5.23", on_conflict="override", environ={}
    )
    decision = next(d for d in launch.decisions if d.field == "attention_backend")
    assert (decision.value, decision.previous, decision.overrode_user) == ("triton", "fa3", True)
    assert "[attention_backend, replaced your value]" in launch.explain()


def test_refusal_survives_override() -> None:
    args = from_argv(
        ["--speculative-algorithm", "UNO", "--enable-deterministic-inference"], "0.5.23"
    )
    with pytest.raises(ConflictError, match="UNO"):
        resolve(args, device="h100", sglang_version="0.5.23", on_conflict="override", environ={})


def test_user_value_equal_to_the_rule_stands_silently() -> None:
    argv = ["--sampling-backend", "pytorch", "--enable-deterministic-inference"]
    args = from_argv(argv, "0.5.23")
    launch = resolve(args, device="h100", sglang_version="0.5.23", environ={})
    assert not [d for d in launch.decisions if d.field == "sampling_backend" and d.kind == "arg"]


@pytest.mark.parametrize(
    ("environ", "outcome"),
    [
        pytest.param({}, "decided", id="unset"),
        pytest.param({"NCCL_ALGO": "allreduce:tree"}, "decided", id="same-value"),
        pytest.param({"NCCL_ALGO": "ring"}, "conflict", id="other-value"),
    ],
)
def test_environment_conflicts(environ: dict[str, str], outcome: str) -> None:
    args = ServerArgs(enable_deterministic_inference=True, tp_size=2)
    if outcome == "conflict":
        with pytest.raises(ConflictError, match=r"\$NCCL_ALGO ring"):
            resolve(args, device="h100x2", sglang_version="0.5.23", environ=environ)
        launch = resolve(
            args, device="h100x2", sglang_version="0.5.23", environ=environ, on_conflict="override"
        )
        assert launch.env["NCCL_ALGO"] == "allreduce:tree"
    else:
        launch = resolve(args, device="h100x2", sglang_version="0.5.23", environ=environ)
        assert launch.env["NCCL_ALGO"] == "allreduce:tree"


def test_resolution_never_writes_os_environ() -> None:
    before = dict(os.environ)
    resolve(
        ServerArgs(enable_deterministic_inference=True, tp_size=8),
        device="h100x8",
        sglang_version="0.5.23",
        environ={},
    )
    assert dict(os.environ) == before


@pytest.mark.parametrize("release", ["0.5.3", "0.5.10", "0.5.14", "0.5.18", "0.5.23"])
@pytest.mark.parametrize("device", ["h100x2", "b200x2", "a100"])
def test_resolution_is_idempotent(release: str, device: str) -> None:
    args = ServerArgs(enable_deterministic_inference=True, tp_size=2 if "x2" in device else 1)
    first = resolve(args, device=device, sglang_version=release, environ={})
    second = resolve(first.args, device=device, sglang_version=release, environ={})
    assert [d for d in second.decisions if d.kind == "arg"] == []
    assert (second.argv, second.env, second.fingerprint) == (
        first.argv,
        first.env,
        first.fingerprint,
    )


def test_fingerprint_is_per_capability_not_per_card() -> None:
    h100 = resolve(DETERMINISTIC, device="h100", sglang_version="0.5.23", environ={})
    h200 = resolve(DETERMINISTIC, device="h200", sglang_version="0.5.23", environ={})
    b200 = resolve(DETERMINISTIC, device="b200", sglang_version="0.5.23", environ={})
    older = resolve(DETERMINISTIC, device="h100", sglang_version="0.5.22", environ={})
    assert h100.fingerprint == h200.fingerprint
    assert len({h100.fingerprint, b200.fingerprint, older.fingerprint}) == 3


def test_json_form_has_the_documented_keys() -> None:
    launch = resolve(DETERMINISTIC, device=fake_device("h100"), sglang_version="0.5.23", environ={})
    data = json.loads(launch.to_json())
    assert {"argv", "env", "decisions", "device", "sglang_version", "fingerprint"} <= set(data)
    assert data["argv"] == list(launch.argv)
    assert data["decisions"][0]["rule"] == "attention_backend"


def test_command_and_popen_args() -> None:
    args = ServerArgs(enable_deterministic_inference=True, tp_size=2)
    launch = resolve(
        args, device="h100x2", sglang_version="0.5.23", environ={}, launcher=["sglang", "serve"]
    )
    command, env = launch.popen_args({"PATH": "/bin", "NCCL_ALGO": "ring"})
    assert command[:2] == ["sglang", "serve"]
    assert command[2:] == list(launch.argv)
    assert env == {
        "PATH": "/bin",
        "NCCL_ALGO": "allreduce:tree",
        "NCCL_MAX_NCHANNELS": "8",
        "NCCL_MIN_NCHANNELS": "8",
    }


def test_explain_names_every_decision() -> None:
    launch = resolve(DETERMINISTIC, device="b200", sglang_version="0.5.10", environ={})
    text = launch.explain()
    flat = " ".join(text.split())
    for decision in launch.decisions:
        assert decision.reason in flat
    assert text.startswith("SGLang 0.5.10 on NVIDIA B200 (sm100, blackwell)")


@pytest.mark.parametrize(
    ("keywords", "fragment"),
    [
        pytest.param(
            {"launcher": "python -m sglang.launch_server"},
            "list of words",
            id="launcher-as-one-string",
        ),
        pytest.param({"launcher": ["python", 3]}, "list of words", id="launcher-word-not-str"),
        pytest.param({"gpu_index": "0"}, "CUDA ordinal", id="gpu-index-as-string"),
        pytest.param({"gpu_index": True}, "CUDA ordinal", id="gpu-index-as-bool"),
    ],
)
def test_wrongly_typed_options_are_invalid_arguments(
    keywords: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidArgsError, match=fragment):
        resolve(DETERMINISTIC, device="h100", sglang_version="0.5.23", **keywords)  # type: ignore[arg-type]


def test_bad_on_conflict_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgsError, match="on_conflict"):
        resolve(DETERMINISTIC, device="h100", on_conflict="ignore")  # type: ignore[arg-type]


def test_switches_turned_off_survive_a_resolution_that_decides_something() -> None:
    args = from_argv(["--no-enable-tf32-matmul", "--enable-deterministic-inference"], "0.5.23")
    launch = resolve(args, device="h100", sglang_version="0.5.23", environ={})
    assert "--no-enable-tf32-matmul" in launch.argv


def test_a_field_set_to_none_is_left_to_the_rules() -> None:
    args = ServerArgs(
        enable_deterministic_inference=True, attention_backend=None, sampling_backend=None
    )
    launch = resolve(args, device="b200", sglang_version="0.5.10", environ={})
    assert (launch.args.attention_backend, launch.args.sampling_backend) == ("triton", "pytorch")


def test_sglang_channel_variable_sets_the_pinned_channel_count() -> None:
    args = ServerArgs(enable_deterministic_inference=True, tp_size=2)
    environ = {"SGLANG_DETERMINISTIC_NCCL_NCHANNELS": "16"}
    launch = resolve(args, device="h100x2", sglang_version="0.5.18", environ=environ)
    assert (launch.env["NCCL_MIN_NCHANNELS"], launch.env["NCCL_MAX_NCHANNELS"]) == ("16", "16")


def test_explain_names_the_gpu_the_rules_keyed_on() -> None:
    from detargs.device import DeviceInfo
    from detargs.profiles import profile

    mixed = DeviceInfo(
        gpus=(profile("b200").gpus[0], dataclasses.replace(profile("h100").gpus[0], index=1)),
        source="fake",
    )
    launch = resolve(DETERMINISTIC, device=mixed, sglang_version="0.5.23", environ={}, gpu_index=1)
    assert launch.explain().startswith("SGLang 0.5.23 on NVIDIA H100 80GB HBM3 (sm90, hopper) x2")
    assert launch.args.attention_backend == "fa3"


def test_conflicts_and_refusals_together_say_which_override_settles() -> None:
    argv = [
        "--speculative-algorithm",
        "UNO",
        "--sampling-backend",
        "flashinfer",
        "--enable-deterministic-inference",
    ]
    with pytest.raises(ConflictError) as caught:
        resolve(from_argv(argv, "0.5.20"), device="h100", sglang_version="0.5.20", environ={})
    message = str(caught.value)
    assert "(no value works)" in message
    assert "replaces the ones with a required value, but not those no value fixes" in message


def test_an_overridden_piecewise_request_round_trips_where_it_is_off_by_default() -> None:
    args = from_argv(["--enable-deterministic-inference", "--enable-piecewise-cuda-graph"], "0.5.9")
    launch = resolve(
        args, device="h100", sglang_version="0.5.9", on_conflict="override", environ={}
    )
    assert "--enable-piecewise-cuda-graph" not in launch.argv
    assert from_argv(list(launch.argv), "0.5.9") == launch.args


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        pytest.param(
            {"cuda_graph_backend_prefill": "tc_piecewise"},
            "set piecewise_cuda_graph",
            id="prefill-backend-is-the-field",
        ),
        pytest.param(
            {"cuda_graph_backend_prefill": "disabled"},
            "set piecewise_cuda_graph",
            id="prefill-disabled-is-the-field",
        ),
    ],
)
def test_piecewise_cannot_hide_in_extra(extra: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidArgsError, match=fragment):
        ServerArgs(enable_deterministic_inference=True, extra=extra)


def test_piecewise_field_and_prefill_backend_together_are_refused() -> None:
    with pytest.raises(InvalidArgsError, match="keep one"):
        ServerArgs(piecewise_cuda_graph=False, extra={"cuda_graph_backend_prefill": "full"})


@pytest.mark.parametrize("backend", ["tc_piecewise", "breakable", "full"])
def test_a_graph_config_asking_for_a_prefill_graph_is_a_conflict(backend: str) -> None:
    config = json.dumps({"prefill": {"backend": backend}, "decode": {"backend": "full"}})
    args = from_argv(["--cuda-graph-config", config, "--enable-deterministic-inference"], "0.5.17")
    with pytest.raises(ConflictError, match=f"--cuda-graph-config .*{backend}"):
        resolve(args, device="h100", sglang_version="0.5.17", environ={})
    launch = resolve(
        args, device="h100", sglang_version="0.5.17", environ={}, on_conflict="override"
    )
    written = json.loads(launch.argv[launch.argv.index("--cuda-graph-config") + 1])
    assert written == {"prefill": {"backend": "disabled"}, "decode": {"backend": "full"}}
    # the config now says it: no second statement of the prefill backend
    assert "--cuda-graph-backend-prefill" not in launch.argv


def test_disable_cuda_graph_still_spells_piecewise_off_before_0_5_14() -> None:
    args = from_argv(["--disable-cuda-graph", "--enable-deterministic-inference"], "0.5.12")
    launch = resolve(args, device="h100", sglang_version="0.5.12", environ={})
    assert "--disable-piecewise-cuda-graph" in launch.argv
