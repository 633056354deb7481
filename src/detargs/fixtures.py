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
a ``DeviceInfo``), else ``DETARGS_DEVICE``, else the GPUs NVML sees. The SGLang
release is ``sglang_version`` if set, else the installed one. Resolution runs once
per class and is cached on it.

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

from .args import ServerArgs
from .argv import parse_argv
from .device import DeviceInfo
from .errors import InvalidArgsError
from .resolution import Resolution, resolve
from .version import target_version

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
        ``options``); on a divergence, ``tearDownClass`` then ``NondeterminismError``."""
        from .check import SHORT, check
        from .errors import NondeterminismError

        api, model = options.pop("api", None), options.pop("model", None)
        report = check(base_url, SHORT, api=api, model=model, **options)
        if not report.deterministic:
            teardown = getattr(cls, "tearDownClass", None)
            if callable(teardown):
                teardown()
            raise NondeterminismError(
                f"{cls.__name__}: the server is not deterministic: {report.summary()}",
                report=report,
            )
        return report

    @classmethod
    def _resolve(cls) -> Resolution:
        target = target_version(cls.sglang_version)
        parsed, _ = parse_argv(list(cls.extra_args), target)
        fields = parsed.user_set()
        fields.update(cls._declared())
        on_conflict = cls.on_conflict
        if on_conflict not in ("error", "override"):
            raise InvalidArgsError(f"{cls.__name__}.on_conflict must be 'error' or 'override'")
        return resolve(
            ServerArgs(**fields),
            device=cls.device,
            sglang_version=target,
            on_conflict="override" if on_conflict == "override" else "error",
            model_arch=cls.model_arch,
        )

    @classmethod
    def _declared(cls) -> dict[str, Any]:
        """ServerArgs fields the fixture's own classes set, nearest class first."""
        declared: dict[str, Any] = {}
        for klass in cls.__mro__:
            if klass is DeterministicServerMixin:
                break
            for name, value in vars(klass).items():
                field = _ALIASES.get(name, name)
                if field in ServerArgs.model_fields and field not in declared:
                    if field == "extra" or name in _SETTINGS:
                        continue
                    if value is None or (isinstance(value, str) and value == ""):
                        continue  # SGLang fixtures use "" and None for "not chosen"
                    declared[field] = value
        return declared
