"""Every example in ``docs/`` and the README runs here or as a doctest.

How examples are written in ``docs/*.md`` (checked by ``test_every_example_is_run``):

- Python: ``>>>`` lines, run by pytest's doctest collection (``--doctest-glob=*.md``).
- A ```` ```python ```` block without ``>>>`` is a test module: put
  ``<!-- pytester: passed=2 -->`` on the line before it; it runs in an inner pytest
  session with the detargs plugin and must end with exactly those outcomes.
- Shell: a ```` ```console ```` block of ``$ detargs …`` commands, each followed by what
  it prints (stdout, then stderr). A trailing ``\\`` continues the command line; a
  trailing ``# exit N`` is the expected exit code (default 0); an output line ``...``
  matches any number of lines. Commands run in-process through ``detargs.cli.main``.
- Code that cannot run (SGLang's own, before migration) is preceded by
  ``<!-- not run: <why> -->``.
- Code another test runs against a real component (an ``sbatch`` script on the local SLURM
  cluster) is preceded by ``<!-- run by: tests/<file>.py -->``, and that file reads the page.

Shell examples run in one directory per page, in order (a plan one example writes is what
the next one launches), with ``gpu-02`` as this machine's host name and SGLang 0.5.23 seen
as installed.

``docs/rules.md`` must equal what ``detargs.sglang._reference`` generates.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import socket
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from detargs.cli import _parser, main
from detargs.sglang import _reference
from detargs.sglang._argv_read import read_values
from detargs.sglang.version import target_version

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*(pytester|not run|run by)\s*:?\s*(.*?)\s*-->\s*$")
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
PLUGIN = (
    ()
    if [ep for ep in entry_points(group="pytest11") if ep.name == "detargs"]
    else ("-p", "detargs.pytest_plugin")
)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    text: str
    marker: tuple[str, str] | None

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass(frozen=True)
class ShellExample:
    block: Block
    command: str
    expected: tuple[str, ...]
    exit_code: int


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        found.append(
            Block(
                path=path,
                line=text.count("\n", 0, match.start()) + 1,
                language=match.group(1),
                text=match.group(2),
                marker=(marker.group(1), marker.group(2)) if marker else None,
            )
        )
    return found


def doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def shell_examples(block: Block) -> list[ShellExample]:
    examples: list[ShellExample] = []
    lines = block.text.splitlines()
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.startswith("$ "):
            raise AssertionError(f"{block.id}: output before any $ command: {line!r}")
        command = line[2:]
        while command.endswith("\\"):
            position += 1
            command = command[:-1] + lines[position].strip()
        position += 1
        output = []
        while position < len(lines) and not lines[position].startswith("$ "):
            output.append(lines[position])
            position += 1
        code = EXIT.search(command)
        examples.append(
            ShellExample(block, command, tuple(output), int(code.group(1)) if code else 0)
        )
    return examples


def all_shell_examples() -> list[ShellExample]:
    return [
        example
        for path in doc_files()
        for block in blocks(path)
        if block.language == "console"
        for example in shell_examples(block)
    ]


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[skip:]) for skip in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


def run_cli(words: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(words)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def page_directories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # examples name their device and release; the CLI still reads these from the environment
    for name in (
        "DETARGS_DEVICE",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_ALGO",
        "NCCL_MIN_NCHANNELS",
        "NCCL_MAX_NCHANNELS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps --help to the terminal's width


# --- shell examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(example, id=f"{example.block.id}:{example.command.split(' --')[0]}")
        for example in all_shell_examples()
    ],
)
def test_shell_example(
    example: ShellExample, page_directories: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = page_directories / example.block.path.stem
    directory.mkdir(exist_ok=True)
    monkeypatch.chdir(directory)
    monkeypatch.setattr(socket, "gethostname", lambda: "gpu-02")
    site = page_directories / "site-packages"
    info = site / "sglang-0.5.23.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sglang\nVersion: 0.5.23\n\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))
    command = example.command
    while (assignment := re.match(r"([A-Z_][A-Z0-9_]*)=(\S*) +", command)) is not None:
        monkeypatch.setenv(assignment.group(1), assignment.group(2))  # VAR=value detargs ...
        command = command[assignment.end() :]
    words = shlex.split(command, comments=True)
    assert words[0] == "detargs", f"{example.block.id}: only detargs commands run here"
    code, output = run_cli(words[1:])
    assert code == example.exit_code, output
    actual = output.rstrip("\n").split("\n") if output else []
    assert matches(example.expected, actual), "\n".join(
        [
            f"{example.block.id}: $ {example.command}",
            "expected:",
            *example.expected,
            "got:",
            *actual,
        ]
    )


# --- fenced blocks -----------------------------------------------------------------------


def test_every_example_is_run() -> None:
    problems = []
    for path in doc_files():
        for block in blocks(path):
            if block.marker is not None:
                kind, detail = block.marker
                if kind == "not run" and not detail:
                    problems.append(f"{block.id}: say why it is not run")
                runner = ROOT / detail
                if kind == "run by" and (
                    not runner.is_file() or path.name not in runner.read_text(encoding="utf-8")
                ):
                    problems.append(f"{block.id}: {detail} does not exist or read {path.name}")
                continue
            if block.language == "python" and ">>>" not in block.text:
                problems.append(f"{block.id}: a python block needs >>> or a pytester marker")
            elif block.language in ("sh", "shell", "bash", "shell-session"):
                problems.append(f"{block.id}: write shell examples as ```console with $ lines")
    assert problems == []


def test_there_are_shell_examples_for_every_command() -> None:
    commands = {shlex.split(example.command)[1] for example in all_shell_examples()}
    assert commands >= {
        "resolve",
        "explain",
        "launch",
        "detect",
        "flags",
        "profiles",
        "completion",
        "plan",
    }


def pytester_blocks() -> list[Block]:
    return [
        block
        for path in doc_files()
        for block in blocks(path)
        if block.marker is not None and block.marker[0] == "pytester"
    ]


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in pytester_blocks()])
def test_pytester_example(block: Block, pytester: pytest.Pytester) -> None:
    assert block.marker is not None
    expected = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", block.marker[1])}
    assert expected, f"{block.id}: write the outcomes, e.g. <!-- pytester: passed=2 -->"
    pytester.makepyfile(block.text)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *PLUGIN)
    result.assert_outcomes(**expected)


# --- generated and checked documents -----------------------------------------------------


def test_rules_reference_is_generated() -> None:
    generated = _reference.rules_markdown()
    current = (DOCS / "rules.md").read_text(encoding="utf-8")
    assert current == generated, (
        "docs/rules.md is out of date: "
        "run python -m detargs.sglang._reference --write docs/rules.md"
    )


def test_reference_check_mode(tmp_path: Path) -> None:
    stale = tmp_path / "rules.md"
    stale.write_text("# stale\n", encoding="utf-8")
    assert _reference.main(["--check", str(stale)]) == 1
    assert _reference.main(["--write", str(stale)]) == 0
    assert _reference.main(["--check", str(stale)]) == 0


def test_rules_reference_has_every_rule_and_release() -> None:
    from detargs.sglang.catalogue import releases
    from detargs.sglang.rules import RULES

    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    for number, rule in enumerate(RULES, start=1):
        assert f"### {number}. `{rule.__name__}`" in text
    table = text.split("## Per release", 1)[1].split("\n## ", 1)[0]
    spans = [
        line.split(" | ")[0].removeprefix("| ")
        for line in table.splitlines()
        if line.startswith("| 0.")
    ]
    covered: list[str] = []
    for span in spans:
        first, _, last = span.partition("–")
        names = releases()
        covered += names[names.index(first) : names.index(last or first) + 1]
    assert covered == list(releases())


def test_a_rule_without_a_summary_fails_the_generator() -> None:
    def undocumented_rule() -> None:
        pass

    with pytest.raises(LookupError, match="undocumented_rule has no docstring"):
        _reference._summary(undocumented_rule)


# --- the README ----------------------------------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    return [block.text for block in blocks(README) if block.language == language]


def test_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # the README resolves for the GPU at hand; here DETARGS_DEVICE stands in for it
    monkeypatch.setenv("DETARGS_DEVICE", "h100")
    [code] = readme_blocks("python")
    out = io.StringIO()
    namespace: dict[str, object] = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)
    assert out.getvalue().startswith("SGLang ")
    assert "attention_backend = fa3" in out.getvalue()
    command, env = namespace["command"], namespace["env"]
    assert isinstance(command, list)
    assert command[:3] == ["python", "-m", "sglang.launch_server"]
    assert isinstance(env, dict)


def readme_commands() -> list[list[str]]:
    commands = []
    for text in readme_blocks("sh"):
        for line in text.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words:
                    commands.append(words)
    return commands


def test_readme_shell_commands_parse() -> None:
    commands = readme_commands()
    detargs_commands = [words for words in commands if words[0] == "detargs"]
    assert len(detargs_commands) == 5  # tests/test_new_user.py runs them without a GPU
    assert ["pip", "install", "-q", "-e", ".[test]"] in commands
    assert ["python", "-m", "pytest", "-q"] in commands
    for words in detargs_commands:
        ours, sglang = words[1:], []
        if "--" in ours:
            at = ours.index("--")
            ours, sglang = ours[:at], ours[at + 1 :]
        options = _parser().parse_args(ours)
        version = getattr(options, "sglang_version", None)
        read_values(sglang, target_version(version))


def test_readme_first_command_runs_without_a_gpu() -> None:
    first = next(words for words in readme_commands() if words[0] == "detargs")
    code, output = run_cli([first[1], "--sglang-version", "0.5.23", *first[2:]])
    assert code == 0
    assert output == (
        "--model-path meta-llama/Llama-3.1-8B-Instruct --attention-backend fa3 "
        "--sampling-backend pytorch --enable-deterministic-inference "
        "--cuda-graph-backend-prefill disabled\n"
    )
