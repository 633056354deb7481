"""Build one SGLang release's own argparse parser, in a fresh subprocess.

The parent side (``extract_flags``, ``check_argvs``) downloads the release's wheel with pip
into ``.cache/wheels``, unpacks it into ``.cache/sglang/<release>`` and starts
``python -I -S`` on this very file in *child* mode with a minimal environment (no
``SGLANG_*`` or any other inherited variable), so every release is imported in its own
interpreter and env-dependent choices take their default form.

The child puts the unpacked release (plus ``.cache/deps``, which holds a real ``msgspec``:
0.5.14+ builds its arguments from ``msgspec`` structs) on ``sys.path``, then installs a
``sys.meta_path`` finder of last resort that fabricates a permissive stub module for every
other module that cannot be imported (``torch``, ``triton``, ``transformers``, ``PIL``,
...). Because site-packages are off (``-S``), every third-party package is such a stub,
whatever happens to be installed on the machine. It imports ``sglang.srt.server_args`` and
builds the parser exactly as the release's ``prepare_server_args`` does:
``argparse.ArgumentParser(prog=...)`` then ``ServerArgs.add_cli_args(parser)`` (the
0.5.14+ dataclass-driven releases still expose ``add_cli_args``, which calls
``add_cli_args_from_dataclass`` and then registers the hand-written arguments).

Facts only: help text is never read or written.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import enum
import importlib
import importlib.abc
import importlib.machinery
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import types
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
CACHE: Final = REPO / ".cache"
WHEELS: Final = CACHE / "wheels"
UNPACKED: Final = CACHE / "sglang"
DEPS: Final = CACHE / "deps"

# Real (non-stub) third-party packages the child needs, installed with pip into DEPS.
REAL_DEPS: Final = ("msgspec", "packaging", "typing_extensions")

# What a stub module answers for ``__version__`` (version gates then take their modern side).
STUB_VERSION: Final = "99.0.0"

# The stub flavours: how stubs answer bool()/comparisons, and what version they claim
# ("old"). The first is the one the catalogue is built with; facts that differ between
# flavours depend on the stubs (``tools/build_catalogue.py --sensitivity``).
FLAVOURS: Final = ("falsy", "truthy", "old")

_STUB_MARK: Final = "__detargs_stub__"


# --------------------------------------------------------------------------- parent side


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def ensure_deps() -> Path:
    """Install the few real packages the child imports into ``.cache/deps``."""
    missing = [
        name for name in REAL_DEPS if not ((DEPS / name).exists() or (DEPS / f"{name}.py").exists())
    ]
    if missing:
        _pip(
            "install",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--target",
            str(DEPS),
            *missing,
        )
    return DEPS


def wheel_path(release: str) -> Path:
    """The downloaded wheel of ``release``, downloading it if needed."""
    found = sorted(WHEELS.glob(f"sglang-{release}-*.whl"))
    if not found:
        WHEELS.mkdir(parents=True, exist_ok=True)
        _pip(
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            f"sglang=={release}",
            "-d",
            str(WHEELS),
        )
        found = sorted(WHEELS.glob(f"sglang-{release}-*.whl"))
    if not found:
        raise FileNotFoundError(f"no wheel for sglang=={release} in {WHEELS}")
    return found[0]


def ensure_release(release: str) -> Path:
    """The directory holding the unpacked ``sglang`` package of ``release``."""
    target = UNPACKED / release
    if not (target / "sglang" / "srt" / "server_args.py").exists():
        wheel = wheel_path(release)
        tmp = Path(tempfile.mkdtemp(prefix=f".{release}-", dir=UNPACKED.parent))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.rename(target)
    return target


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.update(extra or {})
    return env


def _run_child(
    release: str,
    mode: str,
    payload: Any,
    *,
    flavour: str = "falsy",
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> Any:
    root = ensure_release(release)
    deps = ensure_deps()
    with tempfile.TemporaryDirectory(prefix="detargs-sglang-") as tmp:
        request = Path(tmp) / "request.json"
        result = Path(tmp) / "result.json"
        request.write_text(
            json.dumps(
                {
                    "release": release,
                    "mode": mode,
                    "payload": payload,
                    "flavour": flavour,
                    "paths": [str(root), str(deps)],
                }
            )
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-W",
                "ignore",
                str(Path(__file__).resolve()),
                "--child",
                str(request),
                str(result),
            ],
            cwd=tmp,
            env=_child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(
                f"building the sglang=={release} parser failed (exit {proc.returncode}):\n"
                f"{proc.stderr[-4000:]}"
            )
        return json.loads(result.read_text())


def extract_flags(
    release: str, *, flavour: str = "falsy", env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``{"flags": [...], "notes": [...]}``: every action of the release's parser."""
    data: dict[str, Any] = _run_child(release, "flags", None, flavour=flavour, env=env)
    return data


def check_argvs(release: str, argvs: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Run the release's parser on each argv: ``[{"argv", "ok", "error"}, ...]``."""
    data: list[dict[str, Any]] = _run_child(release, "parse", [list(a) for a in argvs])
    return data


def release_list(low: str = "0.5.3", high: str = "0.5.23") -> list[str]:
    """Every published sglang release in ``[low, high]`` (post releases included), ascending."""
    from packaging.version import Version

    proc = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "sglang"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(item for item in proc.stdout.splitlines() if item.startswith("Available versions:"))
    versions = [item.strip() for item in line.split(":", 1)[1].split(",")]
    lo, hi = Version(low), Version(high)
    chosen = [v for v in versions if lo <= Version(v) <= hi and not Version(v).is_prerelease]
    return sorted(chosen, key=Version)


# --------------------------------------------------------------------------- child side


class _StubMeta(abc.ABCMeta):
    """Metaclass of fabricated classes: any attribute is another fabricated class."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in _DATA_DUNDERS:
            raise AttributeError(name)
        return _stub_class(f"{cls.__qualname__}.{name}", cls.__module__)

    def __getitem__(cls, item: Any) -> Any:
        return cls

    def __setitem__(cls, key: Any, value: Any) -> None:
        pass

    def register(cls, *args: Any, **kwargs: Any) -> Any:  # shadows ABCMeta.register
        return args[0] if args else cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        # Used as a bare decorator (``@torch.compile``, ``@triton.jit``): hand back the target.
        if len(args) == 1 and not kwargs and isinstance(args[0], types.FunctionType):
            return args[0]
        return super().__call__(*args, **kwargs)

    def __iter__(cls) -> Any:
        return iter(())

    def __len__(cls) -> int:
        return 0

    def __bool__(cls) -> bool:
        return _TRUTHY

    def __int__(cls) -> int:
        return 0

    def __index__(cls) -> int:
        return 0

    def __float__(cls) -> float:
        return 0.0

    def __contains__(cls, item: Any) -> bool:
        return False

    def _cmp(cls, other: Any) -> bool:
        return _TRUTHY

    __lt__ = __le__ = __gt__ = __ge__ = _cmp

    def _same(cls, *other: Any) -> Any:
        return cls

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = _same
    __pow__ = __rpow__ = __neg__ = __pos__ = __invert__ = __and__ = __rand__ = _same
    __xor__ = __rxor__ = __matmul__ = __rmatmul__ = _same


class _Stub(str):
    """Instances of fabricated classes: permissive about everything.

    A ``str`` subclass so that a stub can also stand where a name is needed
    (``getattr(torch.ops, stub)``); its text is the stub's dotted name.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return str.__new__(cls, f"{cls.__module__}.{cls.__qualname__}")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _stub_class(f"{type(self).__qualname__}.{name}", type(self).__module__)()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and isinstance(args[0], types.FunctionType):
            return args[0]
        return type(self)()

    def __getitem__(self, item: Any) -> Any:
        return type(self)()

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, item: Any) -> bool:
        return False

    def __bool__(self) -> bool:
        return _TRUTHY

    def __int__(self) -> int:
        return 0

    def __index__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def _cmp(self, other: Any) -> bool:
        return _TRUTHY

    __lt__ = __le__ = __gt__ = __ge__ = _cmp

    def _same(self, *other: Any) -> Any:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = _same
    __pow__ = __rpow__ = __neg__ = __pos__ = __invert__ = __and__ = __rand__ = _same
    __or__ = __ror__ = __xor__ = __rxor__ = __matmul__ = __rmatmul__ = _same


_TRUTHY = False  # how stubs answer bool() and comparisons (flavour "truthy")
_STUB_VERSION = STUB_VERSION  # flavour "old": "0.0.1"


def _stub_class(qualname: str, module: str) -> type:
    name = qualname.rsplit(".", 1)[-1]
    cls = _StubMeta(
        name, (_Stub,), {"__module__": module, "__qualname__": qualname, _STUB_MARK: True}
    )
    return cls


# Dunder attributes that third-party code reads as plain data (everything else dunder is
# absent, so Python's own protocol probes behave).
_DATA_DUNDERS: Final = frozenset({"__class_validators__", "__func__"})

# Attributes a real, vendor-neutral install does not have (platform probes use hasattr).
_ABSENT: Final = {"torch": frozenset({"npu", "hpu", "mlu", "musa"})}


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name in _ABSENT.get(self.__name__, ()):
            raise AttributeError(name)
        value = _stub_class(name, self.__name__)
        setattr(self, name, value)
        return value


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        module.__dict__["__version__"] = _STUB_VERSION
        setattr(module, _STUB_MARK, True)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _StubFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: fabricates whatever nothing else could import."""

    def __init__(self) -> None:
        self.stubbed: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.split(".", 1)[0]
        if top == "sglang" or top in REAL_DEPS:
            return None
        self.stubbed.add(top)
        return importlib.machinery.ModuleSpec(fullname, _StubLoader(), is_package=True)


def is_stub(value: Any) -> bool:
    """Whether ``value`` (or its type) was fabricated by the stub finder."""
    return bool(getattr(value, _STUB_MARK, False) or getattr(type(value), _STUB_MARK, False))


_TYPE_NAMES: Final = {str: "str", int: "int", float: "float", bool: "bool", json.loads: "json"}


def _type_name(kind: Any, notes: list[str], where: str) -> str | None:
    if kind is None:
        return None
    try:
        if kind in _TYPE_NAMES:
            return _TYPE_NAMES[kind]
    except TypeError:
        pass
    if is_stub(kind):
        notes.append(f"{where}: type is a stub ({kind!r})")
    name = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", None)
    if name is None:
        name = type(kind).__qualname__
    return f"fn:{name}"


def _plain(value: Any, notes: list[str], where: str) -> Any:
    """``value`` made JSON-serialisable (enums → value, sets → sorted lists)."""
    if is_stub(value):
        notes.append(f"{where}: stub value {value!r}")
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            notes.append(f"{where}: non-finite float {value!r} stored as str")
            return str(value)
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value, notes, where)
    if isinstance(value, (list, tuple)):
        return [_plain(item, notes, where) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [_plain(item, notes, where) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, dict):
        return {str(key): _plain(item, notes, where) for key, item in value.items()}
    notes.append(f"{where}: {type(value).__qualname__} value stored as str ({value!r})")
    return str(value)


def _choices(choices: Any, notes: list[str], where: str) -> list[str] | None:
    if choices is None:
        return None
    if is_stub(choices):
        notes.append(f"{where}: choices are a stub ({choices!r})")
    items: Iterable[Any] = choices
    if isinstance(choices, (set, frozenset)):
        items = sorted(choices, key=str)
    result: list[str] = []
    for item in items:
        plain = _plain(item, notes, where)
        result.append(plain if isinstance(plain, str) else json.dumps(plain))
    return result


_UNSET: Final = object()


def _probe(action: argparse.Action, parser: argparse.ArgumentParser) -> tuple[str, Any]:
    """Call a custom action on scratch namespaces: ``("rejects"|"noop"|"sets"|"stores", x)``.

    ``sets`` means it stores the same thing whatever it is given (``x`` is that thing).
    """
    outcomes: list[tuple[str, Any]] = []
    for sample in ("x", "y"):
        namespace = argparse.Namespace()
        setattr(namespace, action.dest, _UNSET)
        value: Any = [] if action.nargs == 0 else (sample if action.nargs is None else [sample])
        before = dict(vars(namespace))
        sink = io.StringIO()
        try:
            with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
                action(parser, namespace, value, action.option_strings[0])
        except (Exception, SystemExit):  # the action refuses to run
            return "rejects", None
        after = dict(vars(namespace))
        if after == before:
            outcomes.append(("noop", None))
        else:
            outcomes.append(("changed", after.get(action.dest, _UNSET)))
    (first, stored), (second, stored_again) = outcomes
    if first == "noop" and second == "noop":
        return "noop", None
    if action.nargs != 0 and stored != stored_again:
        return "stores", None
    return "sets", stored


def _describe(
    action: argparse.Action, parser: argparse.ArgumentParser, notes: list[str]
) -> dict[str, Any]:
    where = action.option_strings[0]
    nargs = action.nargs
    kind: str
    const: Any = action.const
    rejects = False
    probe = ""
    if isinstance(action, argparse._StoreTrueAction):
        kind = "store_true"
    elif isinstance(action, argparse._StoreFalseAction):
        kind = "store_false"
    elif isinstance(action, argparse._StoreConstAction):
        kind = "store_const"
    elif isinstance(action, (argparse._AppendAction, argparse._ExtendAction)):
        kind = "append"
    elif type(action) is argparse._StoreAction:
        kind = "value" if nargs is None else "nargs"
    elif isinstance(action, argparse.BooleanOptionalAction):
        kind = "bool_optional"  # ``--x/--no-x``: split into two flags by the builder
    elif isinstance(
        action,
        (
            argparse._HelpAction,
            argparse._VersionAction,
            argparse._CountAction,
            argparse._AppendConstAction,
        ),
    ):
        kind = f"unsupported:{type(action).__name__}"
        notes.append(f"{where}: unsupported action class {type(action).__name__}")
    else:
        probe, stored = _probe(action, parser)
        if probe == "rejects":
            rejects = True
            kind = "noop" if nargs == 0 else ("value" if nargs is None else "nargs")
        elif nargs == 0:
            if probe == "noop":
                kind = "noop"
            elif stored is True:
                kind, const = "store_true", None
            elif stored is False:
                kind, const = "store_false", None
            else:
                kind, const = "store_const", stored
        else:
            kind = "value" if nargs is None else "nargs"
            if probe == "sets":  # stores a fixed value, whatever it was given
                const = stored
            elif probe == "noop":
                notes.append(f"{where}: takes a value but stores nothing")
    replaced_by = getattr(action, "new_flag", None)
    if replaced_by is not None and not isinstance(replaced_by, str):
        replaced_by = str(replaced_by)
    if kind in ("store_true", "store_false"):
        const = None
    return {
        "options": list(action.option_strings),
        "dest": action.dest,
        "kind": kind,
        "type": _type_name(action.type, notes, where),
        "choices": _choices(action.choices, notes, where),
        "default": _plain(action.default, notes, where),
        "const": _plain(const, notes, where),
        "nargs": nargs if nargs is None or isinstance(nargs, (int, str)) else str(nargs),
        "required": bool(action.required),
        "replaced_by": replaced_by,
        "rejects": rejects,
        "action_class": f"{type(action).__module__}.{type(action).__qualname__}",
    }


def _build_parser(release: str) -> tuple[argparse.ArgumentParser, Any]:
    module = importlib.import_module("sglang.srt.server_args")
    server_args = module.ServerArgs
    prog = "sglang serve"
    source = Path(module.__file__ or "").read_text("utf-8")
    if 'ArgumentParser(prog="sglang serve")' not in source:
        prog = "launch_server"  # older releases use a bare ArgumentParser(); prog is cosmetic
    parser = argparse.ArgumentParser(prog=prog)
    server_args.add_cli_args(parser)
    return parser, module


def _child(request_file: str, result_file: str) -> int:
    global _TRUTHY, _STUB_VERSION
    request = json.loads(Path(request_file).read_text())
    _TRUTHY = request["flavour"] == "truthy"
    if request["flavour"] == "old":
        _STUB_VERSION = "0.0.1"
    # The parent built this process's environment from scratch (``_child_env``): no
    # inherited SGLANG_* variable is here, only the ones a caller passed on purpose.
    for index, entry in enumerate(request["paths"]):
        sys.path.insert(index, entry)
    finder = _StubFinder()
    sys.meta_path.append(finder)
    env_reads: set[str] = set()
    environ_type: Any = type(os.environ)
    real_getitem = environ_type.__getitem__
    real_contains = environ_type.__contains__

    def getitem(self: Any, key: Any) -> Any:
        env_reads.add(str(key))
        return real_getitem(self, key)

    def contains(self: Any, key: Any) -> bool:
        env_reads.add(str(key))
        return bool(real_contains(self, key))

    environ_type.__getitem__ = getitem
    environ_type.__contains__ = contains
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        parser, module = _build_parser(request["release"])
    if not str(module.__file__).startswith(request["paths"][0]):
        raise RuntimeError(f"imported the wrong sglang: {module.__file__}")
    result: Any
    if request["mode"] == "flags":
        notes: list[str] = []
        flags = [
            _describe(action, parser, notes)
            for action in parser._actions
            if not isinstance(action, argparse._HelpAction)
        ]
        result = {
            "flags": flags,
            "notes": notes,
            "stubbed": sorted(finder.stubbed),
            "env_read": sorted(env_reads),
        }
    elif request["mode"] == "parse":
        result = []
        for argv in request["payload"]:
            err = io.StringIO()
            ok, error = True, None
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(sink):
                    parser.parse_args(argv)
            except SystemExit as exc:
                ok = exc.code in (0, None)
                lines = err.getvalue().strip().splitlines()
                error = lines[-1] if lines else f"exit {exc.code}"
            except Exception as exc:  # e.g. a deprecated action raising ValueError
                ok, error = False, f"{type(exc).__name__}: {exc}"
            result.append({"argv": argv, "ok": ok, "error": error})
    else:
        raise ValueError(f"unknown mode {request['mode']!r}")
    Path(result_file).write_text(json.dumps(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == "--child":
        return _child(args[1], args[2])
    cli = argparse.ArgumentParser(description="Dump one sglang release's parser facts.")
    cli.add_argument("release")
    cli.add_argument("--flavour", choices=FLAVOURS, default="falsy")
    ns = cli.parse_args(args)
    json.dump(extract_flags(ns.release, flavour=ns.flavour), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
