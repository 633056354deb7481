"""``detargs launch`` and ``Resolution.popen_args()``, into a stand-in launcher.

The stand-in (``tests/standin_launcher.py``) records the argv and the ``NCCL_*``,
``SGLANG_*`` and ``DETARGS_*`` variables it was started with; every process is started
from an argument list, never through a shell.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import detargs
from detargs import from_argv
from detargs.cli import main
from detargs.resolution import Resolution, resolve

STANDIN = Path(__file__).with_name("standin_launcher.py")
SRC = Path(detargs.__file__).resolve().parent.parent
TP2_ARGV = [
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
TP2_ENV = {"NCCL_ALGO": "allreduce:tree", "NCCL_MAX_NCHANNELS": "8", "NCCL_MIN_NCHANNELS": "8"}
_OURS = ("NCCL_", "SGLANG_", "DETARGS_")


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without what the stand-in records, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_OURS)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def launcher(out: Path) -> str:
    return shlex.join([sys.executable, str(STANDIN), str(out)])


def recorded(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def detargs_launch(
    out: Path, env: Mapping[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "detargs.cli",
        "launch",
        "--launcher",
        launcher(out),
        "--device",
        "h100x2",
        "--sglang-version",
        "0.5.23",
        *options,
        "--",
        "--tp-size",
        "2",
        "--enable-deterministic-inference",
    ]
    return subprocess.run(
        command, env=dict(env), capture_output=True, text=True, timeout=60, check=False
    )


def test_launch_execs_the_launcher_with_argv_and_merged_env(tmp_path: Path) -> None:
    out = tmp_path / "launch.json"
    env = child_environment(DETARGS_TEST_INHERITED="kept", SGLANG_LOG_LEVEL="debug")
    result = detargs_launch(out, env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert recorded(out) == {
        "argv": TP2_ARGV,
        "env": {**TP2_ENV, "DETARGS_TEST_INHERITED": "kept", "SGLANG_LOG_LEVEL": "debug"},
    }


def test_launch_replaces_the_detargs_process() -> None:
    # exec, not a child: the launcher runs with detargs' pid and its exit status is final
    reports_pid = "import os, sys; sys.exit(os.getpid() % 200 + 7)"
    command = [
        sys.executable,
        "-m",
        "detargs.cli",
        "launch",
        "--launcher",
        shlex.join([sys.executable, "-c", reports_pid]),
        "--device",
        "h100",
        "--sglang-version",
        "0.5.23",
        "--",
        "--enable-deterministic-inference",
    ]
    process = subprocess.Popen(command, env=child_environment())
    assert process.wait(timeout=60) == process.pid % 200 + 7


def test_launch_refuses_a_conflicting_inherited_variable(tmp_path: Path) -> None:
    out = tmp_path / "launch.json"
    result = detargs_launch(out, child_environment(NCCL_ALGO="ring"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "$NCCL_ALGO ring (requires allreduce:tree)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()  # the launcher never ran


def test_launch_with_override_replaces_the_inherited_variable(tmp_path: Path) -> None:
    out = tmp_path / "launch.json"
    result = detargs_launch(out, child_environment(NCCL_ALGO="ring"), "--on-conflict", "override")
    assert result.returncode == 0
    assert recorded(out)["env"] == TP2_ENV


def test_launch_a_launcher_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "detargs.cli",
            "launch",
            "--launcher",
            str(tmp_path / "no-such-launcher"),
            "--device",
            "h100",
            "--",
            "--enable-deterministic-inference",
        ],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot run the launcher" in result.stderr
    assert "check --launcher" in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_prints_the_command_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TP2_ENV:
        monkeypatch.delenv(name, raising=False)  # read for conflicts
    out = tmp_path / "launch.json"
    code = main(
        [
            "launch",
            "--dry-run",
            "--launcher",
            launcher(out),
            "--device",
            "h100x2",
            "--sglang-version",
            "0.5.23",
            "--",
            "--tp-size",
            "2",
            "--enable-deterministic-inference",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert (code, stderr) == (0, "")
    assert stdout == (
        "NCCL_ALGO=allreduce:tree NCCL_MAX_NCHANNELS=8 NCCL_MIN_NCHANNELS=8 "
        f"{launcher(out)} {shlex.join(TP2_ARGV)}\n"
    )
    assert not out.exists()


def test_the_dry_run_line_runs_in_a_shell_as_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TP2_ENV:
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "launch.json"
    main(
        [
            "launch",
            "--dry-run",
            "--launcher",
            launcher(out),
            "--device",
            "h100x2",
            "--sglang-version",
            "0.5.23",
            "--",
            "--tp-size",
            "2",
            "--enable-deterministic-inference",
        ]
    )
    line = capsys.readouterr().out.strip()
    # the shell line is data here: split it as sh would and run it without a shell
    words = shlex.split(line)
    assignments = dict(word.split("=", 1) for word in words[:3])
    subprocess.run(words[3:], env=child_environment(**assignments), check=True, timeout=60)
    assert recorded(out) == {"argv": TP2_ARGV, "env": TP2_ENV}


# --- Resolution.popen_args() -------------------------------------------------------------


def tp2_resolution(out: Path) -> Resolution:
    return resolve(
        from_argv(["--tp-size", "2", "--enable-deterministic-inference"], "0.5.23"),
        device="h100x2",
        sglang_version="0.5.23",
        environ={},
        launcher=[sys.executable, str(STANDIN), str(out)],
    )


def test_popen_args_runs_the_launcher_with_the_resolved_env(tmp_path: Path) -> None:
    out = tmp_path / "popen.json"
    base = child_environment(DETARGS_TEST_INHERITED="kept")
    command, env = tp2_resolution(out).popen_args(base_env=base)
    assert command == [sys.executable, str(STANDIN), str(out), *TP2_ARGV]
    subprocess.run(command, env=env, check=True, timeout=60)
    assert recorded(out) == {"argv": TP2_ARGV, "env": {**TP2_ENV, "DETARGS_TEST_INHERITED": "kept"}}
    assert "NCCL_ALGO" not in base  # the base environment is not modified


def test_popen_args_defaults_to_this_processs_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # popen_args() reads the real environment here: set what the stand-in records
    monkeypatch.setenv("DETARGS_TEST_INHERITED", "from-os-environ")
    for name in [name for name in os.environ if name.startswith(_OURS)]:
        if name != "DETARGS_TEST_INHERITED":
            monkeypatch.delenv(name)
    out = tmp_path / "popen.json"
    command, env = tp2_resolution(out).popen_args()
    subprocess.run(command, env=env, check=True, timeout=60)
    assert recorded(out)["env"] == {**TP2_ENV, "DETARGS_TEST_INHERITED": "from-os-environ"}
    assert "NCCL_ALGO" not in os.environ  # resolving and merging never write os.environ


def test_popen_args_resolved_values_win_over_the_base(tmp_path: Path) -> None:
    out = tmp_path / "popen.json"
    _, env = tp2_resolution(out).popen_args(base_env={"NCCL_ALGO": "ring", "PATH": "/bin"})
    assert env == {**TP2_ENV, "PATH": "/bin"}
