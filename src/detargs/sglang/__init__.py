"""SGLang, as detargs knows it: its flags per release, its launch fields, its rules.

Everything SGLang-specific lives in this package: the flag catalogue
(``catalogue``, ``_data/sglang_flags.json``), the launch fields (``args``, ``_values``,
``_record_fields``), the argv codec (``argv``, ``_argv_read``, ``_argv_write``,
``_prefill_graph``), the release facts (``releases``), the rules (``rules``), the
installed-release detection (``version``) and the reference generator (``_reference``).

The generic layers (the resolution engine, device detection, the CLI, the fixtures)
reach it only through ``ENGINE`` (via ``detargs.engines``) and the types named in
``__all__``; the internals are imported on first use, so importing this package costs
one small module:

>>> from detargs.sglang import ENGINE
>>> ENGINE.name, ENGINE.releases()[0]
('SGLang', '0.5.3')
>>> target = ENGINE.target_version("0.5.23")
>>> values, notes = ENGINE.read_argv(["--model-path", "m", "--tp", "2"], target)
>>> values.tp_size, ENGINE.flag_name("tp_size", "0.5.23")
(2, '--tp-size')
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

if TYPE_CHECKING:
    from ..device import GpuInfo
    from ._values import LaunchValues
    from .args import ServerArgs
    from .argv import from_argv, to_argv
    from .rules import Context, Rule
    from .version import TargetVersion, VersionSource, target_version

__all__ = [
    "ENGINE",
    "Context",
    "Engine",
    "LaunchValues",
    "ServerArgs",
    "TargetVersion",
    "VersionSource",
    "from_argv",
    "target_version",
    "to_argv",
]

_HOMES = {
    "Context": "rules",
    "LaunchValues": "_values",
    "ServerArgs": "args",
    "TargetVersion": "version",
    "from_argv": "argv",
    "target_version": "version",
    "to_argv": "argv",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'detargs.sglang' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


class Engine:
    """SGLang behind the interface the generic layers call.

    A second serving engine is a sibling package with an object of the same shape and an
    entry in ``detargs.engines``. Each method imports what it needs on first call. The
    object holds no state (no slots, no fields): a plain class, not a dataclass, because
    building a dataclass costs a cold ``detargs resolve`` more than the class itself.
    """

    __slots__ = ()

    name: ClassVar[str] = "SGLang"
    """How messages name the engine."""
    default_launcher: ClassVar[tuple[str, ...]] = ("python", "-m", "sglang.launch_server")
    """The command a launch runs unless the caller gives its own."""

    def releases(self) -> tuple[str, ...]:
        """The catalogued releases, oldest first."""
        from .catalogue import releases

        return releases()

    def target_version(self, version: str | TargetVersion | None = None) -> TargetVersion:
        """The catalogued release a launch targets (given, else installed, else newest)."""
        from .version import target_version

        return target_version(version)

    def installed_version(self) -> str | None:
        """The version of the engine installed here, from its package metadata; or None."""
        from .version import installed_sglang_version

        return installed_sglang_version()

    def read_argv(
        self, argv: Sequence[str], target: TargetVersion
    ) -> tuple[LaunchValues, tuple[str, ...]]:
        """The launch record ``argv`` spells for ``target``, and what reading it assumed."""
        from ._argv_read import read_values

        values, notes = read_values(argv, target)
        return values, tuple(notes)

    def write_argv(self, values: LaunchValues, target: TargetVersion) -> list[str]:
        """The argv words of ``values`` in ``target``'s spelling."""
        from ._argv_write import encode_values

        return encode_values(values, target)

    def flag_name(self, field: str, release: str) -> str:
        """How a user writes ``field`` (or ``extra.<dest>``) in ``release``."""
        from ._argv_write import flag_name

        return flag_name(field, release)

    def flag_for_dest(self, dest: str) -> str | None:
        """The flag that sets ``dest`` in the newest release that has one, else ``None``."""
        from .catalogue import dest_history

        history = dest_history(dest)
        return history[-1].name if history else None

    def record(self, data: Mapping[str, Any]) -> LaunchValues:
        """The launch record of ``data`` (field name to value, ``extra`` for the rest)."""
        from ._values import LaunchValues

        return LaunchValues.of(data)

    def is_record(self, value: object) -> TypeGuard[LaunchValues]:
        """Whether ``value`` is already a launch record."""
        from ._values import LaunchValues

        return isinstance(value, LaunchValues)

    def args_of(self, values: LaunchValues) -> ServerArgs:
        """The public model of a record (loads pydantic)."""
        from .args import ServerArgs

        return ServerArgs.from_values(values)

    def values_of(self, args: object) -> LaunchValues | None:
        """The record of a ``ServerArgs``; None for anything else."""
        from .args import ServerArgs

        return args.values() if isinstance(args, ServerArgs) else None

    def refusal(self, values: Mapping[str, Any]) -> str | None:
        """Why a record's set values cannot launch at all, or None."""
        from ._values import refusal

        return refusal(values)

    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they run."""
        from .rules import RULES

        return RULES

    def device_warnings(self, gpu: GpuInfo) -> list[str]:
        """What the rules assume about ``gpu``, as warnings for every launch on it."""
        from .rules import device_warnings

        return device_warnings(gpu)

    def context(
        self,
        values: LaunchValues,
        *,
        gpu: GpuInfo,
        target: TargetVersion,
        model_arch: str | None,
        environ: Mapping[str, str],
    ) -> Context:
        """What the rules read: the arguments, the GPU, the release, the model, the env."""
        from .model import model_facts
        from .rules import Context

        model = model_facts(values.model_path, model_arch)
        return Context.of(values, gpu=gpu, target=target, model=model, environ=environ)

    def fit_problem(
        self,
        values: LaunchValues,
        *,
        gpus_per_node: int,
        nnodes: int,
        device: str,
    ) -> str | None:
        """Why the launch's parallelism does not fit the nodes, or None."""
        from .parallel import fit_problem

        sizes = {"tp_size": values.tp_size, "dp_size": values.dp_size}
        return fit_problem(
            sizes, values.extra, gpus_per_node=gpus_per_node, nnodes=nnodes, device=device
        )

    def flag_listing(self, release: str) -> list[str]:
        """``detargs flags``: one line per flag of ``release``."""
        from ._flag_listing import flag_listing

        return flag_listing(release)

    def flag_report(
        self, written: str, release: str, *, pinned: bool
    ) -> tuple[list[str], list[str]]:
        """``detargs flags FLAG``: the flag's history (or its ``release`` entry), and notes."""
        from ._flag_listing import flag_report

        return flag_report(written, release, pinned)


ENGINE = Engine()
"""The SGLang engine."""
