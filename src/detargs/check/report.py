"""What a check found: per-probe verdicts, the first divergence, and the JSON form.

Pure data and comparison; no HTTP. A request's output is compared bit for bit: token
by token, and logprob by logprob (``repr`` of the float, so ``-0.0`` and ``0.0`` differ
and a last-bit change shows) when both outputs carry logprobs; by text when a server
returns no tokens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

from ..errors import CheckError

__all__ = [
    "PROBES",
    "REPORT_SCHEMA",
    "SHORT",
    "CheckOptions",
    "CheckReport",
    "Divergence",
    "GroupResult",
    "Output",
    "ProbeResult",
    "first_divergence",
]

SCHEMA_VERSION: Final = 1
PROBES: Final = ("batch", "repeat", "prefix", "seeded")
Value = int | float | str | None
Compared = Literal["tokens+logprobs", "tokens", "text"]


@dataclass(frozen=True)
class Output:
    """One request's answer, as the protocol adapter read it."""

    text: str
    tokens: tuple[int | str, ...] = ()
    """Token ids (SGLang's ``/generate``) or token strings (``/v1/completions``)."""
    logprobs: tuple[float | None, ...] | None = None
    """One logprob per token, as the server sent them (``None`` for a null one); ``None``
    when it sent none."""

    def compared_by(self, other: Output) -> Compared:
        if self.tokens and other.tokens:
            if self.logprobs is not None and other.logprobs is not None:
                return "tokens+logprobs"
            return "tokens"
        return "text"

    def key(self, how: Compared) -> tuple[object, ...]:
        """What two outputs must share to count as one output (floats by repr: bitwise)."""
        if how == "text":
            return (self.text,)
        if how == "tokens":
            return (self.tokens,)
        return (self.tokens, tuple(repr(value) for value in self.logprobs or ()))


@dataclass(frozen=True)
class Divergence:
    """Where one run first differs from the first run of the same request."""

    group: str
    """Which request (its label in the probe)."""
    reference: str
    """The run compared against: the request's first run."""
    run: str
    """The run that differs, with its batch composition."""
    position: int
    """Token position (character position when compared by text), from 0."""
    field: Literal["token", "logprob", "text", "length"]
    expected: Value
    """The reference's value at ``position`` (for ``length``: its number of tokens)."""
    actual: Value

    def describe(self) -> str:
        what = {"token": "token", "logprob": "logprob", "text": "text", "length": "output length"}[
            self.field
        ]
        where = "" if self.field == "length" else f" at position {self.position}"
        return (
            f"{self.group}: {what}{where} differs: {_show(self.expected)} in "
            f"'{self.reference}', {_show(self.actual)} in '{self.run}'"
        )


@dataclass(frozen=True)
class GroupResult:
    """One request sent several times within a probe."""

    label: str
    runs: int
    unique_outputs: int


@dataclass(frozen=True)
class ProbeResult:
    """The verdict of one probe: deterministic when every request had one output."""

    name: str
    description: str
    runs: int
    unique_outputs: int
    """The most distinct outputs any one request of the probe gave."""
    groups: tuple[GroupResult, ...]
    divergence: Divergence | None = None
    notes: tuple[str, ...] = ()

    @property
    def deterministic(self) -> bool:
        return self.unique_outputs <= 1

    def describe(self) -> str:
        verdict = "deterministic" if self.deterministic else "NOT deterministic"
        line = (
            f"{self.name:<7} {verdict}: {self.unique_outputs} unique output"
            f"{'' if self.unique_outputs == 1 else 's'} in {self.runs} runs"
        )
        lines = [line]
        if self.divergence is not None:
            lines.append(f"        first divergence: {self.divergence.describe()}")
        lines += [f"        note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class CheckOptions:
    """What a check sends. The defaults finish in seconds against a GPU server."""

    probes: tuple[str, ...] = PROBES
    max_new_tokens: int = 32
    trials: int = 3
    others: tuple[int, ...] = (1, 3, 7, 15, 31)
    """How many other prompts go out together with the probe prompt, per burst."""
    repeats: int = 8
    prefix_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    prompt_words: int = 300
    """Length of the probe prompt in words (fillers vary around it)."""
    temperature: float = 1.0
    """Temperature of the seeded-sampling probe (the others decode greedily)."""
    seed: int = 1234
    timeout_s: float = 60.0
    """Per request."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.probes if name not in PROBES]
        if unknown or not self.probes:
            raise ValueError(
                f"probes must be among {', '.join(PROBES)} (got {', '.join(self.probes) or 'none'})"
            )
        for name in ("max_new_tokens", "trials", "repeats", "prompt_words"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if not self.others or min(self.others) < 1:
            raise ValueError(f"others must be counts of at least 1 (got {list(self.others)})")
        if not self.prefix_fractions or not all(0 < f < 1 for f in self.prefix_fractions):
            raise ValueError(
                "prefix_fractions must lie strictly between 0 and 1 "
                f"(got {list(self.prefix_fractions)})"
            )
        # finite too: JSON has no infinity, neither in a request nor in a --json report
        if not 0 < self.temperature < math.inf:
            raise ValueError(
                f"temperature must be a finite number above 0 (got {self.temperature})"
            )
        if not 0 < self.timeout_s < math.inf:
            raise ValueError(f"timeout_s must be a finite number above 0 (got {self.timeout_s})")


SHORT: Final = CheckOptions(
    max_new_tokens=16,
    trials=2,
    others=(3, 15),
    repeats=4,
    prefix_fractions=(0.5,),
    prompt_words=200,
)
"""A shorter check for test fixtures: 61 requests instead of the default 337."""


@dataclass(frozen=True)
class CheckReport:
    """Everything one check found; ``deterministic`` is the verdict."""

    url: str
    api: str
    model: str | None
    compared: Compared
    """The strictest comparison every pair of outputs allowed."""
    options: CheckOptions
    probes: tuple[ProbeResult, ...]
    requests: int
    elapsed_s: float
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def deterministic(self) -> bool:
        return all(probe.deterministic for probe in self.probes)

    @property
    def divergences(self) -> tuple[Divergence, ...]:
        return tuple(p.divergence for p in self.probes if p.divergence is not None)

    def summary(self) -> str:
        verdict = "deterministic" if self.deterministic else "NOT deterministic"
        head = (
            f"{self.url} ({self.api}{', ' + self.model if self.model else ''}): {verdict}; "
            f"{self.requests} requests in {self.elapsed_s:.1f} s, outputs compared by "
            f"{self.compared}"
        )
        lines = [head, *(probe.describe() for probe in self.probes)]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deterministic"] = self.deterministic
        for probe, result in zip(data["probes"], self.probes, strict=True):
            probe["deterministic"] = result.deterministic
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> CheckReport:
        """Read a report written by ``to_json`` (``detargs check --json``)."""
        try:
            data = json.loads(text)
            return _report(data)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise CheckError(f"not a detargs check report: {error}") from None


def first_divergence(
    group: str, runs: Sequence[tuple[str, Output]], how: Compared
) -> Divergence | None:
    """The first run of ``runs`` whose output differs from the first, and where."""
    if not runs:
        return None
    reference_label, reference = runs[0]
    for label, output in runs[1:]:
        found = _differ(reference, output, how)
        if found is not None:
            position, kind, expected, actual = found
            return Divergence(group, reference_label, label, position, kind, expected, actual)
    return None


def _differ(a: Output, b: Output, how: Compared) -> tuple[int, Any, Value, Value] | None:
    if how == "text":
        for position, (mine, theirs) in enumerate(zip(a.text, b.text, strict=False)):
            if mine != theirs:
                return (
                    position,
                    "text",
                    a.text[position : position + 16],
                    b.text[position : position + 16],
                )
        if len(a.text) != len(b.text):
            at = min(len(a.text), len(b.text))
            return at, "text", a.text[at : at + 16], b.text[at : at + 16]
        return None
    for position, (x, y) in enumerate(zip(a.tokens, b.tokens, strict=False)):
        if x != y:
            return position, "token", x, y
        if how == "tokens+logprobs":
            assert a.logprobs is not None
            assert b.logprobs is not None
            if position < min(len(a.logprobs), len(b.logprobs)):
                p, q = a.logprobs[position], b.logprobs[position]
                if repr(p) != repr(q):
                    return position, "logprob", p, q
    if len(a.tokens) != len(b.tokens):
        return min(len(a.tokens), len(b.tokens)), "length", len(a.tokens), len(b.tokens)
    return None


def _show(value: Value) -> str:
    return repr(value)


def _report(data: Mapping[str, Any]) -> CheckReport:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
    options = data["options"]
    probes = tuple(
        ProbeResult(
            name=p["name"],
            description=p["description"],
            runs=p["runs"],
            unique_outputs=p["unique_outputs"],
            groups=tuple(GroupResult(**g) for g in p["groups"]),
            divergence=Divergence(**p["divergence"]) if p["divergence"] else None,
            notes=tuple(p["notes"]),
        )
        for p in data["probes"]
    )
    names = {f.name for f in fields(CheckOptions)}
    values: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in options.items()
        if key in names
    }
    return CheckReport(
        url=data["url"],
        api=data["api"],
        model=data["model"],
        compared=data["compared"],
        options=CheckOptions(**values),
        probes=probes,
        requests=data["requests"],
        elapsed_s=data["elapsed_s"],
        notes=tuple(data["notes"]),
        schema_version=data["schema_version"],
    )


_VALUE: Final[dict[str, Any]] = {"type": ["integer", "number", "string", "null"]}
_DIVERGENCE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["group", "reference", "run", "position", "field", "expected", "actual"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},
        "reference": {"type": "string"},
        "run": {"type": "string"},
        "position": {"type": "integer", "minimum": 0},
        "field": {"enum": ["token", "logprob", "text", "length"]},
        "expected": _VALUE,
        "actual": _VALUE,
    },
}
_PROBE: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "name",
        "description",
        "deterministic",
        "runs",
        "unique_outputs",
        "groups",
        "divergence",
        "notes",
    ],
    "additionalProperties": False,
    "properties": {
        "name": {"enum": list(PROBES)},
        "description": {"type": "string"},
        "deterministic": {"type": "boolean"},
        "runs": {"type": "integer", "minimum": 0},
        "unique_outputs": {"type": "integer", "minimum": 0},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "runs", "unique_outputs"],
                "additionalProperties": False,
                "properties": {
                    "label": {"type": "string"},
                    "runs": {"type": "integer"},
                    "unique_outputs": {"type": "integer"},
                },
            },
        },
        "divergence": {"oneOf": [{"type": "null"}, _DIVERGENCE]},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
_INTS: Final[dict[str, Any]] = {"type": "array", "items": {"type": "integer", "minimum": 1}}
REPORT_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "detargs check report",
    "type": "object",
    "required": [
        "schema_version",
        "url",
        "api",
        "model",
        "deterministic",
        "compared",
        "options",
        "probes",
        "requests",
        "elapsed_s",
        "notes",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "url": {"type": "string"},
        "api": {"enum": ["sglang", "openai"]},
        "model": {"type": ["string", "null"]},
        "deterministic": {"type": "boolean"},
        "compared": {"enum": ["tokens+logprobs", "tokens", "text"]},
        "options": {
            "type": "object",
            "required": [f.name for f in fields(CheckOptions)],
            "additionalProperties": False,
            "properties": {
                "probes": {"type": "array", "items": {"enum": list(PROBES)}},
                "max_new_tokens": {"type": "integer", "minimum": 1},
                "trials": {"type": "integer", "minimum": 1},
                "others": _INTS,
                "repeats": {"type": "integer", "minimum": 1},
                "prefix_fractions": {"type": "array", "items": {"type": "number"}},
                "prompt_words": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number"},
                "seed": {"type": "integer"},
                "timeout_s": {"type": "number"},
            },
        },
        "probes": {"type": "array", "items": _PROBE},
        "requests": {"type": "integer", "minimum": 0},
        "elapsed_s": {"type": "number", "minimum": 0},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
