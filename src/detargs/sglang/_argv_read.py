"""Reading a launcher argv into the plain record, as the target release's parser reads it.

Aliases, unique prefixes, ``--flag=value``, store_true, nargs lists, repeated flags with
the last one winning; the rest is refused with ``InvalidArgsError`` naming the flag. One
difference is deliberate: a flag name of another release is never read as an
abbreviation of this one's flags (argparse would take ``--nsa-decode`` for
``--nsa-decode-backend`` in 0.5.4–0.5.19); it gets the "not a flag of" message.
``detargs.sglang.argv.from_argv`` is the public face of ``read_values``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..errors import InvalidArgsError
from . import _prefill_graph
from ._flag_messages import not_a_choice, unknown_flag
from ._flag_types import article, check_text, type_words
from ._values import FIELD_DESTS, FIELDS, ExtraValue, LaunchValues, refusal
from .catalogue import NEGATIVE_NUMBER, Catalogue, Flag, catalogue_for, flag_history
from .version import TargetVersion

__all__ = ["is_option", "read_values"]

_DEST_TO_FIELD: Final = {
    dest: name for name in FIELDS if name != "extra" for dest in FIELD_DESTS.get(name, (name,))
}


@dataclass(frozen=True)
class _Parsed:
    flag: Flag
    written: str
    value: Any


def read_values(argv: Sequence[str], target: TargetVersion) -> tuple[LaunchValues, list[str]]:
    """The record ``argv`` spells for ``target``, and what reading it assumed (notes)."""
    if isinstance(argv, str):
        raise InvalidArgsError("argv must be a list of strings, not one string; split it first")
    for position, word in enumerate(argv):
        if not isinstance(word, str):
            raise InvalidArgsError(
                f"argv[{position}] is {word!r} ({type(word).__name__}); every word of an argv "
                "is a string: write str(...) around numbers"
            )
    catalogue = catalogue_for(target.release)
    notes: list[str] = []
    by_dest: dict[str, _Parsed] = {}
    for parsed in _tokens(list(argv), catalogue, target):
        if parsed.flag.kind == "noop":
            notes.append(f"{parsed.written} has no effect in SGLang {target.release}; dropped")
            continue
        previous = by_dest.get(parsed.flag.dest)
        if parsed.flag.kind == "append" and previous is not None:
            parsed = _Parsed(parsed.flag, parsed.written, previous.value + parsed.value)
        elif previous is not None and previous.value != parsed.value:
            notes.append(
                f"{previous.written} {_shown(previous.value)} is overridden by the later "
                f"{parsed.written} {_shown(parsed.value)}, as SGLang's parser does"
            )
        by_dest[parsed.flag.dest] = parsed
    return _build({dest: parsed.value for dest, parsed in by_dest.items()}), notes


def is_option(token: str, catalogue: Catalogue) -> bool:
    """Whether ``catalogue``'s parser reads ``token`` as an option rather than a value."""
    # argparse's own test: see ArgumentParser._parse_optional
    if len(token) < 2 or token[0] != "-":
        return False
    if token in catalogue.by_option:
        return True
    if NEGATIVE_NUMBER.match(token) and not catalogue.negative_number_options:
        return False
    return " " not in token or "=" in token.split(" ", 1)[0]


def _tokens(argv: list[str], catalogue: Catalogue, target: TargetVersion) -> Iterable[_Parsed]:
    position = 0
    switch: _Parsed | None = None
    while position < len(argv):
        token = argv[position]
        position += 1
        if not is_option(token, catalogue):
            raise _stray(token, switch, target)
        flag, name, has_value, attached = _option(token, catalogue)
        if not flag.takes_value:
            if has_value:
                raise InvalidArgsError(
                    f"{name} takes no value, but got {attached!r}; write {flag.name} alone",
                    flag=flag.name,
                )
            switch = _Parsed(flag, name, _constant(flag))
            yield switch
            continue
        switch = None
        if has_value:
            raw = [attached]
        else:
            raw, position = _take_values(argv, position, flag, catalogue, name)
        yield _Parsed(flag, name, _convert_all(flag, name, raw, target.release))


def _stray(token: str, switch: _Parsed | None, target: TargetVersion) -> InvalidArgsError:
    if switch is not None:
        return InvalidArgsError(
            f"{switch.written} takes no value, but {token!r} follows it; write "
            f"{switch.flag.name} alone to turn it on, or leave it out",
            flag=switch.flag.name,
        )
    return InvalidArgsError(
        f"unexpected argument {token!r}: SGLang {target.release} takes no positional "
        "arguments; a value must follow its flag",
    )


def _option(token: str, catalogue: Catalogue) -> tuple[Flag, str, bool, str]:
    """The flag ``token`` names, as written, and the value attached with ``=`` if any."""
    name, has_value, attached = token.partition("=")
    whole = catalogue.get(token)
    if whole is not None:
        # the whole token is an option that contains "=": nothing is attached to it
        return whole, token, False, ""
    flag = catalogue.get(name)
    if flag is None and flag_history(name):
        # a flag of other releases is never read as an abbreviation of another flag
        raise unknown_flag(name, catalogue)
    flag = flag or _by_prefix(name, catalogue)
    if flag is None:
        raise unknown_flag(name, catalogue)
    return flag, name, bool(has_value), attached


def _by_prefix(name: str, catalogue: Catalogue) -> Flag | None:
    if not name.startswith("--") or len(name) < 3:
        return None
    matches = sorted(option for option in catalogue.by_option if option.startswith(name))
    # keyed by options: a Flag whose default is a list cannot be hashed
    flags = {catalogue.by_option[option].options: catalogue.by_option[option] for option in matches}
    if len(flags) > 1:
        raise InvalidArgsError(
            f"ambiguous flag {name}: it could be {', '.join(matches[:6])}; write it in full",
            flag=name,
        )
    return next(iter(flags.values())) if flags else None


def _take_values(
    argv: list[str], position: int, flag: Flag, catalogue: Catalogue, name: str
) -> tuple[list[str], int]:
    end = position
    while end < len(argv) and not is_option(argv[end], catalogue):
        end += 1
    available = argv[position:end]
    nargs = flag.nargs
    if nargs == "?" and flag.kind == "nargs":
        return available[:1], position + min(1, len(available))
    if nargs == "*" and flag.kind == "nargs":
        return available, end
    wanted = _wanted(flag, len(available))
    if len(available) < wanted:
        what = "a value" if wanted == 1 else f"{wanted} values"
        found = f"; found {argv[end]!r}, which reads as a flag" if end < len(argv) else ""
        raise InvalidArgsError(
            f"{name} needs {what}{found}; write {flag.name}=VALUE for a value that starts with '-'",
            flag=flag.name,
        )
    return available[:wanted], position + wanted


def _wanted(flag: Flag, available: int) -> int:
    if flag.nargs is None or flag.kind in ("value", "append"):
        return 1
    if flag.nargs == "+":
        return max(1, available)
    return int(flag.nargs)


def _constant(flag: Flag) -> Any:
    if flag.kind == "store_true":
        return True
    if flag.kind == "store_false":
        return False
    return flag.const


def _convert_all(flag: Flag, written: str, raw: list[str], release: str) -> Any:
    values = tuple(_convert(flag, written, item, release) for item in raw)
    if flag.kind == "value" and flag.const is not None:
        # a deprecated spelling whose value is only checked: it stores its constant
        return flag.const
    if flag.kind == "value":
        return values[0]
    if flag.kind == "nargs" and flag.nargs == "?":
        return values[0] if values else flag.const
    return values


def _convert(flag: Flag, written: str, raw: str, release: str) -> Any:
    value: Any = raw
    try:
        if flag.type == "int":
            value = int(raw)
        elif flag.type == "float":
            value = float(raw)
        else:
            check_text(flag.type, raw)
    except ValueError:
        kind = type_words(flag.type, article(flag.type or "text"))
        raise InvalidArgsError(
            f"{written} needs {kind} value, got {raw!r}", flag=flag.name
        ) from None
    if flag.choices is not None and str(value) not in flag.choices:
        raise not_a_choice(flag, written, value, release=release)
    successor = catalogue_for(release).get(flag.replaced_by) if flag.replaced_by else None
    if (
        successor is not None
        and successor.choices is not None
        and (str(value) not in successor.choices)
    ):
        # the deprecated alias checks nothing, but the value lands in its successor's field
        raise not_a_choice(successor, written, value, release=release)
    return value


def _build(by_dest: dict[str, Any]) -> LaunchValues:
    piecewise, rest = _prefill_graph.decode(by_dest)
    fields: dict[str, Any] = {}
    extra: dict[str, ExtraValue] = {}
    for dest, value in rest.items():
        if dest in _DEST_TO_FIELD:
            fields[_DEST_TO_FIELD[dest]] = value
        else:
            extra[dest] = value
    if piecewise is not None:
        fields[_prefill_graph.FIELD] = piecewise
    if extra:
        fields["extra"] = extra
    problem = refusal(fields)
    if problem is not None:
        raise InvalidArgsError(problem)
    return LaunchValues.of(fields)


def _shown(value: Any) -> str:
    if value is True:
        return ""
    if isinstance(value, tuple):
        return " ".join(str(item) for item in value)
    return str(value)
