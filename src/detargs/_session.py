"""Session-wide defaults for fixture classes, set by the pytest plugin's options.

``pytest --detargs-device b200 --detargs-sglang-version 0.5.10`` must reach every
``DeterministicServerMixin`` class that leaves ``device`` or ``sglang_version`` unset;
the plugin stores the options here at start-up and clears them when the session ends.
A plain module, so neither side imports the other (the mixin works without pytest).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SessionDefaults", "current", "set_defaults"]


@dataclass(frozen=True)
class SessionDefaults:
    device: str | None = None
    sglang_version: str | None = None


_current = SessionDefaults()


def current() -> SessionDefaults:
    return _current


def set_defaults(defaults: SessionDefaults) -> None:
    global _current
    _current = defaults
