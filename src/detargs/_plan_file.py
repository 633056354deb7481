"""The plan file's format, and reading one strictly: every key, every type, nothing else.

A plan travels to every node (a shared file, a ConfigMap); a node must refuse one that
is not what ``detargs plan`` wrote rather than launch something else. ``read_fields``
checks a decoded plan and returns its fields for ``detargs.plan.Plan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .errors import InvalidArgsError

__all__ = ["PER_NODE_FIELDS", "PLAN_FORMAT", "bad_plan", "read_fields"]

PLAN_FORMAT: Final = 1
DEFAULT_DIST_PORT: Final = 50000
"""The port of ``--dist-init-addr`` on the leader unless ``detargs plan --dist-port``."""
PER_NODE_FIELDS: Final = ("nnodes", "node_rank", "dist_init_addr")
"""The only fields whose values differ between nodes, filled by ``launch_for_node``."""
_KEYS: Final = (
    "detargs_plan",
    "sglang_version",
    "nnodes",
    "gpus",
    "launcher",
    "argv",
    "env",
    "per_node_flags",
    "dist_port",
    "warnings",
    "fingerprint",
)


def read_fields(data: Any, source: str) -> dict[str, Any]:
    """The fields of the plan ``data`` (decoded JSON), ``gpus`` as ``(name, capability,
    vendor)`` and ``fingerprint`` as written; anything else is ``InvalidArgsError``."""
    if not isinstance(data, dict):
        raise bad_plan(source, "not a JSON object")
    if data.get("detargs_plan") != PLAN_FORMAT:
        raise bad_plan(
            source,
            f"detargs_plan is {data.get('detargs_plan')!r}, not "
            f"{PLAN_FORMAT}: not a plan this detargs reads",
        )
    keys = set(data)
    if keys != set(_KEYS):
        parts = []
        if keys - set(_KEYS):
            parts.append(f"unknown keys {', '.join(sorted(keys - set(_KEYS)))}")
        if set(_KEYS) - keys:
            parts.append(f"missing keys {', '.join(sorted(set(_KEYS) - keys))}")
        raise bad_plan(source, "; ".join(parts))
    try:
        fields = {
            "sglang_version": _typed(data, "sglang_version", str),
            "nnodes": _positive(data, "nnodes"),
            "gpus": tuple(
                _gpu(item, number) for number, item in enumerate(_typed(data, "gpus", list))
            ),
            "argv": _words(data, "argv"),
            "env": _strings(data, "env"),
            "launcher": _words(data, "launcher"),
            "per_node_flags": _flags(data),
            "dist_port": _port(data),
            "warnings": _words(data, "warnings"),
            "fingerprint": data["fingerprint"],
        }
    except ValueError as error:
        raise bad_plan(source, str(error)) from None
    if not fields["gpus"] or not fields["launcher"]:
        raise bad_plan(source, "gpus and launcher must not be empty")
    return fields


def bad_plan(source: str, problem: str) -> InvalidArgsError:
    return InvalidArgsError(
        f"--plan {source!r}: {problem}; write the plan with detargs plan", flag="--plan"
    )


def _typed(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{key} must be a {kind.__name__}, not {value!r}")
    return value


def _positive(data: Mapping[str, Any], key: str) -> int:
    value: int = _typed(data, key, int)
    if value < 1:
        raise ValueError(f"{key} must be at least 1, not {value}")
    return value


def _port(data: Mapping[str, Any]) -> int:
    value: int = _typed(data, "dist_port", int)
    if not 0 < value <= 65535:
        raise ValueError(f"dist_port must be a port from 1 to 65535, not {value}")
    return value


def _words(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = _typed(data, key, list)
    if not all(isinstance(word, str) for word in value):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(value)


def _strings(data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _typed(data, key, dict)
    if not all(isinstance(name, str) and isinstance(text, str) for name, text in value.items()):
        raise ValueError(f"{key} must map names to strings")
    return dict(value)


def _flags(data: Mapping[str, Any]) -> dict[str, str]:
    value = _strings(data, "per_node_flags")
    if set(value) != set(PER_NODE_FIELDS) or not all(
        flag.startswith("--") for flag in value.values()
    ):
        raise ValueError(
            f"per_node_flags must give the flag of each of {', '.join(PER_NODE_FIELDS)}"
        )
    return value


def _gpu(item: Any, number: int) -> tuple[str, str, str]:
    if (
        not isinstance(item, dict)
        or set(item) != {"name", "capability", "vendor"}
        or not all(isinstance(value, str) for value in item.values())
    ):
        raise ValueError(f"gpus[{number}] must be {{name, capability, vendor}} strings")
    return item["name"], item["capability"], item["vendor"]
