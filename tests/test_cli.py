"""The ``detargs`` command, run in-process through ``detargs.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detargs import DeviceInfo, from_argv
from detargs.cli import main
from detargs.resolution import resolve

H100_0523 = ("--device", "h100", "--sglang-version", "0.5.23")
DETERMINISTIC = ("--", "--enable-deterministic-inference")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI reads DETARGS_DEVICE, and NCCL_* for conflicts, from the real environment
    for name in (
        "DETARGS_DEVICE",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_ALGO",
        "NCCL_MIN_NCHANNELS",
        "NCCL_MAX_NCHANNELS",
    ):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    out, err = capsys.readouterr()
    return code, out, err


# --- resolve -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(
            ("resolve", *H100_0523, "--", "--model-path", "m", "--enable-deterministic-inference"),
            "--model-path m --attention-backend fa3 --sampling-backend pytorch "
            "--enable-deterministic-inference --cuda-graph-backend-prefill disabled\n",
            id="argv-h100",
        ),
        pytest.param(
            ("resolve", "--device", "b200", "--sglang-version", "0.5.10", *DETERMINISTIC),
            "--attention-backend triton --sampling-backend pytorch "
            "--enable-deterministic-inference --disable-piecewise-cuda-graph\n",
            id="argv-b200-0.5.10",
        ),
        pytest.param(
            (
                "resolve",
                "--format",
                "argv",
                *H100_0523,
                "--",
                "--model-path",
                "/models/my model",
                "--enable-deterministic-inference",
            ),
            "--model-path '/models/my model' --attention-backend fa3 --sampling-backend pytorch "
            "--enable-deterministic-inference --cuda-graph-backend-prefill disabled\n",
            id="argv-quoted",
        ),
        pytest.param(
            (
                "resolve",
                "--format",
                "shell",
                "--device",
                "b200x2",
                "--sglang-version",
                "0.5.10",
                "--",
                "--model-path",
                "m",
                "--enable-deterministic-inference",
                "--tp",
                "2",
            ),
            "NCCL_ALGO=allreduce:tree python -m sglang.launch_server --model-path m "
            "--attention-backend triton --sampling-backend pytorch "
            "--enable-deterministic-inference --disable-piecewise-cuda-graph "
            "--disable-custom-all-reduce --tensor-parallel-size 2\n",
            id="shell-b200x2-0.5.10",
        ),
        pytest.param(
            (
                "resolve",
                "--format",
                "shell",
                "--launcher",
                "sglang serve",
                *H100_0523,
                *DETERMINISTIC,
            ),
            "sglang serve --attention-backend fa3 --sampling-backend pytorch "
            "--enable-deterministic-inference --cuda-graph-backend-prefill disabled\n",
            id="shell-launcher",
        ),
        pytest.param(
            (
                "resolve",
                "--device",
                "h100",
                "--sglang-version",
                "0.5.23",
                "--",
                "--model-path",
                "m",
            ),
            "--model-path m\n",
            id="argv-not-deterministic-untouched",
        ),
    ],
)
def test_resolve_prints(
    capsys: pytest.CaptureFixture[str], words: tuple[str, ...], expected: str
) -> None:
    assert run(capsys, *words) == (0, expected, "")


def test_resolve_json_is_the_resolution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "resolve",
        "--format",
        "json",
        "--device",
        "h100x2",
        "--sglang-version",
        "0.5.23",
        "--",
        "--enable-deterministic-inference",
        "--tp-size",
        "2",
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["argv"] == [
        "--attention-backend",
        "fa3",
        "--sampling-backend",
        "pytorch",
        "--enable-deterministic-inference",
        "--cuda-graph-backend-prefill",
        "disabled",
        "--disable-custom-all-reduce",
        "--tp-size",
        "2",
    ]
    assert data["env"] == {
        "NCCL_ALGO": "allreduce:tree",
        "NCCL_MAX_NCHANNELS": "8",
        "NCCL_MIN_NCHANNELS": "8",
    }
    assert data["command"] == ["python", "-m", "sglang.launch_server", *data["argv"]]
    assert data["sglang_version"] == "0.5.23"
    assert DeviceInfo.from_dict(data["device"]).count == 2
    assert [d["field"] for d in data["decisions"]] == [
        "attention_backend",
        "model",
        "sampling_backend",
        "piecewise_cuda_graph",
        "disable_custom_all_reduce",
        "NCCL_ALGO",
        "enable_torch_symm_mem",
        "NCCL_MIN_NCHANNELS",
        "NCCL_MAX_NCHANNELS",
    ]
    api = resolve(
        from_argv(["--enable-deterministic-inference", "--tp-size", "2"], "0.5.23"),
        device="h100x2",
        sglang_version="0.5.23",
    )
    assert data["fingerprint"] == api.fingerprint


def test_override_replaces_the_value_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    words = (
        "--on-conflict",
        "override",
        *H100_0523,
        "--",
        "--enable-deterministic-inference",
        "--sampling-backend",
        "flashinfer",
    )
    assert run(capsys, "resolve", *words) == (
        0,
        "--attention-backend fa3 --sampling-backend pytorch "
        "--enable-deterministic-inference --cuda-graph-backend-prefill disabled\n",
        "",
    )
    code, out, _ = run(capsys, "explain", *words)
    assert code == 0
    assert "  sampling_backend = pytorch    [sampling_backend, replaced your value]" in out


def test_warnings_go_to_stderr_and_the_launch_stands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "resolve",
        "--device",
        "h100x4",
        "--sglang-version",
        "0.5.24",
        "--",
        "--enable-deterministic-inference",
        "--tp",
        "2",
        "--tp",
        "4",
    )
    assert code == 0
    assert out == (
        "--attention-backend fa3 --sampling-backend pytorch "
        "--enable-deterministic-inference --cuda-graph-backend-prefill disabled "
        "--disable-custom-all-reduce --tp-size 4\n"
    )
    assert err.splitlines() == [
        "detargs: warning: SGLang 0.5.24 is not in the flag catalogue (0.5.3–0.5.23); "
        "resolving for 0.5.23, the newest catalogued release before it",
        "detargs: warning: --tp 2 is overridden by the later --tp 4, as SGLang's parser does",
        "detargs: note: this launch also needs the environment NCCL_ALGO=allreduce:tree "
        "NCCL_MAX_NCHANNELS=8 NCCL_MIN_NCHANNELS=8; --format shell or json includes it",
    ]


def test_argv_format_says_when_the_launch_needs_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys,
        "resolve",
        "--device",
        "h100x2",
        "--sglang-version",
        "0.5.17",
        "--",
        "--enable-deterministic-inference",
        "--tp-size",
        "2",
    )
    assert code == 0
    assert "NCCL_ALGO" not in out
    assert err == (
        "detargs: note: this launch also needs the environment "
        "NCCL_ALGO=allreduce:tree; --format shell or json includes it\n"
    )


def test_resolve_reads_detargs_device(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETARGS_DEVICE", "b200")
    code, out, _ = run(capsys, "resolve", "--sglang-version", "0.5.23", *DETERMINISTIC)
    assert (code, out.split()[:2]) == (0, ["--attention-backend", "triton"])


def test_resolve_reads_a_saved_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, saved, _ = run(capsys, "detect", "--device", "b200x4", "--json")
    assert code == 0
    path = tmp_path / "runner.json"
    path.write_text(saved, encoding="utf-8")
    code, out, _ = run(
        capsys, "explain", "--device", str(path), "--sglang-version", "0.5.23", *DETERMINISTIC
    )
    assert code == 0
    assert out.splitlines()[0] == "SGLang 0.5.23 on NVIDIA B200 (sm100, blackwell) x4"


# --- explain -------------------------------------------------------------------------


def test_explain_prints_each_decision_and_the_launch(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "explain",
        "--device",
        "b200",
        "--sglang-version",
        "0.5.10",
        "--model-arch",
        "DeepseekV2ForCausalLM",
        "--",
        "--model-path",
        "m",
        "--enable-deterministic-inference",
    )
    assert (code, err) == (0, "")
    fingerprint = resolve(
        from_argv(["--model-path", "m", "--enable-deterministic-inference"], "0.5.10"),
        device="b200",
        sglang_version="0.5.10",
        model_arch="DeepseekV2ForCausalLM",
    ).fingerprint
    assert out.splitlines() == [
        "SGLang 0.5.10 on NVIDIA B200 (sm100, blackwell) x1",
        "  attention_backend = triton    [attention_backend]",
        "      Blackwell (sm100): triton is batch-invariant here and keeps the radix cache; fa3",
        "      does not run on Blackwell and flashinfer would turn the radix cache off",
        "  model: DeepseekV2ForCausalLM  [attention_backend]",
        "      architecture DeepseekV2ForCausalLM given as model_arch: an absorbed-MLA",
        "      (DeepSeek-style) model, so the release's MLA backend list applies",
        "  sampling_backend = pytorch    [sampling_backend]",
        "      pytorch sampling is batch-invariant; flashinfer's sampling kernels are not (SGLang",
        "      replaces any other sampling backend silently)",
        "  piecewise_cuda_graph = false  [piecewise_cuda_graph]",
        "      SGLang 0.5.10 captures prefill in torch.compile piecewise CUDA graphs by default;",
        "      they replay at padded token counts per batch shape, which is not batch-invariant",
        "      (SGLang's deterministic mode turns them off too; detargs writes",
        "      --disable-piecewise-cuda-graph so the argv says it)",
        f"fingerprint {fingerprint}",
        "launch: python -m sglang.launch_server --model-path m --attention-backend triton "
        "--sampling-backend pytorch --enable-deterministic-inference "
        "--disable-piecewise-cuda-graph",
    ]


def test_explain_without_deterministic_inference(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", *H100_0523, "--", "--model-path", "m")
    assert code == 0
    assert "  nothing decided: deterministic inference is not requested" in out.splitlines()


# --- detect --------------------------------------------------------------------------


def test_detect_prints_the_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "detect", "--device", "h100x2") == (0, (
        "2 GPUs visible (source: profile)\n"
        "cuda  nvml  name                   capability  arch    memory    mig  pci bus id  uuid\n"
        "0     -     NVIDIA H100 80GB HBM3  9.0 (sm90)  hopper  79.6 GiB  -    -           -\n"
        "1     -     NVIDIA H100 80GB HBM3  9.0 (sm90)  hopper  79.6 GiB  -    -           -\n"
    ), "")  # fmt: skip


def test_detect_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "detect", "--device", "b200x8", "--json")
    info = DeviceInfo.from_json(out)
    assert (code, info.count, info.launch_gpu().capability.sm) == (0, 8, "sm100")


# --- flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        pytest.param(
            "0.5.10", "--disable-piecewise-cuda-graph", "--cuda-graph-backend-prefill", id="0.5.10"
        ),
        pytest.param(
            "0.5.23", "--cuda-graph-backend-prefill", "--disable-piecewise-cuda-graph", id="0.5.23"
        ),
    ],
)
def test_flags_lists_a_release(
    capsys: pytest.CaptureFixture[str], version: str, present: str, absent: str
) -> None:
    code, out, err = run(capsys, "flags", "--sglang-version", version)
    names = {line.split()[0] for line in out.splitlines()}
    assert (code, err) == (0, "")
    assert present in names
    assert absent not in names
    assert "--attention-backend                                      value:str" in out


HISTORY = (
    "0.5.3–0.5.13.post1           value        dest=cuda_graph_max_bs\n"
    "0.5.14–0.5.19                value        dest=cuda_graph_max_bs_decode "
    "-> --cuda-graph-max-bs-decode\n"
)


@pytest.mark.parametrize(
    "words",
    [
        pytest.param(("flags", "cuda-graph-max-bs"), id="without-dashes"),
        pytest.param(("flags", "--", "--cuda-graph-max-bs"), id="after-double-dash"),
    ],
)
def test_flags_shows_one_flags_history(
    capsys: pytest.CaptureFixture[str], words: tuple[str, ...]
) -> None:
    assert run(capsys, *words) == (0, HISTORY, "")


# --- exit codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "code", "message"),
    [
        pytest.param(
            (
                "resolve",
                *H100_0523,
                "--",
                "--enable-deterministic-inference",
                "--sampling-backend",
                "flashinfer",
            ),
            2,
            "detargs: error: 1 conflict with deterministic inference:",
            id="conflict",
        ),
        pytest.param(
            ("resolve", *H100_0523, "--", "--atention-backend", "fa3"),
            2,
            "did you mean --attention-backend?",
            id="unknown-sglang-flag",
        ),
        pytest.param(
            ("resolve", "--device", "h100", "--sglang-version", "0.4", *DETERMINISTIC),
            2,
            "SGLang 0.4 is older than 0.5.3",
            id="too-old-release",
        ),
        pytest.param(
            ("resolve", "--device", "h100", "--sglang-version", "0.5.23", "--", "--tp", "0"),
            2,
            "--tp-size",
            id="invalid-value",
        ),
        pytest.param(("resolve", "--format", "yaml"), 2, "invalid choice: 'yaml'", id="bad-option"),
        pytest.param(("frobnicate",), 2, "invalid choice: 'frobnicate'", id="unknown-command"),
        pytest.param((), 2, "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(
            ("detect", "--", "--tp-size", "2"),
            2,
            "'detargs detect' takes no SGLang arguments after --",
            id="detect-with-args",
        ),
        pytest.param(
            ("launch", "--launcher", "", *H100_0523, *DETERMINISTIC),
            2,
            "--launcher is empty",
            id="empty-launcher",
        ),
        pytest.param(
            ("launch", "--launcher", "'unclosed", *H100_0523, *DETERMINISTIC),
            2,
            '--launcher "\'unclosed": No closing quotation',
            id="unparsable-launcher",
        ),
        pytest.param(
            ("flags", "no-such-flag"),
            2,
            "--no-such-flag is in no catalogued",
            id="unknown-flag-history",
        ),
        pytest.param(
            ("resolve", "--device", "h1000", *DETERMINISTIC),
            3,
            "device='h1000'",
            id="unknown-profile",
        ),
        pytest.param(
            ("resolve", "--device", "/nonexistent/gpu.json", *DETERMINISTIC),
            3,
            "no such file '/nonexistent/gpu.json'",
            id="missing-device-file",
        ),
        pytest.param(
            ("resolve", "--device", "v100", *DETERMINISTIC),
            3,
            "is older than sm80",
            id="unsupported-gpu",
        ),
        pytest.param(
            ("detect", "--device", "h1000"), 3, "device='h1000'", id="detect-unknown-profile"
        ),
    ],
)
def test_errors_exit_with_their_code_and_one_message(
    capsys: pytest.CaptureFixture[str], words: tuple[str, ...], code: int, message: str
) -> None:
    exit_code, out, err = run(capsys, *words)
    assert exit_code == code
    assert out == ""
    assert message in err
    assert err.startswith("detargs: error:")
    assert "Traceback" not in err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--help")
    assert (code, err) == (0, "")
    assert (
        "Exit codes: 0 ok, 1 output not written, 2 invalid arguments or conflicts, 3 device "
        "detection failure, 4 this node does not match the plan, 5 not deterministic "
        "(check), 6 could not check, 130 interrupted, 141 output pipe closed."
    ) in (
        " ".join(out.split())  # argparse wraps to the terminal's width
    )


def test_a_conflicting_inherited_environment_variable_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NCCL_ALGO", "ring")
    code, out, err = run(
        capsys,
        "resolve",
        "--device",
        "h100x2",
        "--sglang-version",
        "0.5.23",
        "--",
        "--enable-deterministic-inference",
        "--tp-size",
        "2",
    )
    assert (code, out) == (2, "")
    assert "$NCCL_ALGO ring (requires allreduce:tree)" in err


def test_undecodable_argv_bytes_come_back_as_the_same_bytes() -> None:
    # a path with a byte that is not UTF-8 arrives as a surrogate escape; a strict stdout
    # must still get the original byte, not a traceback
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    command = [
        sys.executable,
        "-m",
        "detargs.cli",
        "resolve",
        "--device",
        "h100",
        "--sglang-version",
        "0.5.23",
        "--",
        os.fsdecode(b"--model-path"),
        os.fsdecode(b"/models/\xff"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"--model-path '/models/\xff'\n"
    assert b"Traceback" not in done.stderr
