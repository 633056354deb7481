"""A mixin for test fixtures that launch an SGLang server: declare intent, get the launch.

A fixture class sets class attributes named like ``ServerArgs`` fields (plus
``model``, ``draft_model`` and ``extra_args``) and asks for the launch::

    class TestMLA(DeterministicServerMixin, unittest.TestCase):
        model = "deepseek-ai/DeepSeek-V2-Lite"
        trust_remote_code = True
        kv_cache_dtype = "fp8_e5m2"
        enable_deterministic_inference = True

        @classmethod
        def setUpClass(cls):
            cls.process = popen_launch_server(cls.model, cls.base_url, timeout=600,
                                              other_args=cls.get_server_args(),
                                              env=cls.get_server_env())

The device is ``device`` if the class sets it (a profile name, a saved JSON path or
a ``DeviceInfo``), else pytest's ``--detargs-device``, else ``DETARGS_DEVICE``, else
the GPUs NVML sees. The SGLang release is ``sglang_version`` if set, else pytest's
``--detargs-sglang-version``, else the installed one. Resolution runs once per class
and is cached on it.

Nothing a class says is dropped: a launch argument set both as a class attribute and
in ``extra_args`` to different values is an error naming both; an attribute whose name
is close to a launch argument's (``attention_backed``) is refused with a did-you-mean;
``extra_args`` written as one string is refused with "split it".

``get_server_args()`` leaves ``--model-path`` out, because launchers such as SGLang's
``popen_launch_server(model, ...)`` add it themselves; set
``include_model_path = True`` when yours does not.

``assert_deterministic_server(base_url)``, called at the end of ``setUpClass``, runs a
short ``detargs check`` against the launched server; when it finds a divergence it calls
``tearDownClass`` (unittest skips it after a failed ``setUpClass``, and the server must
still stop) and raises ``NondeterminismError`` with the report, so every test of the
class fails with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from . import _session
from .device import DeviceInfo
from .engines import ENGINE
from .errors import InvalidArgsError
from .resolution import Resolution, resolve
from .sglang import ServerArgs

if TYPE_CHECKING:
    from .check import CheckReport

__all__ = ["DeterministicServerMixin"]

_ALIASES: Mapping[str, str] = {"model": "model_path", "draft_model": "speculative_draft_model_path"}
_SETTINGS = frozenset(
    {"device", "sglang_version", "model_arch", "extra_args", "include_model_path", "on_conflict"}
)


class DeterministicServerMixin:
    """Class attributes in, resolved launch out (see the module docstring)."""

    extra_args: ClassVar[Sequence[str]] = ()
    """Further SGLang flags, as argv words, parsed for the target release."""
    device: ClassVar[str | DeviceInfo | None] = None
    sglang_version: ClassVar[str | None] = None
    model_arch: ClassVar[str | None] = None
    include_model_path: ClassVar[bool] = False
    on_conflict: ClassVar[str] = "error"

    @classmethod
    def get_resolution(cls) -> Resolution:
        cached = cls.__dict__.get("_detargs_resolution")
        if isinstance(cached, Resolution):
            return cached
        resolution = cls._resolve()
        # stored on this class only, so a subclass with other attributes resolves anew
        type.__setattr__(cls, "_detargs_resolution", resolution)
        return resolution

    @classmethod
    def get_server_args(cls) -> list[str]:
        """The resolved argv for the launcher (without ``--model-path`` by default)."""
        argv = list(cls.get_resolution().argv)
        if not cls.include_model_path and argv[:1] == ["--model-path"]:
            del argv[:2]
        return argv

    @classmethod
    def get_server_env(cls) -> dict[str, str]:
        """The environment variables the launch needs (merge them over your own)."""
        return dict(cls.get_resolution().env)

    @classmethod
    def assert_deterministic_server(cls, base_url: str, **options: Any) -> CheckReport:
        """A short check of the server at ``base_url`` (``detargs.check.SHORT``, changed by
        ``options``). On a divergence it raises ``NondeterminismError``, and when the server
        cannot be checked the check's own error; either way ``tearDownClass`` runs first,
        since unittest skips it after a failing ``setUpClass`` and the server must stop."""
        from .check import SHORT, check
        from .errors import DetargsError, NondeterminismError

        api, model = options.pop("api", None), options.pop("model", None)
        try:
            report = check(base_url, SHORT, api=api, model=model, **options)
            if not report.deterministic:
                raise NondeterminismError(
                    f"{cls.__name__}: the server is not deterministic: {report.summary()}",
                    report=report,
                )
        except DetargsError:
            teardown = getattr(cls, "tearDownClass", None)
            if callable(teardown):
                teardown()
            raise
        return report

    @classmethod
    def _resolve(cls) -> Resolution:
        session = _session.current()
        version = cls.sglang_version if cls.sglang_version is not None else (session.sglang_version)
        device = cls.device if cls.device is not None else session.device
        target = ENGINE.target_version(version)
        extra_args = cls.extra_args
        if isinstance(extra_args, str):
            raise InvalidArgsError(
                f"{cls.__name__}.extra_args is one string ({extra_args!r}); split it into "
                f"argv words: extra_args = {extra_args.split()!r} (shlex.split does it for "
                "quoted values)",
                flag="extra_args",
            )
        parsed, _ = ENGINE.read_argv(list(extra_args), target)
        fields = parsed.set_values()
        declared = cls._declared()
        clashes = [
            f"{attribute} = {value!r} (class attribute) and "
            f"{ENGINE.flag_name(field, target.release)} "
            f"{fields[field]!r} (extra_args)"
            for field, (attribute, value) in declared.items()
            if field in fields and fields[field] != value
        ]
        if clashes:
            raise InvalidArgsError(
                f"{cls.__name__} sets the same launch argument twice, to different values: "
                f"{'; '.join(clashes)}; keep one of them",
                flag="extra_args",
            )
        fields.update({field: value for field, (_, value) in declared.items()})
        on_conflict = cls.on_conflict
        if on_conflict not in ("error", "override"):
            raise InvalidArgsError(f"{cls.__name__}.on_conflict must be 'error' or 'override'")
        return resolve(
            ServerArgs(**fields),
            device=device,
            sglang_version=target,
            on_conflict="override" if on_conflict == "override" else "error",
            model_arch=cls.model_arch,
        )

    @classmethod
    def _declared(cls) -> dict[str, tuple[str, Any]]:
        """ServerArgs fields the fixture's own classes set, nearest class first, as
        ``field -> (attribute, value)``; a near miss of a field's name is refused."""
        declared: dict[str, tuple[str, Any]] = {}
        for klass in cls.__mro__:
            if klass is DeterministicServerMixin:
                break
            for name, value in vars(klass).items():
                field = _ALIASES.get(name, name)
                if field not in ServerArgs.model_fields:
                    if name not in _SETTINGS:
                        _refuse_a_near_miss(cls, klass, name, value)
                    continue
                if field in declared or field == "extra" or name in _SETTINGS:
                    continue
                if value is None or (isinstance(value, str) and value == ""):
                    continue  # SGLang fixtures use "" and None for "not chosen"
                declared[field] = (name, value)
        return declared


def _launch_names() -> list[str]:
    fields = [name for name in ServerArgs.model_fields if name != "extra"]
    return sorted({*fields, *_ALIASES, *_SETTINGS})


def _refuse_a_near_miss(cls: type, klass: type, name: str, value: object) -> None:
    """An attribute named almost like a launch argument is a typo that would be dropped."""
    if (
        name.startswith("_")
        or callable(value)
        or isinstance(value, (classmethod, staticmethod, property))
    ):
        return
    import difflib  # only this check needs it

    close = difflib.get_close_matches(name, _launch_names(), n=1, cutoff=0.85)
    where = cls.__name__ if klass is cls else f"{cls.__name__} (from {klass.__name__})"
    flag = ENGINE.flag_for_dest(name) if close else None
    if flag is not None:
        # a real flag the mixin has no attribute for (pp_size), not a typo of one it has
        raise InvalidArgsError(
            f"{where}.{name} is not a launch argument the mixin reads, so it would be "
            f"ignored; {flag} is an SGLang flag: pass it in extra_args, as in "
            f"extra_args = [{flag!r}, {str(value)!r}]",
            flag=name,
        )
    if close:
        raise InvalidArgsError(
            f"{where}.{name} is not a launch argument the mixin reads, so it would be "
            f"ignored: did you mean {close[0]}?",
            flag=name,
        )
