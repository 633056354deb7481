"""Issue 12: what a new user meets, defect by defect, and the missing basics.

Each test is named for the defect it pins (``defect1`` … ``defect15``; defect 6, the
tensor-parallel fit check, lives with the multi-node plan). Output-pipe and Ctrl-C cases
run the real ``detargs`` command in a subprocess; the pipe property runs the CLI
in-process with a stdout that fails, which keeps hundreds of cases fast.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import detargs
from detargs import resolve
from detargs.cli import EXIT_BROKEN_PIPE, main
from detargs.errors import InvalidArgsError
from detargs.fixtures import DeterministicServerMixin

DET = "--enable-deterministic-inference"
H100 = ("--device", "h100", "--sglang-version", "0.5.23")
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "detargs"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
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


def detargs_command() -> list[str]:
    """The installed console script, else the same entry function run by this Python."""
    if SCRIPT.exists():
        return [str(SCRIPT)]
    return [sys.executable, "-c", "from detargs._console import run; run()"]


def in_bash(line: str) -> subprocess.CompletedProcess[str]:
    """Run a shell line that calls detargs, as a user's script would."""
    return subprocess.run(
        ["bash", "-c", line],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DETARGS_", "NCCL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


# --- defect 1: a closed or full output pipe --------------------------------------------

PIPED = {
    "flags": ["flags"],
    "resolve-json": ["resolve", "--format", "json", *H100, "--", DET],
    "explain": ["explain", *H100, "--", DET],
    "detect-json": ["detect", "--device", "h100x8", "--json"],
    "profiles": ["profiles"],
    "help": ["--help"],
}


@pytest.mark.parametrize("words", [pytest.param(w, id=k) for k, w in PIPED.items()])
def test_defect1_a_reader_that_leaves_early_ends_the_command_quietly(words: list[str]) -> None:
    # `detargs … | head -1` and `| true`: the reader closes the pipe without reading it all
    for readers in ("head -1", "true"):
        line = (
            f"{shlex.join([*detargs_command(), *words])} | {readers}; "
            'echo "rc=${PIPESTATUS[0]}" >&2'
        )
        done = in_bash(line)
        status = done.stderr.strip().splitlines()[-1]
        assert "Traceback" not in done.stderr, done.stderr
        assert "Exception ignored" not in done.stderr, done.stderr
        # a short output may fit the pipe before the reader leaves: then it is a plain 0
        assert status in (f"rc={EXIT_BROKEN_PIPE}", "rc=0"), done.stderr
        assert done.stderr.strip().splitlines()[:-1] == [], done.stderr


def test_defect1_a_long_output_into_a_closed_pipe_exits_141() -> None:
    import fcntl

    read_end, write_end = os.pipe()
    # a one-page pipe: the listing cannot fit before the reader leaves, so EPIPE is certain
    fcntl.fcntl(write_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    process = subprocess.Popen(
        [*detargs_command(), "flags"], stdout=write_end, stderr=subprocess.PIPE, env=child_env()
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        reader.readline()
    _, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_BROKEN_PIPE
    assert err == b""


@pytest.mark.parametrize(
    "words", [pytest.param(PIPED[k], id=k) for k in ("resolve-json", "flags", "help")]
)
def test_defect1_a_full_disk_is_one_line_naming_the_output(words: list[str]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*detargs_command(), *words],
            stdout=full,
            stderr=subprocess.PIPE,
            env=child_env(),
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr == (
        "detargs: error: cannot write to standard output: No space left on "
        "device; the output is incomplete\n"
    )


class FailingStdout(io.TextIOBase):
    """A stdout whose reader is gone (EPIPE) or whose disk is full (ENOSPC)."""

    def __init__(self, number: int, after: int) -> None:
        self.number, self.after, self.attempts = number, after, 0

    def write(self, text: str) -> int:
        self.attempts += 1
        if self.attempts > self.after:
            self._fail()
        return len(text)

    def flush(self) -> None:
        if self.attempts > self.after:
            self._fail()

    def _fail(self) -> None:
        if self.number == errno.EPIPE:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        raise OSError(self.number, os.strerror(self.number))


INVOCATION_PARTS = st.one_of(
    st.tuples(
        st.sampled_from(["resolve", "explain"]),
        st.sampled_from(["h100", "b200x2", "t4", "nope"]),
        st.sampled_from([None, "0.5.10", "0.5.23", "0.6"]),
        st.sampled_from([None, "json", "shell", "argv", "text"]),
        st.lists(
            st.sampled_from(
                [DET, "--tp", "2", "--model-path", "m", "--log-level", "debug", "--tp-size", "x"]
            ),
            max_size=6,
        ),
    ),
    st.tuples(
        st.just("launch"),
        st.sampled_from(["h100", "h100x2"]),
        st.just(None),
        st.sampled_from([None, "json", "shell"]),
        st.just([DET]),
    ),
    st.tuples(
        st.sampled_from(["detect", "flags", "profiles", "completion", "--help", "--version"]),
        st.sampled_from(["h100", "b200x8"]),
        st.sampled_from([None, "0.5.14"]),
        st.sampled_from([None, "json"]),
        st.sampled_from([[], ["tp"], ["bash"]]),
    ),
)


def invocation(parts: tuple[Any, ...]) -> list[str]:
    command, device, version, fmt, rest = parts
    words = [command]
    if command in ("resolve", "explain", "launch"):
        words += ["--device", device]
        words += ["--sglang-version", version] if version else []
        words += ["--format", fmt] if fmt else []
        words += ["--dry-run"] if command == "launch" else []
        return [*words, "--", *rest]
    if command == "detect":
        return [*words, "--device", device, *(["--json"] if fmt else [])]
    if command == "flags":
        return [*words, *(["--sglang-version", version] if version else []), *rest[:1]]
    if command == "profiles":
        return [*words, *(["--json"] if fmt else [])]
    if command == "completion":
        return [*words, "zsh" if fmt else "bash"]
    return words


@given(
    parts=INVOCATION_PARTS,
    number=st.sampled_from([errno.EPIPE, errno.ENOSPC]),
    after=st.integers(0, 3),
)
def test_defect1_property_no_invocation_ends_in_a_traceback_when_stdout_fails(
    parts: tuple[Any, ...], number: int, after: int
) -> None:
    words = invocation(parts)
    stdout, stderr = FailingStdout(number, after), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(words)  # an exception escaping here is the traceback a user would see
    err = stderr.getvalue()
    assert "Traceback" not in err
    if stdout.attempts > after:  # the command tried to print and the write failed
        if number == errno.EPIPE:
            assert code == EXIT_BROKEN_PIPE
            assert "cannot write" not in err
        else:
            assert code == 1
            assert err.endswith(
                "detargs: error: cannot write to standard output: No space "
                "left on device; the output is incomplete\n"
            )
    else:
        assert code in (0, 2, 3), err


def test_defect1_a_closed_stdout_is_an_error_not_a_silent_success() -> None:
    done = in_bash(shlex.join([*detargs_command(), *PIPED["resolve-json"]]) + " >&-")
    assert done.returncode == 1
    assert done.stderr == (
        "detargs: error: cannot write to standard output: it is closed; the output is incomplete\n"
    )


# --- defect 2 and 13: the pytest options reach the mixin; a bad one stops at start-up ---


def _inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    from importlib.metadata import entry_points

    plugin = (
        ()
        if [ep for ep in entry_points(group="pytest11") if ep.name == "detargs"]
        else ("-p", "detargs.pytest_plugin")
    )
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *plugin, *args)


MIXIN_MODULE = """
from detargs.fixtures import DeterministicServerMixin


class Fixture(DeterministicServerMixin):
    enable_deterministic_inference = True


class Pinned(DeterministicServerMixin):
    enable_deterministic_inference = True
    device = "h100"
    sglang_version = "0.5.23"


def test_session_options_reach_the_mixin():
    resolution = Fixture.get_resolution()
    assert resolution.device.launch_gpu().name == "NVIDIA B200"
    assert resolution.sglang_version == "0.5.10"
    assert "--disable-piecewise-cuda-graph" in Fixture.get_server_args()


def test_a_class_that_names_its_own_wins():
    assert Pinned.get_resolution().sglang_version == "0.5.23"
    assert Pinned.get_server_args()[:2] == ["--attention-backend", "fa3"]
"""


def test_defect2_pytest_options_reach_mixin_classes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MIXIN_MODULE)
    result = _inner(pytester, "--detargs-device", "b200", "--detargs-sglang-version", "0.5.10")
    result.assert_outcomes(passed=2)


def test_defect2_the_options_do_not_outlive_the_session(pytester: pytest.Pytester) -> None:
    from detargs import _session

    pytester.makepyfile(MIXIN_MODULE)
    _inner(pytester, "--detargs-device", "b200", "--detargs-sglang-version", "0.5.10")
    assert _session.current() == _session.SessionDefaults()


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        pytest.param(
            ("--detargs-device", "h10"),
            "--detargs-device 'h10'",
            "unknown device 'h10': did you mean h100",
            id="profile",
        ),
        pytest.param(
            ("--detargs-device", "/nonexistent/node.json"),
            "--detargs-device '/nonexistent/node.json'",
            "no such file",
            id="json",
        ),
        pytest.param(
            ("--detargs-sglang-version", "latest"),
            "--detargs-sglang-version",
            "'latest' is not a version",
            id="version",
        ),
    ],
)
def test_defect13_a_bad_option_is_a_usage_error_at_start_up(
    pytester: pytest.Pytester, args: tuple[str, ...], option: str, message: str
) -> None:
    pytester.makepyfile(
        "def test_a(detargs_device):\n    pass\ndef test_b(detargs_device):\n    pass\n"
    )
    result = _inner(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: {option}: {message}"), errors
    assert "Traceback" not in result.stdout.str()


# --- defects 3, 4, 10: the mixin drops nothing silently ----------------------------------


def _fixture(**attributes: Any) -> type[DeterministicServerMixin]:
    base = {"enable_deterministic_inference": True, "device": "h100", "sglang_version": "0.5.23"}
    return type("TestServer", (DeterministicServerMixin,), {**base, **attributes})


@pytest.mark.parametrize(
    ("attributes", "names"),
    [
        pytest.param(
            {"tp_size": 2, "extra_args": ["--tp-size", "4"], "device": "h100x4"},
            ["tp_size = 2 (class attribute)", "--tp-size 4 (extra_args)"],
            id="tp-size",
        ),
        pytest.param(
            {"attention_backend": "fa3", "extra_args": ["--attention-backend", "triton"]},
            ["attention_backend = 'fa3'", "--attention-backend 'triton'"],
            id="backend",
        ),
        pytest.param(
            {"model": "org/a", "extra_args": ["--model-path", "org/b"]},
            ["model = 'org/a'", "--model-path 'org/b'"],
            id="model-path",
        ),
        pytest.param(
            {"mem_fraction_static": 0.7, "extra_args": ["--mem-fraction-static", "0.8"]},
            ["mem_fraction_static = 0.7", "--mem-fraction-static 0.8"],
            id="mem-fraction",
        ),
        pytest.param(
            {"cuda_graph_max_bs": 8, "extra_args": ["--cuda-graph-max-bs-decode", "16"]},
            ["cuda_graph_max_bs = 8", "--cuda-graph-max-bs-decode 16"],
            id="graph-sizes",
        ),
    ],
)
def test_defect3_a_clash_with_extra_args_names_both_places(
    attributes: dict[str, Any], names: list[str]
) -> None:
    with pytest.raises(InvalidArgsError) as raised:
        _fixture(**attributes).get_server_args()
    for name in names:
        assert name in str(raised.value)
    assert "keep one of them" in str(raised.value)


def test_defect3_the_same_value_in_both_places_is_no_clash() -> None:
    args = _fixture(tp_size=2, device="h100x2", extra_args=["--tp-size", "2"]).get_server_args()
    assert args[-2:] == ["--tp-size", "2"]


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        pytest.param(
            "enable_determinstic_inference", "enable_deterministic_inference", id="deterministic"
        ),
        pytest.param("attention_backed", "attention_backend", id="backend"),
        pytest.param("sglang_verison", "sglang_version", id="setting"),
        pytest.param("extra_arg", "extra_args", id="extra-args"),
    ],
)
def test_defect4_a_misspelt_attribute_is_refused_with_did_you_mean(
    name: str, suggestion: str
) -> None:
    with pytest.raises(
        InvalidArgsError,
        match=rf"TestServer\.{name} is not a launch argument "
        rf"the mixin reads, so it would be ignored: did you mean {suggestion}\?",
    ):
        _fixture(**{name: "x"}).get_server_args()


@pytest.mark.parametrize(
    ("name", "value", "flag"),
    [
        pytest.param("pp_size", 2, "--pp-size", id="pp-size-not-tp-size"),
        pytest.param("ep_size", 8, "--ep-size", id="ep-size-not-tp-size"),
        pytest.param(
            "mm_attention_backend",
            "fa3",
            "--mm-attention-backend",
            id="mm-backend-not-attention-backend",
        ),
    ],
)
def test_an_sglang_flag_as_an_attribute_is_pointed_at_extra_args(
    name: str, value: object, flag: str
) -> None:
    with pytest.raises(
        InvalidArgsError,
        match=rf"TestServer\.{name} is not a launch argument "
        rf"the mixin reads, so it would be ignored; {flag} is an SGLang flag: "
        rf"pass it in extra_args, as in extra_args = \['{flag}', '{value}'\]",
    ):
        _fixture(**{name: value}).get_server_args()


def test_defect4_other_attributes_of_a_test_class_are_left_alone() -> None:
    fixture = _fixture(
        base_url="http://127.0.0.1:21000", timeout=600, process=None, helper=lambda: None
    )
    assert fixture.get_server_args()[:2] == ["--attention-backend", "fa3"]


def test_defect10_extra_args_as_one_string_says_split_it() -> None:
    with pytest.raises(
        InvalidArgsError,
        match=r"TestServer\.extra_args is one string "
        r"\('--log-level debug'\); split it into argv words: extra_args = "
        r"\['--log-level', 'debug'\]",
    ):
        _fixture(extra_args="--log-level debug").get_server_args()


# --- defect 5: a misspelt --model-arch ---------------------------------------------------


def test_defect5_a_misspelt_model_arch_warns_with_did_you_mean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "resolve", *H100, "--model-arch", "DeepSeekV2ForCausalLM", "--", DET
    )
    assert code == 0
    assert out.startswith("--attention-backend fa3")
    assert (
        "detargs: warning: --model-arch DeepSeekV2ForCausalLM is not an architecture the "
        "rules know: did you mean DeepseekV2ForCausalLM?"
    ) in err


@pytest.mark.parametrize("arch", ["Qwen2ForCausalLM", "DeepseekV2ForCausalLM"])
def test_defect5_a_known_or_unrelated_architecture_is_not_warned(
    capsys: pytest.CaptureFixture[str], arch: str
) -> None:
    _, _, err = run(capsys, "resolve", *H100, "--model-arch", arch, "--", DET)
    assert "warning" not in err


# --- defect 7: the release is named once --------------------------------------------------


def test_defect7_resolve_reads_argv_for_the_release_it_resolves_for() -> None:
    launch = resolve(
        [DET, "--disable-piecewise-cuda-graph", "--tp", "2"],
        device="h100x2",
        sglang_version="0.5.10",
        environ={},
    )
    assert launch.sglang_version == "0.5.10"
    assert "--disable-piecewise-cuda-graph" in launch.argv
    assert launch.argv[-2:] == ("--tensor-parallel-size", "2")


def test_defect7_what_reading_the_argv_assumed_is_in_the_warnings() -> None:
    launch = resolve(["--tp", "2", "--tp", "4"], sglang_version="0.5.23")
    assert launch.warnings == ("--tp 2 is overridden by the later --tp 4, as SGLang's parser does",)


def test_defect7_one_string_is_refused_with_split_it() -> None:
    with pytest.raises(InvalidArgsError, match="split it first"):
        resolve("--tp 2", sglang_version="0.5.23")


# --- defect 8: a detargs option on the wrong subcommand ----------------------------------


@pytest.mark.parametrize(
    ("words", "message"),
    [
        pytest.param(
            ("resolve", *H100, "--dry-run", "--", DET),
            "--dry-run is an option of `detargs launch`, not of `detargs resolve`",
            id="resolve-dry-run",
        ),
        pytest.param(
            ("flags", "--json"),
            "--json is an option of `detargs detect`, "
            "`detargs profiles` and `detargs check`, not of `detargs flags`",
            id="flags-json",
        ),
        pytest.param(
            ("detect", "--format", "json"),
            "--format is an option of `detargs "
            "resolve`, `detargs explain` and `detargs launch`, not of `detargs "
            "detect`",
            id="detect-format",
        ),
    ],
)
def test_defect8_another_commands_option_says_which_command_has_it(
    capsys: pytest.CaptureFixture[str], words: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, *words)
    assert (code, out) == (2, "")
    assert err == f"detargs: error: {message}; see `detargs {words[0]} --help`\n"
    assert "after --" not in err


def test_defect8_explain_takes_format_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--format", "json", *H100, "--", DET)
    _, resolved, _ = run(capsys, "resolve", "--format", "json", *H100, "--", DET)
    assert code == 0
    assert json.loads(out) == json.loads(resolved)


# --- defect 9: flags honours the version, reads prefixes, suggests --------------------------


def test_defect9_flags_with_a_version_shows_that_release(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "flags", "--sglang-version", "0.5.14", "attention-backend")
    assert code == 0
    [line] = out.splitlines()
    assert line.startswith("0.5.13–0.5.16 ")
    assert "choices=" in line


def test_defect9_flags_with_a_version_that_lacks_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "flags", "--sglang-version", "0.5.23", "cuda-graph-max-bs")
    assert code == 2
    assert "--cuda-graph-max-bs is not a flag of SGLang 0.5.23" in err
    assert "use --cuda-graph-max-bs-decode instead" in err


def test_defect9_a_prefix_the_parser_accepts_shows_its_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "flags", "--sglang-version", "0.5.23", "tp")
    assert code == 0
    assert err == (
        "detargs: note: --tp is not a flag of its own: SGLang 0.5.23's parser reads "
        "it as --tp-size, a unique prefix\n"
    )
    assert "dest=tp_size" in out


def test_defect9_a_typo_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "flags", "atention-backend")
    assert code == 2
    assert err.startswith(
        "detargs: error: --atention-backend is in no catalogued SGLang "
        "release: did you mean --attention-backend"
    )


# --- defect 11: Ctrl-C ------------------------------------------------------------------


def _interrupted(code: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    assert process.stderr is not None
    assert process.stderr.readline() == "ready\n"  # the child is inside the slow step
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


_SLOW = (
    "import sys, time\n"
    "def slow(*args, **kwargs):\n"
    "    print('ready', file=sys.stderr, flush=True)\n"
    "    time.sleep(60)\n"
)


def test_defect11_ctrl_c_while_resolving_exits_130_quietly() -> None:
    # NVML detection is the slow step of a real start-up; here it is a sleep
    code = _SLOW + (
        "import detargs.nvml\n"
        "detargs.nvml.probe = slow\n"
        "from detargs._console import run\n"
        "sys.argv = ['detargs', 'resolve', '--sglang-version', '0.5.23', '--', "
        f"'{DET}']\n"
        "run()\n"
    )
    done = _interrupted(code)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")


def test_defect11_ctrl_c_while_importing_the_cli_exits_130_quietly() -> None:
    code = _SLOW + (
        "import builtins\n"
        "real_import = builtins.__import__\n"
        "def importing(name, globals=None, locals=None, fromlist=(), level=0):\n"
        "    if name == 'cli' and level == 1:\n"
        "        slow()\n"
        "    return real_import(name, globals, locals, fromlist, level)\n"
        "builtins.__import__ = importing\n"
        "from detargs._console import run\n"
        "run()\n"
    )
    done = _interrupted(code)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")


def test_defect11_the_console_script_is_the_guarded_entry() -> None:
    from importlib.metadata import entry_points

    scripts = [ep.value for ep in entry_points(group="console_scripts") if ep.name == "detargs"]
    if not scripts:
        pytest.skip("detargs is not installed (pip install -e .): no console script")
    assert scripts == ["detargs._console:run"]


# --- defect 12: with stderr closed, nothing extra on stdout -------------------------------


def test_defect12_warnings_never_reach_stdout_when_stderr_is_closed() -> None:
    words = [
        "resolve",
        "--device",
        "h100",
        "--sglang-version",
        "0.6",
        "--",
        DET,
        "--tp",
        "1",
        "--tp",
        "1",
    ]  # an uncatalogued version: a warning and a note to print
    line = shlex.join([*detargs_command(), *words]) + " 2>&-"
    done = in_bash(line)
    assert done.returncode == 0
    assert done.stdout == (
        "--attention-backend fa3 --sampling-backend pytorch "
        "--enable-deterministic-inference --cuda-graph-backend-prefill "
        "disabled --tp-size 1\n"
    )


def test_defect12_errors_never_reach_stdout_when_stderr_is_closed() -> None:
    line = shlex.join([*detargs_command(), "resolve", "--device", "h10", "--", DET]) + " 2>&-"
    done = in_bash(line)
    assert (done.returncode, done.stdout) == (3, "")


# --- defect 14: grammar, and a detargs option given twice ---------------------------------


def test_defect14_a_float_value_reads_a_float(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "resolve", *H100, "--", "--mem-fraction-static", "lots")
    assert code == 2
    assert "--mem-fraction-static needs a float value, got 'lots'" in err


@pytest.mark.parametrize(
    ("words", "message"),
    [
        pytest.param(
            ("resolve", "--device", "h100", "--device", "b200"),
            "--device is given twice (--device h100, then --device b200): give it once",
            id="device",
        ),
        pytest.param(
            ("explain", "--sglang-version", "0.5.10", "--sglang-version", "0.5.23"),
            "--sglang-version is given twice (--sglang-version 0.5.10, then "
            "--sglang-version 0.5.23): give it once",
            id="sglang-version",
        ),
        pytest.param(
            ("resolve", "--format", "json", "--format", "shell"),
            "--format is given twice (--format json, then --format shell): give it once",
            id="format",
        ),
        pytest.param(
            ("plan", "--device", "h100x8", "--nnodes", "4", "--nnodes", "2"),
            "--nnodes is given twice (--nnodes 4, then --nnodes 2): give it once",
            id="plan-nnodes",
        ),
        pytest.param(
            ("launch", "--plan", "a.json", "--plan", "b.json"),
            "--plan is given twice (--plan a.json, then --plan b.json): give it once",
            id="launch-plan",
        ),
        pytest.param(
            ("plan", "--device", "h100x8", "--nnodes", "2", "--dist-port", "1", "--dist-port", "2"),
            "--dist-port is given twice (--dist-port 1, then --dist-port 2): give it once",
            id="plan-dist-port",
        ),
    ],
)
def test_defect14_a_detargs_option_given_twice_is_refused(
    capsys: pytest.CaptureFixture[str], words: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, *words, "--", DET)
    assert (code, out) == (2, "")
    assert err == f"detargs: error: {message}; see `detargs {words[0]} --help`\n"


# --- defect 15: no SGLang arguments -------------------------------------------------------


@pytest.mark.parametrize("command", ["resolve", "explain", "launch"])
@pytest.mark.parametrize(
    "dash", [pytest.param(("--",), id="empty-after-dash"), pytest.param((), id="no-dash")]
)
def test_defect15_no_sglang_arguments_says_where_they_go(
    capsys: pytest.CaptureFixture[str], command: str, dash: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, command, "--device", "h100", *dash)
    assert (code, out) == (2, "")
    assert err == (
        f"detargs: error: no SGLang arguments: they go after --, as in: detargs "
        f"{command} --device h100 -- --model-path MODEL "
        "--enable-deterministic-inference\n"
    )


# --- the missing basics -------------------------------------------------------------------


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out == f"detargs {detargs.__version__}\n"
    assert version("detargs") == detargs.__version__  # one source: hatch reads __init__.py


def test_profiles_lists_every_profile_with_capability(capsys: pytest.CaptureFixture[str]) -> None:
    from detargs.profiles import PROFILES

    code, out, _ = run(capsys, "profiles")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["name", "gpu", "capability", "arch", "aliases"]
    assert [line.split()[0] for line in lines[1:-1]] == [entry.key for entry in PROFILES]
    h100 = next(line for line in lines if line.startswith("h100 "))
    assert "NVIDIA H100 80GB HBM3" in h100
    assert "9.0 (sm90)" in h100
    assert "hopper" in h100
    assert lines[-1].startswith("Add xN for N GPUs of one kind, N from 1 to 64 (h100x8)")


def test_profiles_json_names_what_device_takes(capsys: pytest.CaptureFixture[str]) -> None:
    from detargs.detection import detect

    code, out, _ = run(capsys, "profiles", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["max_count"] == 64
    for row in data["profiles"]:
        gpu = detect(f"{row['name']}x2").launch_gpu()
        assert (gpu.name, str(gpu.capability), gpu.target) == (
            row["gpu"],
            row["capability"],
            row["target"],
        )


def test_launch_dry_run_json_is_the_resolution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "launch",
        "--dry-run",
        "--format",
        "json",
        "--device",
        "h100x2",
        "--sglang-version",
        "0.5.23",
        "--",
        DET,
        "--tp",
        "2",
    )
    data = json.loads(out)
    assert code == 0
    assert data["command"][:3] == ["python", "-m", "sglang.launch_server"]
    assert data["env"]["NCCL_ALGO"] == "allreduce:tree"


def test_launch_format_without_dry_run_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "launch", "--format", "json", *H100, "--", DET)
    assert code == 2
    assert "--format json is for --dry-run" in err


@pytest.mark.parametrize("command", ["resolve", "explain"])
def test_an_assumed_release_is_said_on_stderr_and_in_the_json(
    capsys: pytest.CaptureFixture[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("detargs.sglang.version.installed_sglang_version", lambda: None)
    monkeypatch.setattr(
        "detargs.sglang.version.target_version.__kwdefaults__", {"installed": lambda: None}
    )
    code, out, err = run(capsys, command, "--format", "json", "--device", "h100", "--", DET)
    data = json.loads(out)
    assert code == 0
    assert (
        data["sglang_version"],
        data["sglang_version_source"],
        data["sglang_version_assumed"],
    ) == ("0.5.23", "newest", True)
    assert err == (
        "detargs: note: resolved for SGLang 0.5.23, the newest catalogued release: "
        "no --sglang-version was given and no sglang is installed here; pass "
        "--sglang-version for the release that will run\n"
    )
    _, given, given_err = run(capsys, command, "--format", "json", *H100, "--", DET)
    assert json.loads(given)["sglang_version_assumed"] is False
    assert given_err == ""


# --- completion ---------------------------------------------------------------------------


@pytest.fixture
def bash_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0
    path = tmp_path / "detargs.bash"
    path.write_text(out, encoding="utf-8")
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers after ``detargs <words>`` (the last word is the one being typed)."""
    line = " ".join(shlex.quote(word) for word in ("detargs", *words))
    program = (
        f"source {shlex.quote(str(script))}\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words)}\n"
        "$(complete -p detargs | sed -E 's/.*-F ([^ ]+) .*/\\1/')\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True, timeout=30
    )
    return [word for word in done.stdout.splitlines() if word]


def test_bash_completion_is_valid_bash(bash_script: Path) -> None:
    subprocess.run(["bash", "-n", str(bash_script)], check=True, timeout=30)
    done = subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(bash_script))}; complete -p detargs"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stdout.strip() == "complete -o default -F _detargs detargs"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(
            ("",),
            [
                "resolve",
                "explain",
                "launch",
                "plan",
                "detect",
                "flags",
                "profiles",
                "completion",
                "check",
                "-h",
                "--help",
                "--version",
            ],
            id="commands",
        ),
        pytest.param(("ex",), ["explain"], id="a-command-prefix"),
        pytest.param(("resolve", "--for"), ["--format"], id="an-option"),
        pytest.param(("resolve", "--format", ""), ["argv", "shell", "json"], id="choices"),
        pytest.param(("explain", "--device", "b2"), ["b200"], id="profiles"),
        pytest.param(
            ("flags", "--sglang-version", "0.5.1"),
            [
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
            ],
            id="releases",
        ),
        pytest.param(("completion", ""), ["bash", "zsh", "-h", "--help"], id="positional"),
        pytest.param(("resolve", "--", "--dev"), [], id="sglang-args-are-left-alone"),
    ],
)
def test_bash_completion_completes(
    bash_script: Path, words: tuple[str, ...], expected: list[str]
) -> None:
    assert complete(bash_script, *words) == expected


def test_bash_completion_follows_the_parser(bash_script: Path) -> None:
    # generated, not hand-written: every option of every command completes
    from detargs.cli import _parser, _subparsers

    for name, sub in _subparsers(_parser()).items():
        options = sorted(o for action in sub._actions for o in action.option_strings)
        assert sorted(o for o in complete(bash_script, name, "-") if o.startswith("-")) == options


def test_zsh_completion_is_valid_zsh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "completion", "zsh")
    assert code == 0
    assert out.startswith("#compdef detargs\n")
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (.ci/run installs it)")
    path = tmp_path / "_detargs"
    path.write_text(out, encoding="utf-8")
    subprocess.run(["zsh", "-n", str(path)], check=True, timeout=30)
    program = (
        f"fpath=({shlex.quote(str(tmp_path))} $fpath); autoload -U compinit; "
        "compinit -u; print -r -- ${_comps[detargs]}"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.stdout.strip() == "_detargs"


# --- the README's "no GPU needed" examples ------------------------------------------------


def readme_commands() -> list[list[str]]:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "detargs" and "on a GPU node" not in line:
                    commands.append(words[1:])
    return commands


@pytest.mark.parametrize("words", [pytest.param(w, id=" ".join(w[:3])) for w in readme_commands()])
def test_readme_examples_run_without_a_gpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, words: list[str]
) -> None:
    def no_gpu(**_: object) -> None:
        raise detargs.DeviceDetectionError("GPU detection failed: this machine has no GPU")

    monkeypatch.setattr("detargs.nvml.probe", no_gpu)
    code, out, err = run(capsys, *words)
    assert code == 0, err
    assert out


def test_readme_examples_are_all_run() -> None:
    assert len(readme_commands()) == 4
