"""What a rule returns: a decided value, a refusal, or a caution, each with its reason.

These are the engine-neutral results the resolution engine (``detargs.resolution``)
applies; an engine's rules build them with keywords and the engine fills in ``rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Caution", "Decision", "Outcome", "Refusal"]

DecisionKind = Literal["arg", "env", "note"]


@dataclass(frozen=True, kw_only=True)
class Decision:
    """A value a rule decided, and why.

    ``kind`` is ``arg`` for a ``ServerArgs`` field (``extra.<dest>`` for a passthrough
    flag; ``None`` drops that flag), ``env`` for an environment variable of the launch,
    ``note`` for something the rule checked and left as it is (``value`` is then what
    stands).
    """

    field: str
    value: Any
    reason: str
    kind: DecisionKind = "arg"
    rule: str = ""
    """The rule that decided it; the engine fills it in."""
    previous: Any = None
    """The value before the decision (the user's, when ``overrode_user``)."""
    overrode_user: bool = False


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """An incompatibility that no value of ``field`` can fix: the user must drop it."""

    field: str
    value: Any
    reason: str
    rule: str = ""


@dataclass(frozen=True, kw_only=True)
class Caution:
    """Something the launch should know that no value changes: it becomes a warning."""

    text: str
    rule: str = ""


Outcome = Decision | Refusal | Caution
