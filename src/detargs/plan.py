"""One deterministic launch for every node of a multi-node SGLang server.

``make_plan`` resolves once for the whole cluster: the per-node GPUs (a profile, or the
``detect --json`` reports of the nodes, which must agree), the SGLang release, the
argv and env every node shares. ``Plan`` is that result as a value, saved as JSON with
a fingerprint. On each node, ``Plan.check_node`` compares the node with the plan (its
GPUs, its SGLang, the node count, its rank) and ``Plan.launch_for_node`` adds the only
words that differ between nodes: ``--nnodes N --node-rank R --dist-init-addr HOST:PORT``,
at the end of the argv, in that order.

>>> plan = make_plan(ENGINE.record({"enable_deterministic_inference": True,
...                                  "tp_size": 16}),
...                  nnodes=2, device="h100x8", sglang_version="0.5.23")
>>> node = plan.launch_for_node(NodePlacement(rank=1, nnodes=2, leader="gpu-01"))
>>> node.argv[-6:]
('--nnodes', '2', '--node-rank', '1', '--dist-init-addr', 'gpu-01:50000')
>>> Plan.from_json(plan.to_json()) == plan
True
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from ._plan_file import PER_NODE_FIELDS, PLAN_FORMAT, bad_plan, read_fields
from .detection import DeviceSpec, detect
from .device import DeviceInfo
from .engines import ENGINE
from .errors import InvalidArgsError, PlanMismatchError
from .nodes import NodePlacement
from .resolution import LaunchLine, OnConflict, _resolve_record

if TYPE_CHECKING:
    from .sglang import LaunchValues, ServerArgs, TargetVersion

__all__ = ["DEFAULT_DIST_PORT", "NodeLaunch", "Plan", "make_plan"]

DEFAULT_DIST_PORT: Final = 50000
"""The port of ``--dist-init-addr`` on the leader unless ``detargs plan --dist-port``."""


@dataclass(frozen=True)
class PlanGpu:
    """One GPU of a node as the plan requires it: what NVML says of it."""

    name: str
    capability: str
    """``major.minor``, e.g. ``9.0``."""
    vendor: str = "nvidia"

    def describe(self) -> str:
        return f"{self.name} ({self.capability})"


@dataclass(frozen=True)
class NodeLaunch(LaunchLine):
    """What one node runs: the launcher, the shared argv plus its per-node flags, the env."""

    launcher: tuple[str, ...]
    argv: tuple[str, ...]
    env: Mapping[str, str]
    placement: NodePlacement

    def to_json(self) -> str:
        """This node's launch as JSON: its rank, node count and leader, command, argv, env."""
        return json.dumps(
            {
                "node_rank": self.placement.rank,
                "nnodes": self.placement.nnodes,
                "leader": self.placement.leader,
                "command": self.command,
                "argv": list(self.argv),
                "env": dict(sorted(self.env.items())),
            },
            indent=2,
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class Plan:
    """A resolved multi-node launch (see the module docstring)."""

    sglang_version: str
    """The SGLang release every node must have installed."""
    nnodes: int
    gpus: tuple[PlanGpu, ...]
    """Every node's GPUs, in CUDA order."""
    argv: tuple[str, ...]
    """The argv every node shares (without the per-node flags)."""
    env: Mapping[str, str]
    launcher: tuple[str, ...] = ENGINE.default_launcher
    per_node_flags: Mapping[str, str] = field(
        default_factory=lambda: {
            "nnodes": "--nnodes",
            "node_rank": "--node-rank",
            "dist_init_addr": "--dist-init-addr",
        }
    )
    """How the target release spells the per-node flags, by field."""
    dist_port: int = DEFAULT_DIST_PORT
    warnings: tuple[str, ...] = ()

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits naming the plan: everything in it but its warnings."""
        import hashlib

        data = self._content()
        payload = json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode("ascii")).hexdigest()[:16]

    def _content(self) -> dict[str, Any]:
        return {
            "detargs_plan": PLAN_FORMAT,
            "sglang_version": self.sglang_version,
            "nnodes": self.nnodes,
            "gpus": [
                {"name": gpu.name, "capability": gpu.capability, "vendor": gpu.vendor}
                for gpu in self.gpus
            ],
            "launcher": list(self.launcher),
            "argv": list(self.argv),
            "env": dict(sorted(self.env.items())),
            "per_node_flags": {name: self.per_node_flags[name] for name in PER_NODE_FIELDS},
            "dist_port": self.dist_port,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self._content(), "warnings": list(self.warnings), "fingerprint": self.fingerprint}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "the plan") -> Plan:
        """Read a plan written by ``to_json``; ``InvalidArgsError`` (``--plan``) says what
        is wrong, naming ``source``."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise bad_plan(source, f"not JSON ({error})") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the plan") -> Plan:
        fields = read_fields(data, source)
        gpus = tuple(PlanGpu(*gpu) for gpu in fields.pop("gpus"))
        fingerprint = fields.pop("fingerprint")
        plan = cls(gpus=gpus, **fields)
        if fingerprint != plan.fingerprint:
            raise bad_plan(
                source,
                f"its fingerprint {fingerprint!r} does not match its content "
                f"({plan.fingerprint}): it was changed after detargs plan wrote it; write it "
                "again with detargs plan",
            )
        return plan

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Plan:
        where = os.fspath(path)
        try:
            with open(where, "rb") as file:
                text = file.read()
        except OSError as error:
            raise InvalidArgsError(
                f"--plan {where!r}: cannot read it ({error.strerror}); give the file "
                "detargs plan -o wrote",
                flag="--plan",
            ) from None
        return cls.from_json(text, source=where)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the plan to ``path`` atomically: a temporary file beside it, renamed."""
        where = os.path.abspath(os.fspath(path))
        directory = os.path.dirname(where)
        try:
            handle, temporary = tempfile.mkstemp(prefix=".plan-", suffix=".tmp", dir=directory)
        except OSError as error:
            raise InvalidArgsError(
                f"-o {os.fspath(path)!r}: cannot write there ({error.strerror})", flag="-o"
            ) from None
        try:
            # mkstemp makes it private (0600); a plan is read by every node's account
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(handle, 0o666 & ~umask)
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(self.to_json())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, where)
        except OSError as error:
            os.unlink(temporary)
            raise InvalidArgsError(
                f"-o {os.fspath(path)!r}: cannot write it ({error.strerror})", flag="-o"
            ) from None
        except BaseException:
            os.unlink(temporary)
            raise

    def node_argv(self, placement: NodePlacement) -> tuple[str, ...]:
        """The shared argv plus this node's ``--nnodes``, ``--node-rank``, ``--dist-init-addr``."""
        flags = self.per_node_flags
        words = [
            *self.argv,
            flags["nnodes"],
            str(placement.nnodes),
            flags["node_rank"],
            str(placement.rank),
        ]
        if placement.leader is not None:
            port = self.dist_port if placement.leader_port is None else placement.leader_port
            host = f"[{placement.leader}]" if ":" in placement.leader else placement.leader
            words += [flags["dist_init_addr"], f"{host}:{port}"]
        elif self.nnodes > 1:
            raise InvalidArgsError(
                "the leader's address is not known: run under srun (SLURM_JOB_NODELIST) or a "
                "LeaderWorkerSet (LWS_LEADER_ADDRESS), or pass --dist-init-addr HOST:PORT",
                flag="--dist-init-addr",
            )
        return tuple(words)

    def launch_for_node(
        self, placement: NodePlacement, *, launcher: Sequence[str] | None = None
    ) -> NodeLaunch:
        """What the node at ``placement`` runs; ``launcher`` replaces the plan's."""
        chosen = self.launcher if launcher is None else tuple(launcher)
        return NodeLaunch(
            launcher=chosen, argv=self.node_argv(placement), env=dict(self.env), placement=placement
        )

    def differences(
        self, placement: NodePlacement, device: DeviceInfo, installed: str | None
    ) -> list[str]:
        """What differs between this plan and a node (empty: the node matches)."""
        found = []
        if placement.nnodes != self.nnodes:
            found.append(
                f"node count: plan {self.nnodes}, this launch {placement.nnodes} "
                f"(from {_source(placement)})"
            )
        if not 0 <= placement.rank < self.nnodes:
            found.append(
                f"node rank: {placement.rank} is outside 0..{self.nnodes - 1} "
                f"(from {_source(placement)})"
            )
        found += _gpu_differences(self.gpus, device)
        if installed is None:
            found.append(
                f"SGLang: plan {self.sglang_version}, this node has no sglang "
                "installed (no sglang dist-info on sys.path)"
            )
        elif not _same_version(installed, self.sglang_version):
            found.append(f"SGLang: plan {self.sglang_version}, this node {installed}")
        return found

    def check_node(
        self,
        placement: NodePlacement,
        *,
        device: DeviceSpec | None = None,
        environ: Mapping[str, str] | None = None,
        installed: Callable[[], str | None] = ENGINE.installed_version,
        hostname: str | None = None,
    ) -> None:
        """Raise ``PlanMismatchError`` (exit 4) naming this node and every difference.

        The node's GPUs come from ``detect(device, environ=environ)`` (``DETARGS_DEVICE``,
        then NVML), its SGLang from ``installed()``.
        """
        info = detect(device, environ=environ)
        found = self.differences(placement, info, installed())
        if found:
            raise PlanMismatchError(
                _node_name(placement, hostname), placement.rank, found, fingerprint=self.fingerprint
            )


def make_plan(
    args: ServerArgs | LaunchValues,
    *,
    nnodes: int,
    device: DeviceSpec | None = None,
    node_reports: Iterable[str | os.PathLike[str]] = (),
    sglang_version: str | TargetVersion | None = None,
    on_conflict: OnConflict = "error",
    model_arch: str | None = None,
    gpu_index: int | None = None,
    launcher: Sequence[str] = ENGINE.default_launcher,
    dist_port: int = DEFAULT_DIST_PORT,
    environ: Mapping[str, str] | None = None,
) -> Plan:
    """Resolve one launch for ``nnodes`` nodes of one kind (see the module docstring).

    The nodes' GPUs are ``device`` (as ``detect()`` takes it), or the saved reports in
    ``node_reports``, which must all describe the same GPUs. ``--tp-size x --pp-size``
    (x ``--dp-size`` without DP attention) must fit ``nnodes`` x the GPUs of one node.
    """
    _check_counts(nnodes, dist_port)
    values = _values(args)
    given = [name for name in PER_NODE_FIELDS if name in values.fields_set]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InvalidArgsError(
            f"{flags} differ per node and are filled in on each node by detargs launch --plan; "
            "drop them from the SGLang arguments (give detargs plan --nnodes instead)",
            flag="--" + given[0].replace("_", "-"),
        )
    node_device, warnings = _nodes_device(device, node_reports, nnodes, environ)
    target = ENGINE.target_version(sglang_version)
    problem = ENGINE.fit_problem(
        values, gpus_per_node=node_device.count, nnodes=nnodes, device=_label(device, node_device)
    )
    if problem is not None:
        raise InvalidArgsError(problem, flag="--tp-size")
    resolution = _resolve_record(
        ENGINE.record({**values.set_values(), "nnodes": nnodes}),
        target,
        on_conflict,
        device=node_device,
        model_arch=model_arch,
        gpu_index=gpu_index,
        environ=environ,
        launcher=launcher,
    )
    shared = {
        name: value
        for name, value in resolution.values.set_values().items()
        if name not in PER_NODE_FIELDS
    }
    return Plan(
        sglang_version=target.requested.strip() if target.requested else target.release,
        nnodes=nnodes,
        gpus=tuple(PlanGpu(gpu.name, str(gpu.capability), gpu.vendor) for gpu in node_device.gpus),
        argv=tuple(ENGINE.write_argv(ENGINE.record(shared), target)),
        env=dict(resolution.env),
        launcher=resolution.launcher,
        per_node_flags={name: ENGINE.flag_name(name, target.release) for name in PER_NODE_FIELDS},
        dist_port=dist_port,
        warnings=(*resolution.warnings, *warnings),
    )


def _check_counts(nnodes: object, dist_port: object) -> None:
    if isinstance(nnodes, bool) or not isinstance(nnodes, int) or nnodes < 1:
        raise InvalidArgsError(
            f"--nnodes must be a whole number of at least 1, not {nnodes!r}", flag="--nnodes"
        )
    if (
        isinstance(dist_port, bool)
        or not isinstance(dist_port, int)
        or not (0 < dist_port <= 65535)
    ):
        raise InvalidArgsError(
            f"--dist-port must be a port from 1 to 65535, not {dist_port!r}", flag="--dist-port"
        )


def _nodes_device(
    device: DeviceSpec | None,
    node_reports: Iterable[str | os.PathLike[str]],
    nnodes: int,
    environ: Mapping[str, str] | None,
) -> tuple[DeviceInfo, list[str]]:
    """The GPUs of one node, from ``device`` or the saved reports, and what that assumed."""
    reports = [os.fspath(path) for path in node_reports]
    if not reports:
        return detect(device, environ=environ), []
    if device is not None:
        raise InvalidArgsError(
            "give the nodes' GPUs once: --device or --node-report, not both", flag="--node-report"
        )
    if len(reports) > nnodes:
        raise InvalidArgsError(
            f"{len(reports)} node reports for --nnodes {nnodes}: give one per node at most",
            flag="--node-report",
        )
    if len(reports) < nnodes:
        return _agreeing(reports), [
            f"{len(reports)} node reports for {nnodes} nodes: the other "
            "nodes are checked against them when they launch"
        ]
    return _agreeing(reports), []


def _values(args: ServerArgs | LaunchValues) -> LaunchValues:
    if ENGINE.is_record(args):
        return args
    values = ENGINE.values_of(args)
    if values is None:
        raise InvalidArgsError(f"make_plan() takes ServerArgs, not {type(args).__name__}")
    return values


def _label(spec: DeviceSpec | None, device: DeviceInfo) -> str:
    if isinstance(spec, str) and device.source == "profile":
        return spec
    return f"nodes of {device.count} x {device.gpus[0].name}" if device.gpus else "the nodes"


def _signature(device: DeviceInfo) -> tuple[tuple[str, str, str], ...]:
    return tuple((gpu.name, str(gpu.capability), gpu.vendor) for gpu in device.gpus)


def _agreeing(reports: list[str]) -> DeviceInfo:
    """The device every report describes; ``InvalidArgsError`` naming those that differ."""
    from .detection import load
    from .errors import DeviceDetectionError

    first: DeviceInfo | None = None
    seen: dict[bytes, DeviceInfo] = {}
    odd: list[str] = []
    for path in reports:
        try:
            with open(path, "rb") as file:
                text = file.read()
        except OSError as error:
            raise InvalidArgsError(
                f"--node-report {path!r}: cannot read it ({error.strerror})", flag="--node-report"
            ) from None
        info = seen.get(text)
        if info is None:
            try:
                info = load(path)
            except DeviceDetectionError as error:
                raise InvalidArgsError(f"--node-report: {error}", flag="--node-report") from None
            seen[text] = info
        if first is None:
            first = info
            if not info.gpus:
                raise InvalidArgsError(
                    f"--node-report {path!r} shows no GPU: {info.empty_reason}",
                    flag="--node-report",
                )
        elif _signature(info) != _signature(first):
            odd.append(f"{path} ({_summary(info)})")
    assert first is not None
    if odd:
        shown = "; ".join(odd[:5]) + (f"; and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise InvalidArgsError(
            f"the node reports disagree: {reports[0]} has {_summary(first)}, but {shown}. One "
            "plan runs the same launch on every node: plan the nodes of each kind apart, or "
            "leave the odd ones out",
            flag="--node-report",
        )
    return first


def _summary(device: DeviceInfo) -> str:
    kinds: dict[str, int] = {}
    for gpu in device.gpus:
        label = f"{gpu.name} ({gpu.capability})"
        kinds[label] = kinds.get(label, 0) + 1
    return ", ".join(f"{count} x {label}" for label, count in kinds.items()) or "no GPU"


def _gpu_differences(planned: tuple[PlanGpu, ...], device: DeviceInfo) -> list[str]:
    found = []
    if device.count != len(planned):
        found.append(f"GPU count: plan {len(planned)}, this node {device.count}")
    pairs: dict[tuple[str, str], list[int]] = {}
    for index, (want, gpu) in enumerate(zip(planned, device.gpus, strict=False)):
        have = PlanGpu(gpu.name, str(gpu.capability), gpu.vendor)
        if have != want:
            pairs.setdefault((want.describe(), have.describe()), []).append(index)
    for (want_text, have_text), indices in pairs.items():
        which = "GPU" if len(indices) == 1 else "GPUs"
        found.append(f"{which} {_ranges(indices)}: plan {want_text}, this node {have_text}")
    return found


def _ranges(indices: list[int]) -> str:
    if len(indices) > 1 and indices == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}-{indices[-1]}"
    return ",".join(str(index) for index in indices)


def _same_version(installed: str, planned: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(installed) == Version(planned)
    except InvalidVersion:
        return installed.strip() == planned.strip()


def _source(placement: NodePlacement) -> str:
    return {
        "slurm": "SLURM_NNODES/SLURM_NODEID",
        "lws": "LWS_GROUP_SIZE/LWS_WORKER_INDEX",
        "explicit": "--nnodes/--node-rank",
    }[placement.source]


def _node_name(placement: NodePlacement, hostname: str | None) -> str:
    host = hostname or socket.gethostname()
    return host if placement.name in (None, host) else f"{host} ({placement.name})"
