"""The ``detargs`` command.

::

    detargs resolve [options] -- <sglang args>   print the final launch (argv, shell or json)
    detargs explain [options] -- <sglang args>   print each decision and why (text or json)
    detargs launch  [options] -- <sglang args>   replace this process with the launcher
    detargs plan    [options] --nnodes N -- <sglang args>
                                                 one launch for every node, as a JSON plan
    detargs launch  --plan FILE [--dry-run|--check-only]
                                                 check this node against the plan, then launch
    detargs detect  [--device D] [--json]        print the GPUs a launch would see
    detargs flags   [--sglang-version V] [FLAG]  list the flags a release takes, or one
                                                 flag's history (FLAG without dashes, or
                                                 after --)
    detargs profiles [--json]                    list the built-in device profiles
    detargs completion {bash,zsh}                print a shell completion script
    detargs check URL [options]                  prove that a running server is
                                                 deterministic (exit 5 if not, 6 if it
                                                 cannot be checked)
    detargs --version

SGLang's own arguments go after ``--`` (SGLang has a ``--device`` flag of its own).
Exit codes: 0 success, 1 the output could not be written, 2 invalid arguments or
conflicts, 3 device detection failure, 4 this node does not match the plan, 5 ``check``:
the server is not deterministic, 6 ``check``: the server could not be checked, 130
interrupted, 141 the reader of the output went away (a closed pipe). Errors are one
paragraph on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from ._output import Output, OutputError, emit, flush_stderr, say, warn_all
from .errors import DetargsError, InvalidArgsError

if TYPE_CHECKING:
    from .resolution import Resolution

__all__ = ["main"]

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for ``cat``, ``grep`` or ``yes`` whose reader left."""
EXIT_OUTPUT_FAILED = 1

_RESOLVING = ("resolve", "explain", "launch")
_TAKES_ENGINE_ARGS = (*_RESOLVING, "plan")
_FORMATS = {
    "resolve": ("argv", "shell", "json"),
    "explain": ("text", "json"),
    "launch": ("shell", "json"),
}
_OWN_OPTIONS = frozenset(
    {
        "--sglang-version",
        "--on-conflict",
        "--model-arch",
        "--gpu-index",
        "--launcher",
        "--format",
        "--dry-run",
        "--nnodes",
        "--node-report",
        "--dist-port",
        "--plan",
    }
)
_SUMMARIES = {
    "resolve": "print the final launch",
    "explain": "print each decision and why",
    "launch": "run the launcher with the resolved argv and env (exec)",
    "plan": "resolve one launch for every node of a multi-node server, as a JSON plan",
    "detect": "print the GPUs a launch would see",
    "flags": "list the flags an SGLang release takes, or one flag's history",
    "profiles": "list the built-in device profiles --device takes",
    "completion": "print a bash or zsh completion script",
    "check": "prove that a running server is deterministic: probe requests, every output "
    "compared bit for bit",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Everything the command writes to stdout goes through one guard: a reader that went
    away (EPIPE) ends the command quietly with 141, any other failed write (a full
    disk, a closed stdout) with one line on stderr and 1. Ctrl-C exits 130 quietly.
    """
    output = Output(sys.stdout)
    stdout = cast(TextIO, output)
    saved = sys.stdout
    sys.stdout = stdout  # argparse's --help and --version write there too
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv), stdout)
        output.flush()
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OutputError as failure:
        output.discard()
        if failure.errno == errno.EPIPE:
            return EXIT_BROKEN_PIPE
        say(
            f"detargs: error: cannot write to standard output: {failure.reason}; "
            "the output is incomplete"
        )
        return EXIT_OUTPUT_FAILED
    finally:
        sys.stdout = saved


def _run(words: list[str], out: TextIO) -> int:
    ours, engine_args = _split(words)
    command = next((word for word in ours if not word.startswith("-")), None)
    parser = _parser(command)
    try:
        options, unknown = parser.parse_known_args(ours)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if unknown:
        say(_unrecognized(options.command, unknown))
        return 2
    if options.command == "flags" and options.flag is None and len(engine_args) == 1:
        # argparse reads "--attention-backend" as an option of its own; after -- it is a name
        options.flag, engine_args = engine_args[0], []
    if engine_args and options.command not in _TAKES_ENGINE_ARGS:
        say(f"detargs: error: 'detargs {options.command}' takes no SGLang arguments after --")
        return 2
    planned = getattr(options, "plan", None) is not None  # the plan holds the engine arguments
    if options.command in _TAKES_ENGINE_ARGS and not engine_args and not planned:
        say(
            f"detargs: error: no SGLang arguments: they go after --, as in: detargs "
            f"{options.command} --device h100 -- --model-path MODEL "
            "--enable-deterministic-inference"
        )
        return 2
    try:
        return _COMMANDS[options.command](options, engine_args, out)
    except DetargsError as error:
        say(f"detargs: error: {error}")
        return error.exit_code


def _split(words: list[str]) -> tuple[list[str], list[str]]:
    if "--" in words:
        at = words.index("--")
        return words[:at], words[at + 1 :]
    return words, []


def _unrecognized(command: str, unknown: list[str]) -> str:
    """The error for words argparse did not take: another command's option, or SGLang's."""
    elsewhere = _options_by_command()
    for word in unknown:
        option = word.partition("=")[0]
        owners = [name for name in elsewhere.get(option, ()) if name != command]
        if owners:
            named = [f"`detargs {name}`" for name in owners]
            where = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
            return (
                f"detargs: error: {option} is an option of {where}, not of `detargs "
                f"{command}`; see `detargs {command} --help`"
            )
    return (
        f"detargs: error: unrecognized arguments: {shlex.join(unknown)}; SGLang's own "
        f"flags go after --, as in: detargs {command} [options] -- "
        f"{shlex.join(unknown)}"
    )


def _options_by_command() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, sub in _subparsers(_parser()).items():
        for action in sub._actions:
            for option in action.option_strings:
                found.setdefault(option, []).append(name)
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in detargs' one-line form."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"detargs: error: {message}; see `{self.prog} --help`\n")


class _Once(argparse.Action):
    """Store a value, and refuse the option given twice: a script that repeats
    ``--device`` has two opinions, and the last one silently winning hides one."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given: dict[str, tuple[str | None, Any]] = namespace.__dict__.setdefault("_given", {})
        if self.dest in given:
            first_option, first = given[self.dest]
            parser.error(
                f"{option_string} is given twice ({first_option} {first}, then "
                f"{option_string} {values}): give it once"
            )
        given[self.dest] = (option_string, values)
        setattr(namespace, self.dest, values)


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with a known command in ``only``, that command's options alone.

    argparse builds a help formatter for every option it adds, so a cold
    ``detargs resolve`` does not pay for the options of the other commands.
    """
    from . import __version__

    def wanted(name: str) -> bool:
        return only not in _COMMANDS or name == only

    parser = _Parser(
        prog="detargs",
        description="Deterministic-inference launch arguments for SGLang.",
        epilog="SGLang's arguments go after --. Exit codes: 0 ok, 1 output not written, "
        "2 invalid arguments or conflicts, 3 device detection failure, 4 this node does not "
        "match the plan, 5 not deterministic (check), 6 could not check, 130 interrupted, "
        "141 output pipe closed.",
    )
    parser.add_argument("--version", action="version", version=f"detargs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str) -> argparse.ArgumentParser:
        summary = _SUMMARIES[name]
        return commands.add_parser(name, help=summary, description=summary)

    for name in _RESOLVING:
        if not wanted(name):
            continue
        command = add(name)
        _resolve_options(command)
        formats = _FORMATS[name]
        helps = {
            "resolve": "argv: the launcher's arguments; shell: a full command line with "
            "env; json: everything",
            "explain": "text: a table; json: the whole resolution, as resolve --format json",
            "launch": "with --dry-run: shell: the command line; json: the whole resolution",
        }
        command.add_argument(
            "--format",
            choices=formats,
            default=None,
            action=_Once,
            help=f"{helps[name]} (default: {formats[0]})",
        )
        if name == "launch":
            command.add_argument(
                "--dry-run", action="store_true", help="print the launch instead of running it"
            )
            _plan_launch_options(command)
    if wanted("plan"):
        command = add("plan")
        _resolve_options(command)
        _plan_options(command)
    if wanted("detect"):
        detect = add("detect")
        detect.add_argument(
            "--device",
            action=_Once,
            help="a profile name (h100, b200x8) or a saved JSON path; default: "
            "DETARGS_DEVICE, then NVML",
        )
        detect.add_argument("--json", action="store_true", help="print DeviceInfo JSON")
    if wanted("flags"):
        flags = add("flags")
        flags.add_argument(
            "--sglang-version", action=_Once, help="default: installed sglang, else newest"
        )
        flags.add_argument(
            "flag",
            nargs="?",
            help="show one flag's history across releases "
            "(in the --sglang-version release, when given), written without "
            "its dashes (cuda-graph-max-bs) or after -- (detargs flags -- "
            "--cuda-graph-max-bs)",
        )
    if wanted("profiles"):
        profiles = add("profiles")
        profiles.add_argument("--json", action="store_true", help="print the profiles as JSON")
    if wanted("completion"):
        completion = add("completion")
        completion.add_argument(
            "shell",
            choices=("bash", "zsh"),
            help="the shell: bash (source it, or put it in "
            "bash_completion.d) or zsh (put it on $fpath as _detargs)",
        )
    if wanted("check"):
        _check_options(add("check"))
    return parser


def _resolve_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--device",
        default=None,
        action=_Once,
        help="a profile (h100, b200x8; see `detargs profiles`), a saved "
        "DeviceInfo JSON path, or 'auto' (default: DETARGS_DEVICE, then NVML)",
    )
    command.add_argument(
        "--sglang-version",
        default=None,
        action=_Once,
        help="the SGLang release that will run (default: the installed "
        "sglang, else the newest catalogued)",
    )
    command.add_argument(
        "--on-conflict",
        choices=("error", "override"),
        default="error",
        action=_Once,
        help="what to do when your flags contradict a rule (default: error)",
    )
    command.add_argument(
        "--model-arch",
        default=None,
        action=_Once,
        help="the model's architecture (e.g. DeepseekV2ForCausalLM) when "
        "--model-path is not a local directory",
    )
    command.add_argument(
        "--gpu-index",
        type=int,
        default=None,
        action=_Once,
        help="the CUDA device the rules key on, on a mixed machine",
    )
    command.add_argument(
        "--launcher",
        default=None,
        action=_Once,
        help="the launcher command (default: 'python -m sglang.launch_server')",
    )


def _plan_options(command: argparse.ArgumentParser) -> None:
    from .plan import DEFAULT_DIST_PORT

    command.add_argument(
        "--nnodes", action=_Once, type=int, required=True, help="how many nodes the launch spans"
    )
    command.add_argument(
        "--node-report",
        action="append",
        default=[],
        metavar="FILE",
        help="a node's `detargs detect --json` report (repeat per node; "
        "they must agree); instead of --device",
    )
    command.add_argument(
        "--dist-port",
        action=_Once,
        type=int,
        default=DEFAULT_DIST_PORT,
        help=f"the port of --dist-init-addr on the leader (default {DEFAULT_DIST_PORT})",
    )
    command.add_argument(
        "-o",
        "--output",
        action=_Once,
        default=None,
        metavar="FILE",
        help="write the plan there (atomically) instead of stdout",
    )


def _plan_launch_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plan",
        action=_Once,
        default=None,
        metavar="FILE",
        help="launch this node's part of a plan from detargs plan",
    )
    command.add_argument(
        "--check-only",
        action="store_true",
        help="with --plan: check this node against the plan and exit",
    )
    command.add_argument(
        "--node-rank",
        action=_Once,
        type=int,
        default=None,
        help="with --plan: this node's rank (default: SLURM_NODEID, LWS_WORKER_INDEX)",
    )
    command.add_argument(
        "--nnodes",
        action=_Once,
        type=int,
        default=None,
        help="with --plan: the node count (default: SLURM_NNODES, LWS_GROUP_SIZE)",
    )
    command.add_argument(
        "--dist-init-addr",
        action=_Once,
        default=None,
        metavar="HOST[:PORT]",
        help="with --plan: the leader (default: the first host of "
        "SLURM_JOB_NODELIST, LWS_LEADER_ADDRESS; port from the plan)",
    )


def _resolution(options: argparse.Namespace, engine_args: list[str]) -> Resolution:
    from .engines import ENGINE
    from .resolution import _resolve_record

    target = ENGINE.target_version(options.sglang_version)
    assumed = list(target.warnings)  # said with an error too: they may explain it
    try:
        try:
            values, notes = ENGINE.read_argv(engine_args, target)
        except InvalidArgsError as error:
            if error.flag in _OWN_OPTIONS:
                raise InvalidArgsError(
                    f"{error.flag} is a detargs option, not an SGLang flag: put it before --, "
                    f"as in: detargs {options.command} {error.flag} ... -- <sglang args>",
                    flag=error.flag,
                ) from None
            raise
        assumed += notes
        launcher = (
            ENGINE.default_launcher if options.launcher is None else _launcher(options.launcher)
        )
        resolution = _resolve_record(
            values,
            target,
            options.on_conflict,
            notes=notes,
            device=options.device,
            model_arch=options.model_arch,
            gpu_index=options.gpu_index,
            launcher=launcher,
        )
    except DetargsError:
        warn_all(assumed)
        raise
    warn_all(resolution.warnings)
    if target.source == "newest":
        say(
            f"detargs: note: resolved for SGLang {target.release}, the newest catalogued "
            "release: no --sglang-version was given and no sglang is installed here; pass "
            "--sglang-version for the release that will run"
        )
    return resolution


def _launcher(text: str) -> tuple[str, ...]:
    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise InvalidArgsError(
            f"--launcher {text!r}: {error}; close or escape the quote", flag="--launcher"
        ) from None
    if not words:
        raise InvalidArgsError(
            "--launcher is empty; give a command such as 'python -m sglang.launch_server'",
            flag="--launcher",
        )
    return words


def _cmd_resolve(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    resolution = _resolution(options, engine_args)
    if options.format == "json":
        emit(resolution.to_json(), out)
    elif options.format == "shell":
        emit(resolution.shell(), out)
    else:
        emit(shlex.join(resolution.argv), out)
        if resolution.env:
            needed = " ".join(f"{name}={value}" for name, value in resolution.env.items())
            say(
                f"detargs: note: this launch also needs the environment {needed}; "
                "--format shell or json includes it"
            )
    return 0


def _cmd_explain(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    resolution = _resolution(options, engine_args)
    if options.format == "json":
        emit(resolution.to_json(), out)
        return 0
    emit(resolution.explain(), out)
    emit(f"launch: {resolution.shell()}", out)
    return 0


def _cmd_plan(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    from .engines import ENGINE
    from .plan import make_plan

    target = ENGINE.target_version(options.sglang_version)
    args, notes = ENGINE.read_argv(engine_args, target)
    warn_all(notes)
    plan = make_plan(
        args,
        nnodes=options.nnodes,
        device=options.device,
        node_reports=options.node_report,
        sglang_version=target,
        on_conflict=options.on_conflict,
        model_arch=options.model_arch,
        gpu_index=options.gpu_index,
        dist_port=options.dist_port,
        launcher=_launcher(options.launcher) if options.launcher else ENGINE.default_launcher,
    )
    warn_all(plan.warnings)
    if options.output is None:
        emit(plan.to_json().rstrip("\n"), out)
    else:
        plan.write(options.output)
        say(f"detargs: plan {plan.fingerprint} for {plan.nnodes} nodes written to {options.output}")
    return 0


def _cmd_launch(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    if options.format is not None and not options.dry_run:
        raise InvalidArgsError(
            f"--format {options.format} is for --dry-run: add --dry-run to "
            "print the launch, or drop --format to run it",
            flag="--format",
        )
    if options.plan is not None:
        return _launch_plan(options, engine_args, out)
    per_node = [
        flag
        for flag, value in (
            ("--check-only", options.check_only or None),
            ("--node-rank", options.node_rank),
            ("--nnodes", options.nnodes),
            ("--dist-init-addr", options.dist_init_addr),
        )
        if value is not None
    ]
    if per_node:
        raise InvalidArgsError(
            f"{per_node[0]} goes with --plan FILE (a plan from detargs "
            "plan); a one-node launch takes none",
            flag=per_node[0],
        )
    resolution = _resolution(options, engine_args)
    if options.dry_run:
        emit(resolution.to_json() if options.format == "json" else resolution.shell(), out)
        return 0
    _exec(*resolution.popen_args(), out)
    return 0  # pragma: no cover - exec does not return


def _launch_plan(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    from .nodes import NodePlacement, node_placement
    from .plan import Plan

    if engine_args:
        raise InvalidArgsError(
            "the plan holds the SGLang arguments: drop what follows --, or "
            "write a new plan with detargs plan",
            flag="--plan",
        )
    for flag, value in (
        ("--sglang-version", options.sglang_version),
        ("--on-conflict", None if options.on_conflict == "error" else 1),
        ("--model-arch", options.model_arch),
        ("--gpu-index", options.gpu_index),
    ):
        if value is not None:
            raise InvalidArgsError(
                f"{flag} was decided when the plan was written; drop it "
                "here, or write a new plan with detargs plan",
                flag=flag,
            )
    plan = Plan.read(options.plan)
    placement = node_placement(
        os.environ,
        node_rank=options.node_rank,
        nnodes=options.nnodes,
        dist_init_addr=options.dist_init_addr,
    )
    if placement is None:
        if plan.nnodes != 1:
            raise InvalidArgsError(
                f"the plan spans {plan.nnodes} nodes, but nothing says which one this is: run "
                "it under srun or a LeaderWorkerSet, or pass --node-rank, --nnodes and "
                "--dist-init-addr",
                flag="--node-rank",
            )
        placement = NodePlacement(rank=0, nnodes=1, leader=None)
    plan.check_node(placement, device=options.device)
    launcher = None if options.launcher is None else _launcher(options.launcher)
    node = plan.launch_for_node(placement, launcher=launcher)
    if options.check_only:
        emit(
            f"detargs: rank {placement.rank} of {placement.nnodes} matches plan {plan.fingerprint}",
            out,
        )
        return 0
    if options.dry_run:
        emit(node.to_json() if options.format == "json" else node.shell(), out)
        return 0
    _exec(*node.popen_args(), out)
    return 0  # pragma: no cover - exec does not return


def _exec(command: list[str], env: dict[str, str], out: TextIO) -> None:
    out.flush()
    flush_stderr()
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:
        raise InvalidArgsError(
            f"cannot run the launcher {command[0]!r}: {error.strerror}; check --launcher",
            flag="--launcher",
        ) from None


def _cmd_detect(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    from .detection import detect

    info = detect(options.device)
    emit(info.to_json(indent=2) if options.json else info.describe(), out)
    warn_all(info.warnings)
    return 0


def _cmd_flags(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    from .engines import ENGINE

    target = ENGINE.target_version(options.sglang_version)
    warn_all(target.warnings)
    if options.flag:
        lines, notes = ENGINE.flag_report(
            options.flag, target.release, pinned=options.sglang_version is not None
        )
        for note in notes:
            say(f"detargs: note: {note}")
    else:
        lines = ENGINE.flag_listing(target.release)
    for line in lines:
        emit(line, out)
    return 0


def _cmd_profiles(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    import json

    from .profiles import MAX_COUNT, PROFILES, profile

    # the kernel target as GpuInfo names it: sm90, or gfx942 for AMD
    targets = {entry.key: profile(entry.key).gpus[0].target for entry in PROFILES}
    if options.json:
        rows = [
            {
                "name": entry.key,
                "aliases": list(entry.aliases),
                "gpu": entry.name,
                "vendor": entry.vendor,
                "capability": str(entry.capability),
                "target": targets[entry.key],
                "arch": entry.arch.value,
                "memory_mib": entry.memory_mib,
                "note": entry.note,
            }
            for entry in PROFILES
        ]
        emit(json.dumps({"profiles": rows, "max_count": MAX_COUNT}, indent=2), out)
        return 0
    header = ("name", "gpu", "capability", "arch", "aliases")
    rows_text = [header] + [
        (
            entry.key,
            entry.name,
            f"{entry.capability} ({targets[entry.key]})",
            entry.arch.value,
            ", ".join(entry.aliases) or "-",
        )
        for entry in PROFILES
    ]
    widths = [max(len(row[column]) for row in rows_text) for column in range(len(header) - 1)]
    for row in rows_text:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        emit("  ".join([*cells, row[-1]]), out)
    emit(
        f"Add xN for N GPUs of one kind, N from 1 to {MAX_COUNT} (h100x8); case, spaces and "
        "a leading 'NVIDIA' are ignored.",
        out,
    )
    return 0


def _cmd_completion(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    from .completion import completion_script

    emit(completion_script(_parser(), options.shell), out)
    return 0


def _check_options(command: argparse.ArgumentParser) -> None:
    from .check.report import PROBES, CheckOptions

    d = CheckOptions()
    command.add_argument("url", help="the server, e.g. http://127.0.0.1:30000")
    command.add_argument(
        "--api",
        action=_Once,
        choices=("auto", "sglang", "openai"),
        default="auto",
        help="SGLang's /generate or OpenAI's /v1/completions (default: auto)",
    )
    command.add_argument(
        "--model",
        action=_Once,
        help="model name for /v1/completions (default: the first of /v1/models)",
    )
    command.add_argument(
        "--probes",
        action=_Once,
        default=",".join(d.probes),
        help=f"comma-separated, of {', '.join(PROBES)} (default: all)",
    )
    for flag, name, kind, meaning in (
        ("--max-new-tokens", "max_new_tokens", int, "tokens generated per request"),
        ("--trials", "trials", int, "trials of the batch and seeded probes"),
        ("--repeats", "repeats", int, "requests of the repeat probe"),
        ("--prompt-words", "prompt_words", int, "length of the probe prompts in words"),
        ("--temperature", "temperature", float, "temperature of the seeded probe"),
        ("--seed", "seed", int, "sampling seed of the seeded probe and prompt generator"),
        ("--timeout", "timeout_s", float, "seconds to wait for one answer"),
    ):
        command.add_argument(
            flag,
            action=_Once,
            dest=name,
            type=kind,
            default=getattr(d, name),
            help=f"{meaning} (default: {getattr(d, name)})",
        )
    command.add_argument(
        "--others",
        action=_Once,
        default=",".join(map(str, d.others)),
        help="how many other prompts go out at once with the probe prompt, "
        "one burst per count (default: %(default)s)",
    )
    command.add_argument("--json", action="store_true", help="print the report as JSON")


def _cmd_check(options: argparse.Namespace, engine_args: list[str], out: TextIO) -> int:
    from . import check

    def words(text: str) -> tuple[str, ...]:
        return tuple(word.strip() for word in text.split(",") if word.strip())

    others = words(options.others)
    if not all(word.isdigit() for word in others):
        raise InvalidArgsError(
            f"--others {options.others!r}: give counts separated by commas, "
            "as in --others 1,3,7,15,31",
            flag="--others",
        )
    names = (
        "max_new_tokens",
        "trials",
        "repeats",
        "prompt_words",
        "temperature",
        "seed",
        "timeout_s",
    )
    try:
        settings = check.options(
            probes=words(options.probes),
            others=tuple(int(word) for word in others),
            **{name: getattr(options, name) for name in names},
        )
    except InvalidArgsError as error:
        # CheckOptions names its fields; here they are options
        field = str(error).removeprefix("check options: ").split(" ", 1)[0]
        flag = "--timeout" if field == "timeout_s" else "--" + field.replace("_", "-")
        raise InvalidArgsError(f"{flag}: {str(error).split(' ', 3)[-1]}", flag=flag) from None
    report = check.check(
        options.url,
        settings,
        api=None if options.api == "auto" else options.api,
        model=options.model,
        progress=None,
    )
    emit(report.to_json() if options.json else report.summary(), out)
    return 0 if report.deterministic else 5


_COMMANDS = {
    "resolve": _cmd_resolve,
    "explain": _cmd_explain,
    "launch": _cmd_launch,
    "plan": _cmd_plan,
    "detect": _cmd_detect,
    "flags": _cmd_flags,
    "profiles": _cmd_profiles,
    "completion": _cmd_completion,
    "check": _cmd_check,
}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
