"""``docs/errors.md`` documents every error class with an example that really runs.

Its ``>>>`` examples are doctests (also collected by ``--doctest-glob=*.md`` when
``docs/`` is collected); its ``console`` examples are run here through
``detargs.cli.main`` and must print exactly what the page shows, with the exit code the
page gives (``# exit N``, default 0).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
from pathlib import Path

import pytest

from detargs import errors
from detargs.cli import main

PAGE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
CLASSES = [name for name in errors.__all__ if name != "Conflict"]


def _text() -> str:
    return PAGE.read_text(encoding="utf-8")


def _sections() -> dict[str, str]:
    parts = re.split(r"^## `(\w+)`.*$", _text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _console_examples() -> list[tuple[str, int, list[str]]]:
    examples: list[tuple[str, int, list[str]]] = []
    for language, body in FENCE.findall(_text()):
        if language != "console":
            continue
        for chunk in re.split(r"^(?=\$ )", body, flags=re.MULTILINE):
            if not chunk.strip():
                continue
            command, *output = chunk.rstrip("\n").split("\n")
            code = EXIT.search(command)
            examples.append((command[2:], int(code.group(1)) if code else 0, output))
    return examples


@pytest.fixture(autouse=True)
def _no_device_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DETARGS_DEVICE",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_ALGO",
        "NCCL_MIN_NCHANNELS",
        "NCCL_MAX_NCHANNELS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", CLASSES)
def test_every_error_class_has_a_section_with_its_exit_code(name: str) -> None:
    sections = _sections()
    assert name in sections, f"docs/errors.md has no section for {name}"
    cls = getattr(errors, name)
    code = 0 if name == "DetargsWarning" else cls.exit_code
    heading = re.search(rf"^## `{name}` \(exit (\d+)\)$", _text(), flags=re.MULTILINE)
    assert heading is not None
    assert int(heading.group(1)) == code
    body = sections[name]
    if name not in ("DetargsError", "DeviceError"):
        assert "**When:**" in body
        assert "**Message shape:**" in body
    assert "```console\n$ detargs" in body or ">>> " in body, f"{name}: no executed example"


def test_the_table_gives_every_exit_code() -> None:
    text = _text()
    for name in CLASSES:
        if name in ("DetargsError", "DeviceError"):
            continue
        row = re.search(rf"^\| `{name}` \| (\d+)", text, flags=re.MULTILINE)
        assert row is not None, name
        expected = 0 if name == "DetargsWarning" else getattr(errors, name).exit_code
        assert int(row.group(1)) == expected


@pytest.mark.parametrize(
    ("command", "code", "output"),
    [
        pytest.param(*example, id=example[0].split(" --")[0] + f"-{number}")
        for number, example in enumerate(_console_examples())
    ],
)
def test_console_example(command: str, code: int, output: list[str]) -> None:
    words = shlex.split(command, comments=True)
    assert words[0] == "detargs"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        got = main(words[1:])
    printed = (out.getvalue() + err.getvalue()).rstrip("\n").split("\n")
    assert (got, printed) == (code, output)
    if code:
        assert printed[0].startswith("detargs: error: ")


def test_console_examples_cover_both_exit_codes() -> None:
    assert {code for _, code, _ in _console_examples()} == {0, 2, 3, 6}


def test_the_doctests_pass() -> None:
    failures, tried = doctest.testfile(
        str(PAGE), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert tried >= 10
    assert failures == 0
