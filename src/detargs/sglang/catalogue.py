"""The SGLang launch-flag catalogue: every flag of every catalogued release.

The data lives in ``_data/sglang_flags.json``, generated from the released wheels by
``tools/build_catalogue.py`` (never edited by hand). Its shape::

    {
      "format": 1,
      "releases": ["0.5.3", "0.5.3.post1", ..., "0.5.23"],      # ascending
      "flags": [                                                 # one entry per span
        {"first": "0.5.10", "last": "0.5.13.post1",              # inclusive, catalogued releases
         "options": ["--disable-piecewise-cuda-graph"],          # canonical first
         "dest": "disable_piecewise_cuda_graph",
         "kind": "store_true",                                   # see FlagKind
         "type": null,                                           # str|int|float|json|fn:NAME
         "choices": null, "default": false, "const": null,
         "nargs": null,                                          # "+", "*", "?", an int, or null
         "required": false,
         "replaced_by": null},                                   # a deprecated flag's successor
        ...
      ],
      "rejected": [                                              # flags the parser knows
        {"first": "0.5.3", "last": "0.5.4",                      # only to refuse them
         "options": ["--enable-ep-moe"], "dest": "enable_ep_moe"}, ...
      ]
    }

A flag whose facts are identical in consecutive releases is one entry, so the file
stays small; an entry's span is also a ``packaging`` specifier (``Flag.specifier``).

Only the target release's flags are materialised, on first use, and cached: loading
for one version never builds the others.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from packaging.version import Version

if TYPE_CHECKING:  # imported when first used: packaging.specifiers costs ~5 ms to import
    from packaging.specifiers import SpecifierSet

__all__ = [
    "Catalogue",
    "Flag",
    "FlagKind",
    "catalogue_for",
    "dest_history",
    "flag_history",
    "known_options",
    "refused_by",
    "releases",
]

FlagKind = Literal["store_true", "store_false", "store_const", "value", "nargs", "append", "noop"]
"""How a flag consumes argv.

``store_true``/``store_false``/``store_const``/``noop`` take no value (``noop``: a deprecated
flag that the parser accepts and ignores); ``value`` takes exactly one; ``nargs`` takes a list
(see ``Flag.nargs``); ``append`` takes one value and may repeat.
"""

_DATA_FILE: Final = "sglang_flags.json"
NEGATIVE_NUMBER: Final = re.compile(r"^-\d+$|^-\d*\.\d+$")
"""What argparse takes for a negative number rather than an option."""


@dataclass(frozen=True, slots=True)
class Flag:
    """One launch flag as one SGLang release's parser defines it."""

    options: tuple[str, ...]
    dest: str
    kind: FlagKind
    type: str | None
    choices: tuple[str, ...] | None
    default: Any
    const: Any
    nargs: int | str | None
    required: bool
    replaced_by: str | None
    first: str
    last: str

    @property
    def name(self) -> str:
        """The canonical option string (the first one)."""
        return self.options[0]

    @property
    def takes_value(self) -> bool:
        return self.kind in ("value", "nargs", "append")

    @property
    def deprecated(self) -> bool:
        return self.replaced_by is not None or self.kind == "noop"

    @property
    def specifier(self) -> SpecifierSet:
        """The releases this entry covers, as a specifier (upper bound exclusive)."""
        from packaging.specifiers import SpecifierSet

        after = _next_release(self.last)
        upper = f",<{after}" if after is not None else ""
        return SpecifierSet(f">={self.first}{upper}")

    def span(self) -> str:
        return self.first if self.first == self.last else f"{self.first}–{self.last}"


@dataclass(frozen=True)
class Catalogue:
    """The flags of one release, indexed by option string and by dest."""

    release: str
    flags: tuple[Flag, ...]
    by_option: Mapping[str, Flag]
    by_dest: Mapping[str, tuple[Flag, ...]]

    @functools.cached_property
    def negative_number_options(self) -> bool:
        """Whether an option looks like a negative number (argparse then reads ``-1`` as one)."""
        return any(NEGATIVE_NUMBER.match(option) for option in self.by_option)

    def get(self, option: str) -> Flag | None:
        return self.by_option.get(option)

    def for_dest(self, dest: str) -> tuple[Flag, ...]:
        return self.by_dest.get(dest, ())

    def primary(self, dest: str) -> Flag | None:
        """The flag to emit for ``dest``: a non-deprecated one that takes a value, else any."""
        candidates = self.for_dest(dest)
        for flag in candidates:
            if not flag.deprecated and flag.kind not in ("store_const", "noop"):
                return flag
        return candidates[0] if candidates else None


@functools.cache
def _raw() -> dict[str, Any]:
    # a plain open, not importlib.resources (~10 ms to import); wheels install unzipped
    with open(os.path.join(os.path.dirname(__file__), "_data", _DATA_FILE), "rb") as file:
        data: dict[str, Any] = json.load(file)
    return data


@functools.cache
def releases() -> tuple[str, ...]:
    """Every catalogued SGLang release, ascending."""
    return tuple(_raw()["releases"])


@functools.cache
def _release_index() -> dict[str, int]:
    return {release: i for i, release in enumerate(releases())}


def _next_release(release: str) -> str | None:
    index = _release_index()[release] + 1
    all_releases = releases()
    return all_releases[index] if index < len(all_releases) else None


def _make_flag(entry: Mapping[str, Any]) -> Flag:
    choices = entry.get("choices")
    return Flag(
        options=tuple(entry["options"]),
        dest=entry["dest"],
        kind=entry["kind"],
        type=entry.get("type"),
        choices=tuple(choices) if choices is not None else None,
        default=entry.get("default"),
        const=entry.get("const"),
        nargs=entry.get("nargs"),
        required=bool(entry.get("required", False)),
        replaced_by=entry.get("replaced_by"),
        first=entry["first"],
        last=entry["last"],
    )


@functools.cache
def catalogue_for(release: str) -> Catalogue:
    """The flags of one catalogued release (exact string, e.g. ``"0.5.10.post1"``)."""
    index = _release_index()
    position = index[release]
    flags = tuple(
        _make_flag(entry)
        for entry in _raw()["flags"]
        if index[entry["first"]] <= position <= index[entry["last"]]
    )
    by_option: dict[str, Flag] = {}
    by_dest: dict[str, list[Flag]] = {}
    for flag in flags:
        for option in flag.options:
            by_option[option] = flag
        by_dest.setdefault(flag.dest, []).append(flag)
    return Catalogue(
        release=release,
        flags=flags,
        by_option=by_option,
        by_dest={dest: tuple(group) for dest, group in by_dest.items()},
    )


@functools.cache
def flag_history(option: str) -> tuple[Flag, ...]:
    """Every catalogued entry that defines ``option``, oldest first."""
    return tuple(_make_flag(entry) for entry in _raw()["flags"] if option in entry["options"])


@functools.cache
def known_options() -> frozenset[str]:
    """Every option string of every catalogued release."""
    return frozenset(option for entry in _raw()["flags"] for option in entry["options"])


def refused_by(option: str, release: str) -> bool:
    """Whether ``release``'s parser knows ``option`` only to refuse it (a retired flag)."""
    index = _release_index()
    position = index[release]
    return any(
        option in entry["options"] and index[entry["first"]] <= position <= index[entry["last"]]
        for entry in _raw().get("rejected", ())
    )


@functools.cache
def dest_history(dest: str) -> tuple[Flag, ...]:
    """Every catalogued entry that writes ``dest``, oldest first."""
    return tuple(_make_flag(entry) for entry in _raw()["flags"] if entry["dest"] == dest)


@functools.cache
def release_version(release: str) -> Version:
    """``Version(release)``, parsed once per string (the hot path compares releases often)."""
    return Version(release)
