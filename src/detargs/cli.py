"""The ``detargs`` command.

::

    detargs resolve [options] -- <sglang args>   print the final launch (argv, shell or json)
    detargs explain [options] -- <sglang args>   print each decision and why
    detargs launch  [options] -- <sglang args>   replace this process with the launcher
    detargs detect  [--device D] [--json]        print the GPUs a launch would see
    detargs flags   [--sglang-version V] [FLAG]  list the flags a release takes, or one
                                                 flag's history (FLAG without dashes, or
                                                 after --)
    detargs check URL [options]                  prove that a running server is
                                                 deterministic (exit 5 if not, 6 if it
                                                 cannot be checked)

SGLang's own arguments go after ``--`` (SGLang has a ``--device`` flag of its own).
Exit codes: 0 success, 2 invalid arguments or conflicts, 3 device detection failure,
5 ``check``: the server is not deterministic, 6 ``check``: the server could not be checked.
Errors are one paragraph on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from .errors import DetargsError, DetargsWarning, InvalidArgsError

if TYPE_CHECKING:
    from .resolution import Resolution

__all__ = ["main"]

_FORMATS = ("argv", "shell", "json")
_OWN_OPTIONS = frozenset(
    {"--sglang-version", "--on-conflict", "--model-arch", "--gpu-index", "--launcher",
     "--format", "--dry-run"}
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    ours, sglang = _split(words)
    parser = _parser(ours[0] if ours else None)
    try:
        options, unknown = parser.parse_known_args(ours)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if unknown:
        print(f"detargs: error: unrecognized arguments: {shlex.join(unknown)}; SGLang's own "
              f"flags go after --, as in: detargs {options.command} [options] -- "
              f"{shlex.join(unknown)}", file=sys.stderr)  # fmt: skip
        return 2
    if options.command == "flags" and options.flag is None and len(sglang) == 1:
        # argparse reads "--attention-backend" as an option of its own; after -- it is a name
        options.flag, sglang = sglang[0], []
    if sglang and options.command not in ("resolve", "explain", "launch"):
        print(f"detargs: error: 'detargs {options.command}' takes no SGLang arguments after --",
              file=sys.stderr)
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DetargsWarning)
        try:
            code = _COMMANDS[options.command](options, sglang, sys.stdout)
        except DetargsError as error:
            _report(caught, sys.stderr)
            print(f"detargs: error: {error}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt:
            return 130
    _report(caught, sys.stderr)
    return code


def _split(words: list[str]) -> tuple[list[str], list[str]]:
    if "--" in words:
        at = words.index("--")
        return words[:at], words[at + 1 :]
    return words, []


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in detargs' one-line form."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"detargs: error: {message}; see `{self.prog} --help`\n")


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with a known command in ``only``, that command's options alone.

    argparse builds a help formatter for every option it adds, so a cold
    ``detargs resolve`` does not pay for the options of the other commands.
    """
    def wanted(name: str) -> bool:
        return only not in _COMMANDS or name == only

    parser = _Parser(
        prog="detargs",
        description="Deterministic-inference launch arguments for SGLang.",
        epilog="SGLang's arguments go after --. Exit codes: 0 ok, 2 invalid arguments or "
        "conflicts, 3 device detection failure, 5 not deterministic (check), 6 could not "
        "check.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in (
        ("resolve", "print the final launch"),
        ("explain", "print each decision and why"),
        ("launch", "run the launcher with the resolved argv and env (exec)"),
    ):
        if not wanted(name):
            continue
        command = commands.add_parser(name, help=summary, description=summary)
        _resolve_options(command)
        if name == "resolve":
            command.add_argument("--format", choices=_FORMATS, default="argv",
                                 help="argv: the launcher's arguments; shell: a full command "
                                 "line with env; json: everything (default: argv)")
        if name == "launch":
            command.add_argument("--dry-run", action="store_true",
                                 help="print the command line instead of running it")
    if wanted("detect"):
        detect = commands.add_parser("detect", help="print the GPUs a launch would see")
        detect.add_argument("--device", help="a profile name (h100, b200x8) or a saved JSON "
                            "path; default: DETARGS_DEVICE, then NVML")
        detect.add_argument("--json", action="store_true", help="print DeviceInfo JSON")
    if wanted("flags"):
        flags = commands.add_parser("flags", help="list the flags an SGLang release takes")
        flags.add_argument("--sglang-version", help="default: installed sglang, else newest")
        flags.add_argument("flag", nargs="?", help="show one flag's history across releases, "
                           "written without its dashes (cuda-graph-max-bs) or after -- "
                           "(detargs flags -- --cuda-graph-max-bs)")
    if wanted("check"):
        _check_options(commands.add_parser(
            "check", help="prove that a running server is deterministic",
            description="Send probe requests to a running SGLang or OpenAI-compatible server "
            "and compare every output bit for bit. Exit 0 deterministic, 5 not deterministic, "
            "6 could not check."))  # fmt: skip
    return parser


def _resolve_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--device", default=None,
                         help="a profile (h100, b200x8), a saved DeviceInfo JSON path, or "
                         "'auto' (default: DETARGS_DEVICE, then NVML)")
    command.add_argument("--sglang-version", default=None,
                         help="the SGLang release that will run (default: the installed "
                         "sglang, else the newest catalogued)")
    command.add_argument("--on-conflict", choices=("error", "override"), default="error",
                         help="what to do when your flags contradict a rule (default: error)")
    command.add_argument("--model-arch", default=None,
                         help="the model's architecture (e.g. DeepseekV2ForCausalLM) when "
                         "--model-path is not a local directory")
    command.add_argument("--gpu-index", type=int, default=None,
                         help="the CUDA device the rules key on, on a mixed machine")
    command.add_argument("--launcher", default=None,
                         help="the launcher command (default: 'python -m sglang.launch_server')")


def _resolution(options: argparse.Namespace, sglang: list[str]) -> Resolution:
    from .argv import read_argv
    from .resolution import DEFAULT_LAUNCHER, resolve
    from .version import target_version

    target = target_version(options.sglang_version)
    _warn_all(target.warnings)
    try:
        args, notes = read_argv(sglang, target)
    except InvalidArgsError as error:
        if error.flag in _OWN_OPTIONS:
            raise InvalidArgsError(
                f"{error.flag} is a detargs option, not an SGLang flag: put it before --, "
                f"as in: detargs {options.command} {error.flag} ... -- <sglang args>",
                flag=error.flag,
            ) from None
        raise
    _warn_all(notes)
    launcher = DEFAULT_LAUNCHER if options.launcher is None else _launcher(options.launcher)
    resolution = resolve(
        args,
        device=options.device,
        sglang_version=target,
        on_conflict=options.on_conflict,
        model_arch=options.model_arch,
        gpu_index=options.gpu_index,
        launcher=launcher,
    )
    _warn_all([text for text in resolution.warnings if text not in target.warnings])
    return resolution


def _launcher(text: str) -> tuple[str, ...]:
    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise InvalidArgsError(
            f"--launcher {text!r}: {error}; close or escape the quote", flag="--launcher"
        ) from None
    if not words:
        raise InvalidArgsError("--launcher is empty; give a command such as "
                               "'python -m sglang.launch_server'", flag="--launcher")
    return words


def _cmd_resolve(options: argparse.Namespace, sglang: list[str], out: TextIO) -> int:
    resolution = _resolution(options, sglang)
    if options.format == "json":
        _emit(resolution.to_json(), out)
    elif options.format == "shell":
        _emit(resolution.shell(), out)
    else:
        _emit(shlex.join(resolution.argv), out)
        if resolution.env:
            needed = " ".join(f"{name}={value}" for name, value in resolution.env.items())
            print(f"detargs: note: this launch also needs the environment {needed}; "
                  "--format shell or json includes it", file=sys.stderr)  # fmt: skip
    return 0


def _cmd_explain(options: argparse.Namespace, sglang: list[str], out: TextIO) -> int:
    resolution = _resolution(options, sglang)
    _emit(resolution.explain(), out)
    _emit(f"launch: {resolution.shell()}", out)
    return 0


def _cmd_launch(options: argparse.Namespace, sglang: list[str], out: TextIO) -> int:
    resolution = _resolution(options, sglang)
    if options.dry_run:
        _emit(resolution.shell(), out)
        return 0
    command, env = resolution.popen_args()
    out.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:

        raise InvalidArgsError(
            f"cannot run the launcher {command[0]!r}: {error.strerror}; check --launcher",
            flag="--launcher",
        ) from None
    return 0  # pragma: no cover - exec does not return


def _cmd_detect(options: argparse.Namespace, sglang: list[str], out: TextIO) -> int:
    from .detection import detect

    info = detect(options.device)
    _emit(info.to_json(indent=2) if options.json else info.describe(), out)
    return 0


def _cmd_flags(options: argparse.Namespace, sglang: list[str], out: TextIO) -> int:
    from .catalogue import catalogue_for, flag_history
    from .version import target_version

    target = target_version(options.sglang_version)
    _warn_all(target.warnings)
    if options.flag:
        name = options.flag if options.flag.startswith("-") else f"--{options.flag}"
        history = flag_history(name)
        if not history:
            raise InvalidArgsError(f"{name} is in no catalogued SGLang release", flag=name)
        for flag in history:
            choices = f" choices={','.join(flag.choices)}" if flag.choices else ""
            moved = f" -> {flag.replaced_by}" if flag.replaced_by else ""
            _emit(f"{flag.span():<28} {flag.kind:<12} dest={flag.dest}{choices}{moved}", out)
        return 0
    for flag in sorted(catalogue_for(target.release).flags, key=lambda flag: flag.name):
        kind = flag.kind if not flag.type else f"{flag.kind}:{flag.type}"
        _emit(f"{' '.join(flag.options):<56} {kind}", out)
    return 0


def _check_options(command: argparse.ArgumentParser) -> None:
    from .check.report import PROBES, CheckOptions

    d = CheckOptions()
    command.add_argument("url", help="the server, e.g. http://127.0.0.1:30000")
    command.add_argument("--api", choices=("auto", "sglang", "openai"), default="auto",
                         help="SGLang's /generate or OpenAI's /v1/completions (default: auto)")
    command.add_argument("--model", help="model name for /v1/completions (default: the "
                         "first of /v1/models)")
    command.add_argument("--probes", default=",".join(d.probes),
                         help=f"comma-separated, of {', '.join(PROBES)} (default: all)")
    for flag, name, kind, meaning in (
        ("--max-new-tokens", "max_new_tokens", int, "tokens generated per request"),
        ("--trials", "trials", int, "trials of the batch and seeded probes"),
        ("--repeats", "repeats", int, "requests of the repeat probe"),
        ("--prompt-words", "prompt_words", int, "length of the probe prompts in words"),
        ("--temperature", "temperature", float, "temperature of the seeded probe"),
        ("--seed", "seed", int, "sampling seed of the seeded probe and prompt generator"),
        ("--timeout", "timeout_s", float, "seconds to wait for one answer"),
    ):
        command.add_argument(flag, dest=name, type=kind, default=getattr(d, name),
                             help=f"{meaning} (default: {getattr(d, name)})")
    command.add_argument("--others", default=",".join(map(str, d.others)),
                         help="how many other prompts go out at once with the probe prompt, "
                         "one burst per count (default: %(default)s)")
    command.add_argument("--json", action="store_true", help="print the report as JSON")


def _cmd_check(options: argparse.Namespace, sglang: list[str], out: TextIO) -> int:
    from . import check

    def words(text: str) -> tuple[str, ...]:
        return tuple(word.strip() for word in text.split(",") if word.strip())

    others = words(options.others)
    if not all(word.isdigit() for word in others):
        raise InvalidArgsError(f"--others {options.others!r}: give counts separated by commas, "
                               "as in --others 1,3,7,15,31", flag="--others")  # fmt: skip
    names = ("max_new_tokens", "trials", "repeats", "prompt_words", "temperature", "seed",
             "timeout_s")  # fmt: skip
    try:
        settings = check.options(probes=words(options.probes),
                                 others=tuple(int(word) for word in others),
                                 **{name: getattr(options, name) for name in names})  # fmt: skip
    except InvalidArgsError as error:
        # CheckOptions names its fields; here they are options
        field = str(error).removeprefix("check options: ").split(" ", 1)[0]
        flag = "--timeout" if field == "timeout_s" else "--" + field.replace("_", "-")
        raise InvalidArgsError(f"{flag}: {str(error).split(' ', 3)[-1]}", flag=flag) from None
    report = check.check(options.url, settings, api=None if options.api == "auto" else options.api,
                         model=options.model, progress=None)  # fmt: skip
    _emit(report.to_json() if options.json else report.summary(), out)
    return 0 if report.deterministic else 5


def _emit(text: str, out: TextIO) -> None:
    """Print ``text``; words that came in as undecodable bytes go out as the same bytes."""
    try:
        print(text, file=out)
        return
    except UnicodeEncodeError:
        pass
    buffer = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        data = (text + "\n").encode(encoding, "surrogateescape")
    except UnicodeEncodeError:
        raise InvalidArgsError(
            f"the output cannot be written in this terminal's encoding ({encoding}); set "
            "PYTHONIOENCODING=utf-8 (or a UTF-8 locale) and run it again"
        ) from None
    if buffer is None:
        print(data.decode(encoding, "backslashreplace"), end="", file=out)
        return
    out.flush()
    buffer.write(data)
    buffer.flush()


def _warn_all(texts: Sequence[str]) -> None:
    for text in texts:
        print(f"detargs: warning: {text}", file=sys.stderr)


def _report(caught: list[warnings.WarningMessage], err: TextIO) -> None:
    for item in caught:
        print(f"detargs: warning: {item.message}", file=err)


_COMMANDS = {
    "resolve": _cmd_resolve,
    "explain": _cmd_explain,
    "launch": _cmd_launch,
    "detect": _cmd_detect,
    "flags": _cmd_flags,
    "check": _cmd_check,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
