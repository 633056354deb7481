"""``resolve``: the user's arguments + the GPU + the engine's release -> one exact launch.

The resolution engine runs the serving engine's rules (``ENGINE.rules()``, from
``detargs.engines``) in order over its ``Context`` and applies what each rule requires,
the same way for every rule:

- a field the user did not set takes the required value, recorded as a ``Decision``;
- a field the user set to the required value stands, and nothing is recorded;
- a field the user set to another value is a ``Conflict``; all conflicts are
  gathered and raised together as one ``ConflictError``, unless
  ``on_conflict="override"``, which replaces the value and records
  ``overrode_user=True``;
- an environment variable the caller's environment already holds with another value
  is a conflict the same way; decided variables go in ``Resolution.env`` and never
  into ``os.environ``;
- a ``Refusal`` is a conflict that no override can settle.

Without ``enable_deterministic_inference`` or ``rl_on_policy_target``, nothing is
decided and no device is detected.

Resolving a resolution's own ``args`` again decides no argument anew; the environment
decisions are stated again, because the environment is not part of ``ServerArgs``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Literal

from .decisions import Caution, Decision, Refusal
from .detection import detect
from .device import DeviceInfo, GpuInfo
from .engines import ENGINE
from .errors import Conflict, ConflictError, InvalidArgsError, UnsupportedDeviceError

if TYPE_CHECKING:
    from .sglang import Context, LaunchValues, ServerArgs, TargetVersion, VersionSource

__all__ = ["OnConflict", "Resolution", "resolve"]

DEFAULT_LAUNCHER: Final = ENGINE.default_launcher
OnConflict = Literal["error", "override"]
_MIN_CAPABILITY: Final = (8, 0)


class LaunchLine:
    """What a launch runs, for anything holding ``launcher``, ``argv`` and ``env``: the
    command, the arguments of ``subprocess.Popen``, one shell line."""

    launcher: tuple[str, ...]
    argv: tuple[str, ...]
    env: Mapping[str, str]

    @property
    def command(self) -> list[str]:
        """The launcher followed by the argv, ready for ``subprocess.Popen``."""
        return [*self.launcher, *self.argv]

    def popen_args(
        self, base_env: Mapping[str, str] | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """``(command, env)`` for ``subprocess.Popen``: the launch's env over ``base_env``.

        ``base_env`` defaults to a copy of ``os.environ``; neither is modified.
        """
        merged = dict(os.environ if base_env is None else base_env)
        merged.update(self.env)
        return self.command, merged

    def shell(self) -> str:
        """The launch as one POSIX shell line, every word quoted."""
        assignments = [f"{name}={shlex.quote(value)}" for name, value in sorted(self.env.items())]
        words = [*assignments, *(shlex.quote(word) for word in self.command)]
        return " ".join(words)


@dataclass(frozen=True)
class Resolution(LaunchLine):
    """One resolved launch: final arguments, argv, environment, and why."""

    values: LaunchValues
    """The final arguments as a plain record; ``args`` is the same as ``ServerArgs``."""
    argv: tuple[str, ...]
    env: Mapping[str, str]
    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...]
    device: DeviceInfo | None
    sglang_version: str
    launcher: tuple[str, ...] = DEFAULT_LAUNCHER
    gpu: GpuInfo | None = None
    """The GPU the rules keyed on (``gpu_index``, or the one kind visible)."""
    sglang_version_source: VersionSource = "explicit"
    """How the release was chosen: ``"explicit"`` (given), ``"installed"`` (the installed
    sglang's metadata) or ``"newest"`` (assumed: neither, so the newest catalogued)."""

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits naming this launch: argv, env, kernel target and release.

        The kernel target, not the GPU's name: an H100 and an H200 run the same launch.
        Computed on first use (hashlib loads OpenSSL, which a plain argv does not need).
        """
        import hashlib

        target = None if self.gpu is None else self.gpu.target
        payload = json.dumps(
            {
                "argv": list(self.argv),
                "env": dict(self.env),
                "capability": target,
                "sglang": self.sglang_version,
            },
            sort_keys=True,
            ensure_ascii=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode("ascii")).hexdigest()[:16]

    @cached_property
    def args(self) -> ServerArgs:
        """The final arguments: the user's plus every decision (built on first use)."""
        return ENGINE.args_of(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "env": dict(sorted(self.env.items())),
            "command": self.command,
            "decisions": [_decision_dict(d) for d in self.decisions],
            "warnings": list(self.warnings),
            "device": None if self.device is None else self.device.to_dict(),
            "sglang_version": self.sglang_version,
            "sglang_version_source": self.sglang_version_source,
            "sglang_version_assumed": self.sglang_version_source == "newest",
            "fingerprint": self.fingerprint,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def explain(self) -> str:
        """Each decision and why, as a readable table."""
        import textwrap  # only explain() wraps text

        lines = [f"{ENGINE.name} {self.sglang_version}" + _device_line(self.device, self.gpu)]
        width = max((len(_label(d)) for d in self.decisions), default=0)
        for decision in self.decisions:
            marker = ", replaced your value" if decision.overrode_user else ""
            lines.append(f"  {_label(decision).ljust(width)}  [{decision.rule}{marker}]")
            lines += textwrap.wrap(
                decision.reason,
                88,
                initial_indent=" " * 6,
                subsequent_indent=" " * 6,
                break_on_hyphens=False,
            )
        if not self.decisions:
            lines.append("  nothing decided: deterministic inference is not requested")
        for text in self.warnings:
            lines += textwrap.wrap(
                f"warning: {text}",
                88,
                initial_indent="  ",
                subsequent_indent=" " * 6,
                break_on_hyphens=False,
            )
        lines.append(f"fingerprint {self.fingerprint}")
        return "\n".join(lines)


def resolve(
    args: ServerArgs | Sequence[str],
    device: DeviceInfo | str | os.PathLike[str] | None = None,
    sglang_version: str | TargetVersion | None = None,
    on_conflict: OnConflict = "error",
    *,
    model_arch: str | None = None,
    gpu_index: int | None = None,
    environ: Mapping[str, str] | None = None,
    launcher: Sequence[str] = DEFAULT_LAUNCHER,
) -> Resolution:
    """Resolve a deterministic launch (see the module docstring for the engine's rules).

    ``args`` is a ``ServerArgs``, or the launcher's argv as a list of words, read as
    the target release's parser reads it (so the release is named once, here); what
    reading it assumed (a repeated flag, a flag without effect) is in ``warnings``.
    ``device`` is detected only when not given (``detect()`` precedence: argument, then
    ``DETARGS_DEVICE``, then NVML). ``environ`` is the environment the launch will
    inherit, read for conflicts only; it defaults to ``os.environ``.
    """
    _check_on_conflict(on_conflict)
    target = ENGINE.target_version(sglang_version)
    notes: Sequence[str] = ()
    if isinstance(args, (str, list, tuple)):
        values, notes = ENGINE.read_argv(args, target)
    else:
        record = ENGINE.values_of(args)
        if record is None:
            raise InvalidArgsError(
                f"resolve() takes ServerArgs or an argv list, not {type(args).__name__}"
            )
        values = record
    return _resolve_record(
        values,
        target,
        on_conflict,
        notes=notes,
        device=device,
        model_arch=model_arch,
        gpu_index=gpu_index,
        environ=environ,
        launcher=launcher,
    )


def _resolve_record(
    values: LaunchValues,
    target: TargetVersion,
    on_conflict: OnConflict = "error",
    *,
    notes: Sequence[str] = (),
    device: DeviceInfo | str | os.PathLike[str] | None = None,
    model_arch: str | None = None,
    gpu_index: int | None = None,
    environ: Mapping[str, str] | None = None,
    launcher: Sequence[str] = DEFAULT_LAUNCHER,
) -> Resolution:
    """``resolve`` of the plain record, private to the package: the CLI's way in, which
    keeps pydantic out of a cold ``detargs resolve``. ``notes`` are what reading the
    argv assumed; they go into the resolution's warnings after the target's."""
    _check_on_conflict(on_conflict)
    problem = ENGINE.refusal(values.set_values())
    if problem is not None:
        raise InvalidArgsError(problem)
    launcher = _checked_options(launcher, gpu_index)
    assumed = (*target.warnings, *notes)
    if not (values.enable_deterministic_inference or values.rl_on_policy_target is not None):
        given = device if isinstance(device, DeviceInfo) else None
        warnings = (*assumed, *(given.warnings if given is not None else ()))
        return _finish(values, {}, (), target, given, launcher, warnings, None)
    device_info = detect(device, environ=environ)
    gpu = device_info.launch_gpu(gpu_index)
    if gpu.vendor == "nvidia" and gpu.capability < _MIN_CAPABILITY:
        raise UnsupportedDeviceError(
            f"{gpu.name} ({gpu.target}) is older than sm80: {ENGINE.name}'s deterministic "
            "kernels need an Ampere or newer GPU; run on one, or resolve for one with "
            "--device a100 (device='a100')"
        )
    _check_fit(values, device_info, device)
    environment = os.environ if environ is None else environ
    context = ENGINE.context(
        values, gpu=gpu, target=target, model_arch=model_arch, environ=environment
    )  # read only: no copy of os.environ per call
    return _run_rules(
        context, on_conflict, device_info, launcher, (*assumed, *device_info.warnings)
    )


def _check_on_conflict(on_conflict: object) -> None:
    if on_conflict not in ("error", "override"):
        raise InvalidArgsError(
            f"on_conflict must be 'error' or 'override', not {on_conflict!r}", flag="--on-conflict"
        )


def _checked_options(launcher: Sequence[str], gpu_index: object) -> tuple[str, ...]:
    if isinstance(launcher, str) or not all(isinstance(word, str) for word in launcher):
        raise InvalidArgsError(
            f"launcher must be a list of words such as {list(ENGINE.default_launcher)} "
            f"(shlex.split a command line first), not {launcher!r}",
            flag="--launcher",
        )
    if gpu_index is not None and (isinstance(gpu_index, bool) or not isinstance(gpu_index, int)):
        raise InvalidArgsError(
            f"gpu_index must be a CUDA ordinal (an int), not {gpu_index!r}", flag="--gpu-index"
        )
    if not launcher:
        raise InvalidArgsError(
            "the launcher is empty; give a command such as "
            f"{shlex.join(ENGINE.default_launcher)!r}",
            flag="--launcher",
        )
    return tuple(launcher)


def _check_fit(args: LaunchValues, device: DeviceInfo, spec: object) -> None:
    """The launch's parallelism must fit ``--nnodes`` machines like this one."""
    label = (
        spec
        if isinstance(spec, str) and device.source == "profile"
        else (f"this machine ({device.count} x {device.gpus[0].name})")
    )
    problem = ENGINE.fit_problem(args, gpus_per_node=device.count, nnodes=args.nnodes, device=label)
    if problem is not None:
        raise InvalidArgsError(problem, flag="--tp-size")


def _run_rules(
    context: Context,
    on_conflict: OnConflict,
    device: DeviceInfo,
    launcher: tuple[str, ...],
    assumed: tuple[str, ...],
) -> Resolution:
    values = context.args.set_values()
    extra = dict(context.args.extra)
    env: dict[str, str] = {}
    decisions: list[Decision] = []
    conflicts: list[Conflict] = []
    release = context.target.release
    warnings: list[str] = [*assumed, *ENGINE.device_warnings(context.gpu)]
    if context.model.warning is not None:
        warnings.append(context.model.warning)
    for rule in ENGINE.rules():
        changed = False
        for decided in rule(context):
            outcome = replace(decided, rule=rule.__name__)  # the engine names the rule
            if isinstance(outcome, Caution):
                warnings.append(outcome.text)
                continue
            if isinstance(outcome, Refusal):
                conflicts.append(
                    Conflict(
                        ENGINE.flag_name(outcome.field, release),
                        outcome.value,
                        None,
                        outcome.rule,
                        outcome.reason,
                        fixable=False,
                    )
                )
                continue
            if outcome.kind == "note":
                decisions.append(outcome)
                continue
            if outcome.kind == "env":
                current = context.environ.get(outcome.field)
                if current is not None and current != outcome.value:
                    if on_conflict == "error":
                        conflicts.append(
                            Conflict(
                                f"${outcome.field}",
                                current,
                                outcome.value,
                                outcome.rule,
                                outcome.reason,
                            )
                        )
                        continue
                    outcome = replace(outcome, previous=current, overrode_user=True)
                env[outcome.field] = str(outcome.value)
                decisions.append(outcome)
                continue
            current = context.value(outcome.field)
            if context.is_set(outcome.field):
                if current == outcome.value:
                    continue
                if on_conflict == "error":
                    conflicts.append(
                        Conflict(
                            ENGINE.flag_name(outcome.field, release),
                            current,
                            outcome.value,
                            outcome.rule,
                            outcome.reason,
                        )
                    )
                    continue
                outcome = replace(outcome, previous=current, overrode_user=True)
            else:
                outcome = replace(outcome, previous=current)
            if outcome.field.startswith("extra.") and outcome.value is None:
                extra.pop(outcome.field.removeprefix("extra."), None)  # the flag is dropped
            elif outcome.field.startswith("extra."):
                extra[outcome.field.removeprefix("extra.")] = outcome.value
            else:
                values[outcome.field] = outcome.value
            decisions.append(outcome)
            changed = True
        if changed:
            context = replace(context, args=_rebuild(values, extra))
    if conflicts:
        raise ConflictError(conflicts)
    return _finish(
        context.args,
        env,
        tuple(decisions),
        context.target,
        device,
        launcher,
        tuple(warnings),
        context.gpu,
    )


def _rebuild(values: Mapping[str, Any], extra: Mapping[str, Any]) -> LaunchValues:
    # a rule may drop the last passthrough flag: the old mapping must not come back
    data = {name: value for name, value in values.items() if name != "extra"}
    if extra:
        data["extra"] = dict(extra)
    return ENGINE.record(data)


def _finish(
    args: LaunchValues,
    env: Mapping[str, str],
    decisions: tuple[Decision, ...],
    target: TargetVersion,
    device: DeviceInfo | None,
    launcher: tuple[str, ...],
    warnings: tuple[str, ...],
    gpu: GpuInfo | None,
) -> Resolution:
    argv = tuple(ENGINE.write_argv(args, target))
    env = dict(sorted(env.items()))
    return Resolution(
        values=args,
        argv=argv,
        env=env,
        decisions=decisions,
        warnings=warnings,
        device=device,
        sglang_version=target.release,
        launcher=launcher,
        gpu=gpu,
        sglang_version_source=target.source,
    )


def _label(decision: Decision) -> str:
    if decision.kind == "env":
        return f"${decision.field} = {decision.value}"
    if decision.kind == "note":
        shown = "unknown" if decision.field == "model" else "unchanged"
        return f"{decision.field}: {shown if decision.value is None else _show(decision.value)}"
    if decision.field.startswith("extra.") and decision.value is None:
        return f"{decision.field}: dropped"  # the engine removes a passthrough flag set to None
    return f"{decision.field} = {_show(decision.value)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _device_line(device: DeviceInfo | None, gpu: GpuInfo | None) -> str:
    if device is None or gpu is None:
        return ""
    return f" on {gpu.name} ({gpu.target}, {gpu.arch.value}) x{device.count}"


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "field": decision.field,
        "value": decision.value,
        "rule": decision.rule,
        "reason": decision.reason,
        "kind": decision.kind,
        "previous": decision.previous,
        "overrode_user": decision.overrode_user,
    }
