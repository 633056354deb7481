"""Properties of the public API over random input, valid and corrupted.

Argvs are built from each release's flag catalogue and then corrupted (unknown flags,
truncated values, wrong types, unicode, empty strings, duplicates, ``--flag=value``);
environments, devices (profiles and ``FakeNvml`` with injected NVML errors) and target
versions (catalogued, uncatalogued, garbage) are random too.

Hypothesis profiles live in ``conftest.py``: the default ``ci`` profile is fast; run
``pytest tests/test_properties.py --hypothesis-profile=long`` for 10,000 cases of
the main property.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from detargs.cli import main
from detargs.detection import detect
from detargs.device import DeviceInfo
from detargs.errors import DetargsError, DetargsWarning, InvalidArgsError
from detargs.profiles import profile_names
from detargs.resolution import Resolution, _resolve_record, resolve
from detargs.sglang._argv_read import read_values
from detargs.sglang.args import ServerArgs
from detargs.sglang.argv import from_argv, to_argv
from detargs.sglang.catalogue import Catalogue, Flag, catalogue_for, releases
from detargs.sglang.version import TargetVersion, target_version
from detargs.testing import NVML_ERROR_CODES, FakeNvml

RELEASES = releases()
PROFILES = profile_names()
NEWEST = RELEASES[-1]

# --- strategies ----------------------------------------------------------------------

_UNICODE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_PLAIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_./:-", min_size=1, max_size=12)


def _text_value() -> st.SearchStrategy[str]:
    return st.one_of(_PLAIN, _UNICODE, st.just(""), st.sampled_from(["a b", "-x", "$(id)", "'\""]))


def _raw_value(flag: Flag, catalogue: Catalogue) -> st.SearchStrategy[str]:
    """One value a release's parser accepts for ``flag`` (and detargs' ServerArgs too).

    A deprecated alias without choices takes the choices of the flag it forwards to,
    which detargs checks (see
    test_a_deprecated_alias_value_outside_the_successors_choices_round_trips).
    """
    primary = catalogue.primary(flag.dest)
    choices = flag.choices if primary is None or primary.choices is None else primary.choices
    if choices is not None:
        return st.sampled_from(choices)
    if flag.type == "int":
        return st.integers(1, 4096).map(str)
    if flag.type == "float":
        return st.floats(0.05, 0.95, allow_nan=False).map(lambda value: f"{value:.3f}")
    if flag.type == "json":
        return st.sampled_from(['{"a": 1}', "[]", "3", '"x"', "null"])
    return _text_value()


def _written(flag: Flag, option: str, values: list[str]) -> list[str]:
    """``option values...``, or ``option=value`` where a value would read as a flag."""
    if len(values) == 1 and (values[0].startswith("-") or values[0] == ""):
        return [f"{option}={values[0]}"]
    return [option, *values]


@st.composite
def flag_tokens(draw: st.DrawFn, release: str) -> list[str]:
    """The argv words for one flag of ``release``, as a user could write them."""
    catalogue = catalogue_for(release)
    flag = draw(st.sampled_from(catalogue.flags))
    option = draw(st.sampled_from(flag.options))
    if not flag.takes_value:
        return [option]
    if flag.kind == "nargs" and flag.nargs in ("+", "*"):
        minimum = 1 if flag.nargs == "+" else 0
        values = draw(st.lists(_raw_value(flag, catalogue), min_size=minimum, max_size=3))
        if any(value.startswith("-") or value == "" for value in values):
            values = values[:1]
            if values:
                return [f"{option}={values[0]}"]
        return [option, *values]
    if flag.kind == "nargs" and flag.nargs == "?":
        values = draw(st.lists(_raw_value(flag, catalogue), max_size=1))
        return _written(flag, option, values) if values else [option]
    value = draw(_raw_value(flag, catalogue))
    if draw(st.booleans()):
        return [f"{option}={value}"]
    return _written(flag, option, [value])


@st.composite
def valid_argvs(draw: st.DrawFn, release: str) -> list[str]:
    groups = draw(st.lists(flag_tokens(release), max_size=8))
    if draw(st.booleans()):
        groups.append(["--enable-deterministic-inference"])
    if draw(st.booleans()):
        path = draw(st.one_of(_PLAIN, st.just("m" * 5000), st.just("/tmp/a\x00b")))
        groups.append([f"--model-path={path}"])
    groups = draw(st.permutations(groups))
    return [word for group in groups for word in group]


_GARBAGE_WORDS = st.one_of(
    _UNICODE,
    st.sampled_from(
        [
            "",
            "-",
            "--",
            "---",
            "--=",
            "--tp-size=",
            "=",
            "-1",
            "-1.5",
            "--nope",
            "--enable-deterministic-inferenc",
            "--tp",
            "--dis",
            "NaN",
            "1e309",
            "--model-path=--x",
            "--host\n",
            "--\u00e9t\u00e9",
        ]
    ),
    _PLAIN.map(lambda text: "--" + text),
)


@st.composite
def corrupted_argvs(draw: st.DrawFn, release: str) -> list[str]:
    """A valid argv with a few mutations applied."""
    argv = draw(valid_argvs(release))
    for _ in range(draw(st.integers(1, 3))):
        mutation = draw(
            st.sampled_from(["insert", "drop", "replace", "duplicate", "truncate", "join", "split"])
        )
        position = draw(st.integers(0, len(argv)))
        if mutation == "insert" or not argv:
            argv.insert(position, draw(_GARBAGE_WORDS))
            continue
        position = min(position, len(argv) - 1)
        if mutation == "drop":
            del argv[position]
        elif mutation == "replace":
            argv[position] = draw(_GARBAGE_WORDS)
        elif mutation == "duplicate":
            argv.insert(position, argv[position])
        elif mutation == "truncate":
            argv = argv[:position]
        elif mutation == "join" and position + 1 < len(argv):
            argv[position : position + 2] = [f"{argv[position]}={argv[position + 1]}"]
        elif mutation == "split":
            argv[position : position + 1] = argv[position].split("=", 1)
    return argv


def argvs(release: str) -> st.SearchStrategy[list[str]]:
    return st.one_of(valid_argvs(release), corrupted_argvs(release))


versions = st.one_of(
    st.sampled_from(RELEASES),
    st.sampled_from(
        [
            "0.5.24",
            "0.6",
            "0.5.10.post9",
            "0.5.3rc1",
            "1!0.5",
            "0.5.23+local",
            "0.4.10",
            "0.0.1",
            " 0.5.23 ",
            "v0.5.23",
            "latest",
            "",
            "0.5.x",
            "\u0660.5",
            "0.5.23\x00",
        ]
    ),
    _UNICODE,
)
"""Target versions: catalogued, uncatalogued-but-valid, and garbage."""

_CVD = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "0,1",
            "1,0",
            "0,0",
            "-1",
            "0,-1",
            "7",
            "GPU-",
            "GPU-x",
            "MIG-",
            "0,GPU-1",
            " 0 , 1 ",
            "+1",
            "0abc",
            ",",
            "NoDevFiles",
        ]
    ),
    _UNICODE,
)

environments = st.dictionaries(
    st.sampled_from(
        [
            "CUDA_VISIBLE_DEVICES",
            "CUDA_DEVICE_ORDER",
            "DETARGS_DEVICE",
            "NCCL_ALGO",
            "NCCL_MIN_NCHANNELS",
            "NCCL_MAX_NCHANNELS",
            "HOME",
        ]
    ),
    st.one_of(
        _CVD,
        st.sampled_from(
            [
                "PCI_BUS_ID",
                "FASTEST_FIRST",
                "h100",
                "b200x2",
                "auto",
                "bogus",
                "allreduce:tree",
                "8",
                "Ring",
            ]
        ),
        st.sampled_from(PROFILES),
    ),
    max_size=4,
)


NVML_FUNCTIONS = sorted(
    name
    for name in vars(FakeNvml)
    if name.startswith("nvml") and callable(vars(FakeNvml)[name]) and name != "nvmlShutdown"
)
"""Every NVML call the fake can fail (a failing nvmlShutdown cannot leave NVML shut down)."""


@st.composite
def fake_nvmls(draw: st.DrawFn) -> FakeNvml:
    """A FakeNvml of some profile, with up to two injected NVML failures."""
    fake = FakeNvml.from_profile(
        draw(st.sampled_from(PROFILES)),
        count=draw(st.integers(0, 4)),
        return_bytes=draw(st.booleans()),
    )
    functions = NVML_FUNCTIONS
    for _ in range(draw(st.integers(0, 2))):
        code = draw(st.sampled_from(sorted(NVML_ERROR_CODES.values())))
        index = draw(st.one_of(st.none(), st.integers(0, 3)))
        fake.fail(draw(st.sampled_from(functions)), code=code, index=index)
    if draw(st.integers(0, 9)) == 0:
        fake.fail_on_init = draw(st.sampled_from([9, 12, 18, 999]))
    return fake


device_names = st.one_of(
    st.sampled_from(PROFILES),
    st.tuples(st.sampled_from(PROFILES), st.integers(0, 80)).map(lambda p: f"{p[0]}x{p[1]}"),
    st.sampled_from(
        [
            "H100",
            "nvidia h200 x 4",
            "h10",
            "",
            "auto-ish",
            "/nonexistent/d.json",
            "d.json",
            "h1\x0000",
            "./",
            "~/nope.json",
            "x" * 300,
            "/tmp/a\x00.json",
            "/" + "d" * 5000 + ".json",
        ]
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
    ).filter(lambda text: text.strip().lower() not in ("", "auto")),
)
"""Device specs for resolve(); never ``auto``/``None`` (that would probe the real NVML).

Names longer than the OS allows and paths with a NUL byte included."""


@contextlib.contextmanager
def detargs_warnings_recorded() -> Iterator[list[warnings.WarningMessage]]:
    """DetargsWarning is allowed (recorded); any other warning still fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", DetargsWarning)
        yield caught


def only_detargs_errors(call: Callable[[], Any]) -> Any:
    """Run ``call``; a DetargsError is an answer (returned), anything else fails."""
    try:
        return call()
    except DetargsError as error:
        caught = error
    assert str(caught).strip(), f"{type(caught).__name__} with an empty message"
    return caught


# --- (a) only DetargsError escapes -----------------------------------------------------


@st.composite
def api_inputs(draw: st.DrawFn) -> dict[str, Any]:
    release = draw(st.sampled_from(RELEASES))
    return {
        "release": release,
        "argv": draw(argvs(release)),
        "version": draw(st.one_of(st.just(release), versions)),
        "device": draw(st.one_of(device_names, fake_nvmls())),
        "environ": draw(environments),
        "on_conflict": draw(st.sampled_from(["error", "error", "override", "Override", ""])),
        "gpu_index": draw(st.one_of(st.none(), st.integers(-2, 4))),
        "model_arch": draw(
            st.one_of(
                st.none(),
                st.sampled_from(["DeepseekV3ForCausalLM", "LlamaForCausalLM", "", "\u00e9"]),
            )
        ),
    }


def _device_for(spec: str | FakeNvml, environ: Mapping[str, str]) -> str | DeviceInfo:
    if isinstance(spec, FakeNvml):
        info = detect(environ=environ, nvml=spec)
        assert not spec.initialized, "NVML left initialised after detect()"
        assert spec.init_calls == spec.shutdown_calls or spec.fail_on_init is not None
        return info
    return spec


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(api_inputs())
def test_only_detargs_errors_escape_the_public_api(case: dict[str, Any]) -> None:
    # The main property: `--hypothesis-profile=long` runs it 10,000 times.
    with detargs_warnings_recorded():
        args = only_detargs_errors(lambda: from_argv(case["argv"], case["version"]))
        device = only_detargs_errors(lambda: _device_for(case["device"], case["environ"]))
        if isinstance(args, DetargsError):
            args = ServerArgs(enable_deterministic_inference=True)
        if isinstance(device, DetargsError):
            device = "h100"
        only_detargs_errors(lambda: to_argv(args, case["version"]))
        launch = only_detargs_errors(
            lambda: resolve(
                args,
                device,
                case["version"],
                case["on_conflict"],
                model_arch=case["model_arch"],
                gpu_index=case["gpu_index"],
                environ=case["environ"],
            )
        )
    if isinstance(launch, Resolution):
        assert launch.shell()
        assert launch.to_json()
        assert launch.explain()
        assert re.fullmatch(r"[0-9a-f]{16}", launch.fingerprint)


@given(st.sampled_from(RELEASES).flatmap(corrupted_argvs), versions)
def test_corrupted_argv_is_refused_with_invalid_args_error_or_parsed(
    argv: list[str], version: str
) -> None:
    with detargs_warnings_recorded():
        outcome = only_detargs_errors(lambda: from_argv(argv, version))
    if isinstance(outcome, DetargsError):
        assert isinstance(outcome, InvalidArgsError)
        assert outcome.exit_code == 2


@given(fake_nvmls(), environments)
def test_detect_with_a_faulty_nvml_raises_device_errors_only_and_shuts_down(
    fake: FakeNvml, environ: dict[str, str]
) -> None:
    environ.pop("DETARGS_DEVICE", None)
    with detargs_warnings_recorded():
        outcome = only_detargs_errors(lambda: detect(environ=environ, nvml=fake))
    if isinstance(outcome, DetargsError):
        assert outcome.exit_code == 3
    assert not fake.initialized
    assert fake.shutdown_calls == (fake.init_calls if fake.fail_on_init is None else 0)


# --- (b) the argv codec round-trips ----------------------------------------------------


@st.composite
def parsed_args(draw: st.DrawFn) -> tuple[str, list[str], ServerArgs]:
    release = draw(st.sampled_from(RELEASES))
    argv = draw(valid_argvs(release))
    with detargs_warnings_recorded():
        try:
            args = from_argv(argv, release)
        except InvalidArgsError:
            # a catalogued value ServerArgs refuses (e.g. --chunked-prefill-size 1 with a
            # speculative algorithm's constraints); not a round-trip case
            assume(False)
            raise
    return release, argv, args


@given(parsed_args())
def test_to_argv_round_trips_and_is_idempotent(case: tuple[str, list[str], ServerArgs]) -> None:
    release, _, args = case
    with detargs_warnings_recorded():
        argv = to_argv(args, release)
        again = from_argv(argv, release)
        assert again == args
        assert to_argv(again, release) == argv


@given(parsed_args(), st.randoms(use_true_random=False))
def test_flag_order_does_not_change_the_canonical_argv(
    case: tuple[str, list[str], ServerArgs], random: Any
) -> None:
    release, argv, args = case
    # shuffle whole flag groups: a flag and its values stay together
    groups: list[list[str]] = []
    catalogue = catalogue_for(release)
    for word in argv:
        if word.split("=", 1)[0] in catalogue.by_option or not groups:
            groups.append([word])
        else:
            groups[-1].append(word)
    random.shuffle(groups)
    shuffled = [word for group in groups for word in group]
    with detargs_warnings_recorded():
        try:
            permuted = from_argv(shuffled, release)
        except InvalidArgsError:
            assume(False)  # a prefix or a repeated flag now reads differently
            raise
        if len({tuple(group) for group in groups}) == len(groups) and permuted == args:
            assert to_argv(permuted, release) == to_argv(args, release)


# --- (c) resolve is idempotent; (d) without deterministic mode nothing changes -----------


@st.composite
def resolvable(draw: st.DrawFn) -> tuple[str, ServerArgs, str, dict[str, str]]:
    release, _, args = draw(parsed_args())
    device = draw(st.one_of(st.sampled_from(PROFILES), st.sampled_from(["h100x4", "b200x8"])))
    environ = draw(
        st.dictionaries(
            st.sampled_from(["NCCL_ALGO", "HOME", "CUDA_VISIBLE_DEVICES"]),
            st.sampled_from(["allreduce:tree", "Ring", "0", "/root"]),
            max_size=2,
        )
    )
    return release, args, device, environ


@given(resolvable(), st.sampled_from(["error", "override"]))
def test_resolve_is_idempotent(
    case: tuple[str, ServerArgs, str, dict[str, str]], on_conflict: Any
) -> None:
    release, args, device, environ = case
    with detargs_warnings_recorded():
        first = only_detargs_errors(
            lambda: resolve(args, device, release, on_conflict, environ=environ)
        )
        assume(isinstance(first, Resolution))
        # the second run sees the environment the first one launches with
        launched = {**environ, **first.env}
        again = resolve(first.args, device, release, "error", environ=launched)
    assert [d for d in again.decisions if d.kind == "arg"] == []
    assert again.args == first.args
    assert (again.argv, dict(again.env), again.fingerprint) == (
        first.argv,
        dict(first.env),
        first.fingerprint,
    )


@given(resolvable(), st.sampled_from(["error", "override"]))
def test_without_deterministic_mode_resolution_changes_nothing(
    case: tuple[str, ServerArgs, str, dict[str, str]], on_conflict: Any
) -> None:
    release, args, device, environ = case
    assume(not args.enable_deterministic_inference and args.rl_on_policy_target is None)
    with detargs_warnings_recorded():
        launch = resolve(args, device, release, on_conflict, environ=environ)
        assert launch.args == args
        assert list(launch.argv) == to_argv(args, release)
    assert launch.env == {}
    assert launch.decisions == ()


# --- (f) the plain record (the CLI's path) and ServerArgs read and resolve alike ----------


def _parse(argv: list[str], target: TargetVersion) -> tuple[ServerArgs, list[str]]:
    values, notes = read_values(argv, target)
    return ServerArgs.from_values(values), notes


@given(
    st.sampled_from(RELEASES).flatmap(lambda release: st.tuples(st.just(release), argvs(release)))
)
def test_the_plain_reader_accepts_and_refuses_what_server_args_does(
    case: tuple[str, list[str]],
) -> None:
    release, argv = case
    target = target_version(release)
    plain = only_detargs_errors(lambda: read_values(argv, target))
    model = only_detargs_errors(lambda: _parse(argv, target))
    if isinstance(plain, DetargsError) or isinstance(model, DetargsError):
        assert type(plain) is type(model)
        assert str(plain) == str(model)
        return
    values, _ = plain
    args, _ = model
    assert args.values() == values
    assert ServerArgs.from_values(values) == args


@given(resolvable(), st.sampled_from(["error", "override"]))
def test_resolving_the_plain_record_is_resolving_server_args(
    case: tuple[str, ServerArgs, str, dict[str, str]], on_conflict: Any
) -> None:
    release, args, device, environ = case
    with detargs_warnings_recorded():
        model = only_detargs_errors(
            lambda: resolve(args, device, release, on_conflict, environ=environ)
        )
        plain = only_detargs_errors(
            lambda: _resolve_record(
                args.values(), target_version(release), on_conflict, device=device, environ=environ
            )
        )
    if isinstance(model, DetargsError):
        assert type(plain) is type(model)
        assert str(plain) == str(model)
        return
    assert isinstance(plain, Resolution)
    assert plain == model
    assert plain.args == model.args


# --- (e) the CLI exits 0/2/3 with one error paragraph, never a traceback ----------------

_CLI_DEVICES = st.one_of(st.sampled_from(PROFILES), device_names)


@st.composite
def cli_words(draw: st.DrawFn) -> list[str]:
    release = draw(st.sampled_from(RELEASES))
    command = draw(st.sampled_from(["resolve", "explain", "launch", "detect", "flags", "bogus"]))
    words = [command] if command != "bogus" else [draw(_UNICODE)]
    if command in ("resolve", "explain", "launch", "detect"):
        words += ["--device", draw(_CLI_DEVICES)]
    if command == "launch":
        words.append("--dry-run")  # never exec from a test
    if command in ("resolve", "explain", "launch", "flags") and draw(st.booleans()):
        words += ["--sglang-version", draw(st.one_of(st.just(release), versions))]
    if command == "resolve":
        words += draw(
            st.sampled_from([[], ["--format", "json"], ["--format", "shell"], ["--format", "yaml"]])
        )
    if command in ("resolve", "explain", "launch"):
        words += draw(
            st.sampled_from(
                [
                    [],
                    ["--on-conflict", "override"],
                    ["--gpu-index", "1"],
                    ["--launcher", "x 'y"],
                    ["--launcher", ""],
                    ["--model-arch", "LlamaForCausalLM"],
                    ["--gpu-index", "z"],
                ]
            )
        )
    if command == "flags" and draw(st.booleans()):
        words.append(draw(st.one_of(st.sampled_from(["--tp-size", "--nope"]), _PLAIN)))
    if command == "detect" and draw(st.booleans()):
        words.append("--json")
    if draw(st.integers(0, 4)) > 0:
        words += ["--", *draw(argvs(release))]
    return words


def run_cli(words: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(words)
    return code, out.getvalue(), err.getvalue()


ERROR_LINE = re.compile(r"^detargs(?: [a-z]+)?: error: \S", re.MULTILINE)


@given(cli_words())
def test_the_cli_exits_0_2_or_3_with_an_error_paragraph_and_no_traceback(
    words: list[str],
) -> None:
    with detargs_warnings_recorded():
        code, out, err = run_cli(words)
    assert code in (0, 2, 3), (code, err)
    assert "Traceback" not in err + out
    if code == 0:
        assert "error:" not in err, err
        return
    errors = ERROR_LINE.findall(err)
    assert len(errors) == 1, err
    # one paragraph: from the error line to the end, no blank line
    paragraph = err[ERROR_LINE.search(err).start() :].rstrip("\n")  # type: ignore[union-attr]
    assert "\n\n" not in paragraph, err


def test_a_deprecated_value_flag_that_sets_a_switch_round_trips() -> None:
    with detargs_warnings_recorded():
        args = from_argv(["--monokernel-backend", "amd"], "0.5.23")
        assert from_argv(to_argv(args, "0.5.23"), "0.5.23") == args


def test_a_deprecated_alias_value_outside_the_successors_choices_round_trips() -> None:
    with detargs_warnings_recorded():
        try:
            args = from_argv(["--mamba-scheduler-strategy", "0"], "0.5.16")
        except InvalidArgsError:
            return  # refusing it up front is as good as round-tripping it
        assert from_argv(to_argv(args, "0.5.16"), "0.5.16") == args


def test_public_names_stay_functions_after_their_modules_are_imported() -> None:
    # the modules are named apart from the functions they define, so importing one never
    # rebinds the package attribute to a module
    import importlib

    import detargs

    for module in ("resolution", "detection", "sglang.argv"):
        importlib.import_module(f"detargs.{module}")
    assert callable(detargs.resolve), type(detargs.resolve)
    assert callable(detargs.detect), type(detargs.detect)
    assert callable(detargs.from_argv)


# --- paths the filesystem cannot hold ----------------------------------------------------

_LONG = "x" * 300


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: detect(_LONG), id="device-name-too-long"),
        pytest.param(lambda: detect(environ={"DETARGS_DEVICE": _LONG}), id="env-name-too-long"),
        pytest.param(lambda: detect("/tmp/a\x00.json"), id="device-path-with-nul"),
        pytest.param(
            lambda: resolve(
                ServerArgs(model_path="m" * 5000, enable_deterministic_inference=True),
                "h100",
                NEWEST,
            ),
            id="model-path-too-long",
        ),
    ],
)
def test_unusable_paths_raise_detargs_errors(call: Callable[[], Any]) -> None:
    with detargs_warnings_recorded():
        only_detargs_errors(call)
