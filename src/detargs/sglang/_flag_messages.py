"""Messages about flags, told from the catalogue's history of every release.

A flag the target release does not take is retired there, of other releases (with the
span it exists in and its replacement), or a typo (with the closest flag); a value
outside the release's choices names the releases that accept it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from packaging.version import Version

from ..errors import InvalidArgsError
from ._values import FIELD_DESTS
from .catalogue import Catalogue, Flag, catalogue_for, dest_history, flag_history, refused_by
from .catalogue import releases as catalogued_releases

__all__ = ["absent_dest", "flag_problem", "not_a_choice", "spans", "unknown_flag"]

_DEST_TO_FIELD = {dest: name for name, dests in FIELD_DESTS.items() for dest in dests}


def flag_problem(name: str, release: str) -> InvalidArgsError:
    """Why ``name`` is not a flag of SGLang ``release``: retired, of other releases, or a typo."""
    return unknown_flag(name, catalogue_for(release))


def unknown_flag(name: str, catalogue: Catalogue) -> InvalidArgsError:
    """``flag_problem`` for a catalogue already at hand."""
    if refused_by(name, catalogue.release):
        return InvalidArgsError(
            f"{name} is retired in SGLang {catalogue.release}: its parser refuses it at start-up; "
            "drop it (its replacement, if any, is in that release's notes)",
            flag=name,
        )
    history = flag_history(name)
    if history:
        return _absent(name, history, catalogue)
    close = _close_matches(name, catalogue.by_option)
    hint = f": did you mean {close[0]}?" if close else "; `detargs flags` lists the flags it takes"
    return InvalidArgsError(f"unknown flag {name} for SGLang {catalogue.release}{hint}", flag=name)


def not_a_choice(flag: Flag, written: str, value: Any, release: str) -> InvalidArgsError:
    """``value`` is outside ``flag``'s choices in ``release``; where SGLang accepts it."""
    accepted_in = [
        entry.span()
        for entry in flag_history(flag.name)
        if entry.choices is not None and str(value) in entry.choices
    ]
    elsewhere = f"; SGLang accepts it in {', '.join(accepted_in)}" if accepted_in else ""
    choices = ", ".join(flag.choices or ())
    return InvalidArgsError(
        f"{written} {value!r} is not accepted by SGLang {release}; choose one of: "
        f"{choices}{elsewhere}",
        flag=flag.name,
    )


def absent_dest(dest: str, catalogue: Catalogue, field: str | None = None) -> InvalidArgsError:
    """No flag of ``catalogue``'s release writes ``dest`` (of ``field``, when it is one)."""
    history = dest_history(dest)
    label = f"{field} (" + (history[0].name if history else dest) + ")" if field else dest
    if not history:
        close = _close_matches(dest, catalogue.by_dest)
        hint = f": did you mean {close[0]}?" if close else ""
        return InvalidArgsError(f"extra[{dest!r}] is no SGLang flag's dest{hint}", flag=dest)
    error = _absent(history[-1].name, history, catalogue)
    return InvalidArgsError(f"{label}: {error}", flag=history[-1].name)


def spans(history: tuple[Flag, ...]) -> str:
    """The releases a flag's entries cover; entries whose spans touch are shown as one."""
    order = {release: i for i, release in enumerate(catalogued_releases())}
    merged: list[Flag] = []
    for entry in history:
        if merged and order[entry.first] == order[merged[-1].last] + 1:
            merged[-1] = dataclasses.replace(merged[-1], last=entry.last)
        else:
            merged.append(entry)
    return ", ".join(entry.span() for entry in merged)


def _absent(name: str, history: tuple[Flag, ...], catalogue: Catalogue) -> InvalidArgsError:
    newest = history[-1]
    release = Version(catalogue.release)
    replacement = _replacement(newest, catalogue) if release > Version(newest.last) else None
    advice = f"; use {replacement} instead" if replacement else "; drop it"
    if replacement is None and release < Version(history[0].first):
        advice = f"; target SGLang {history[0].first} or newer to use it"
    return InvalidArgsError(
        f"{name} is not a flag of SGLang {catalogue.release}: it exists in {spans(history)}"
        f"{advice}",
        flag=name,
    )


def _replacement(old: Flag, catalogue: Catalogue) -> str | None:
    if old.replaced_by is not None and catalogue.get(old.replaced_by) is not None:
        return f"{old.replaced_by} {old.const}" if old.kind == "store_const" else old.replaced_by
    field = _DEST_TO_FIELD.get(old.dest)
    dests = FIELD_DESTS.get(field, (field,)) if field else (old.dest,)
    for dest in dests:
        flag = catalogue.primary(dest)
        if flag is not None and flag.name not in old.options:
            if old.kind == "store_const":
                return f"{flag.name} {old.const}"
            return flag.name
    return None


def _close_matches(word: str, known: Mapping[str, object]) -> list[str]:
    import difflib  # only an error message needs it

    return difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
