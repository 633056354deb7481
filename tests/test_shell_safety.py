"""``--format shell`` and ``Resolution.shell()`` survive hostile values.

Every line detargs prints for a shell is run through ``sh -c`` with a stand-in
launcher that prints the argv and environment it received; they must be exactly the
argv and env detargs resolved, for values full of quotes, ``$(...)``, backticks,
newlines, globs, leading dashes and non-ASCII, in ``--model-path``, ``--host``, a
passthrough string flag and the launcher's own path.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from detargs.cli import main
from detargs.errors import DetargsWarning
from detargs.resolution import Resolution, resolve
from detargs.sglang.argv import from_argv

RELEASE = "0.5.23"
SH = shutil.which("sh")
ENV_NAMES = ("NCCL_ALGO", "NCCL_MIN_NCHANNELS", "NCCL_MAX_NCHANNELS", "DETARGS_PROBE")

STANDIN = f"""\
import json, os, sys
names = {ENV_NAMES!r}
print(json.dumps({{"argv": sys.argv[1:],
                   "env": {{n: os.environ[n] for n in names if n in os.environ}}}}))
"""

HOSTILE = [
    pytest.param("with space", id="space"),
    pytest.param("it's", id="single-quote"),
    pytest.param('say "hi"', id="double-quote"),
    pytest.param("back\\slash\\", id="backslash"),
    pytest.param("line\nbreak\n", id="newline"),
    pytest.param("$(touch pwned)", id="command-substitution"),
    pytest.param("`touch pwned`", id="backticks"),
    pytest.param("a; touch pwned", id="semicolon"),
    pytest.param("a | cat", id="pipe"),
    pytest.param("a && touch pwned &", id="ampersand"),
    pytest.param("*", id="glob"),
    pytest.param("~root", id="tilde"),
    pytest.param("$HOME ${IFS} $1", id="expansion"),
    pytest.param("-leading-dash", id="leading-dash"),
    pytest.param("--enable-deterministic-inference", id="looks-like-a-flag"),
    pytest.param("caf\u00e9 \u65e5\u672c \U0001f600", id="non-ascii"),
    pytest.param("", id="empty"),
    pytest.param("'\"'\"'", id="quote-soup"),
    pytest.param("\t\r\x1b[31m", id="control-chars"),
    pytest.param("a=b", id="equals"),
    pytest.param("#comment", id="hash"),
    pytest.param("!bang", id="bang"),
]

pytestmark = pytest.mark.skipif(SH is None, reason="needs a POSIX sh")


@pytest.fixture
def launcher(tmp_path: Path) -> tuple[str, ...]:
    """The stand-in, in a directory whose name is hostile too."""
    directory = tmp_path / "dir with 'quote' $(x) `y` ; &"
    directory.mkdir()
    script = directory / "stand in.py"
    script.write_text(STANDIN, encoding="utf-8")
    return (sys.executable, str(script))


def run_sh(line: str, cwd: Path) -> dict[str, Any]:
    assert SH is not None
    done = subprocess.run(
        [SH, "-c", line], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def hostile_args(value: str) -> list[str]:
    # --flag=value: the only way SGLang's parser takes a value that starts with '-'
    return [
        f"--model-path={value}",
        f"--host={value}",
        f"--served-model-name={value}",
        "--enable-deterministic-inference",
        "--tp-size",
        "2",
    ]


def resolved(value: str, launcher: tuple[str, ...]) -> Resolution:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetargsWarning)
        args = from_argv(hostile_args(value), RELEASE)
        return resolve(args, "h100x2", RELEASE, environ={}, launcher=launcher)


@pytest.mark.parametrize("value", HOSTILE)
def test_resolution_shell_reproduces_argv_and_env(
    value: str, launcher: tuple[str, ...], tmp_path: Path
) -> None:
    launch = resolved(value, launcher)
    assert launch.env  # --tp-size 2 decides NCCL variables: the env prefix is exercised
    seen = run_sh(launch.shell(), tmp_path)
    assert seen == {"argv": list(launch.argv), "env": dict(launch.env)}
    assert value in seen["argv"] or f"--model-path={value}" in seen["argv"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_env_values_are_quoted(
    value: str, launcher: tuple[str, ...], tmp_path: Path
) -> None:
    launch = dataclasses.replace(resolved("m", launcher), env={"DETARGS_PROBE": value})
    seen = run_sh(launch.shell(), tmp_path)
    assert seen["env"] == {"DETARGS_PROBE": value}
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("value", HOSTILE)
def test_cli_shell_format_reproduces_the_json_format(
    value: str, launcher: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--device", "h100x2", "--sglang-version", RELEASE, "--launcher", shlex.join(launcher)]
    assert main(["resolve", "--format", "json", *common, "--", *hostile_args(value)]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert main(["resolve", "--format", "shell", *common, "--", *hostile_args(value)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n")
    seen = run_sh(out[:-1], tmp_path)  # only print()'s newline: a value may end in one
    assert seen == {"argv": expected["argv"], "env": expected["env"]}
    assert expected["command"][: len(launcher)] == list(launcher)
    assert not (tmp_path / "pwned").exists()


def test_cli_launch_dry_run_is_the_same_line(
    launcher: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = "$(touch pwned) 'x'"
    common = [
        "--device",
        "h100x2",
        "--sglang-version",
        RELEASE,
        "--launcher",
        shlex.join(launcher),
        "--",
        *hostile_args(value),
    ]
    assert main(["launch", "--dry-run", *common]) == 0
    dry = capsys.readouterr().out
    assert main(["resolve", "--format", "shell", *common]) == 0
    assert capsys.readouterr().out == dry
    assert run_sh(dry[:-1], tmp_path)["argv"] == list(resolved(value, launcher).argv)


SRC = Path(__file__).resolve().parents[1] / "src"
UNSAFE = re.compile(r"shell\s*=\s*True|\bos\.system\s*\(|\bos\.popen\s*\(|\bcommands\.getoutput")


def test_src_never_runs_a_shell() -> None:
    sources = sorted(SRC.rglob("*.py"))
    assert sources, f"no sources under {SRC}"
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if UNSAFE.search(line)
    ]
    assert found == []
