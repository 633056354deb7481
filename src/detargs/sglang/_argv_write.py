"""Writing the plain record as the target release's canonical argv, and naming its flags.

Fields in declaration order, then passthrough flags by name; only what the user set or
a rule decided; a value that starts with ``-`` is written ``--flag=value`` so the parser
reads it as a value. Each flag kind has its encoder (``_ENCODERS``).
``detargs.sglang.argv.to_argv`` is the public face of ``encode_values``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import InvalidArgsError
from . import _prefill_graph
from ._argv_read import is_option
from ._flag_messages import absent_dest, not_a_choice
from ._flag_types import article, check_text, type_words
from ._values import DEFAULTS, FIELD_DESTS, FIELDS, LaunchValues
from .catalogue import Catalogue, Flag, FlagKind, catalogue_for
from .version import TargetVersion

__all__ = ["encode_values", "flag_name"]

_FIELD_ORDER: Final = tuple(name for name in FIELDS if name != "extra")


def encode_values(values: LaunchValues, target: TargetVersion) -> list[str]:
    """The argv of ``values`` in ``target``'s spelling."""
    catalogue = catalogue_for(target.release)
    out: list[str] = []
    for name in _FIELD_ORDER:
        if name in values.fields_set:
            out += _encode_field(name, getattr(values, name), catalogue)
    passthrough = []
    for dest, value in values.extra.items():
        flag = _switch(dest, value, catalogue) or catalogue.primary(dest)
        if flag is None:
            raise absent_dest(dest, catalogue)
        passthrough.append((flag.name, _encode(flag, value, catalogue)))
    for _, tokens in sorted(passthrough):
        out += tokens
    return out


def flag_name(field: str, release: str) -> str:
    """How a user writes ``field`` (or ``extra.<dest>``) for SGLang ``release``."""
    catalogue = catalogue_for(release)
    if field == _prefill_graph.FIELD:
        return _prefill_graph.flag_name(catalogue)
    dests = (
        (field.removeprefix("extra."),)
        if field.startswith("extra.")
        else (FIELD_DESTS.get(field, (field,)))
    )
    for dest in reversed(dests):
        flag = catalogue.primary(dest)
        if flag is not None:
            return flag.name
    return "--" + dests[-1].replace("_", "-")


def _switch(dest: str, value: object, catalogue: Catalogue) -> Flag | None:
    """For a boolean, the switch that writes it: ``--x`` for True, ``--no-x`` for False."""
    if not isinstance(value, bool):
        return None
    wanted = "store_true" if value else "store_false"
    switches = [flag for flag in catalogue.for_dest(dest) if flag.kind == wanted]
    switches.sort(key=lambda flag: flag.deprecated)
    return switches[0] if switches else None


def _encode_field(name: str, value: Any, catalogue: Catalogue) -> list[str]:
    if name == _prefill_graph.FIELD:
        return _prefill_graph.encode(value, catalogue)
    dests = FIELD_DESTS.get(name, (name,))
    for dest in reversed(dests):
        flag = catalogue.primary(dest)
        if flag is not None:
            return _encode(flag, value, catalogue)
    if value is None or value == DEFAULTS[name]:
        return []
    raise absent_dest(dests[-1], catalogue, field=name)


def _encode(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    return _ENCODERS[flag.kind](flag, value, catalogue)


def _switch_words(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    if not isinstance(value, bool):
        raise InvalidArgsError(f"{flag.name} is a switch: give True or False, not {value!r}")
    return [flag.name] if value == (flag.kind == "store_true") else []


def _const_words(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    if value == flag.const:
        return [flag.name]
    raise InvalidArgsError(f"{flag.name} can only set {flag.const!r}, not {value!r}")


def _no_words(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    return []


def _value_words(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    return [] if value is None else _one_value(flag, value, catalogue.release)


def _append_words(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (tuple, list)) else (value,)
    return [token for item in items for token in _one_value(flag, item, catalogue.release)]


def _list_words(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    if value is None:
        return []
    if flag.nargs == "?":
        return _one_value(flag, value, catalogue.release)
    items = value if isinstance(value, (tuple, list)) else (value,)
    texts = [_checked_text(flag, item, catalogue.release) for item in items]
    if any(is_option(text, catalogue) for text in texts):
        if len(texts) != 1:
            raise InvalidArgsError(
                f"{flag.name}: a list value cannot start with '-' ({texts}); SGLang's parser "
                "would read it as a flag",
                flag=flag.name,
            )
        return [f"{flag.name}={texts[0]}"]
    return [flag.name, *texts]


_ENCODERS: Final[Mapping[FlagKind, Callable[[Flag, Any, Catalogue], list[str]]]] = {
    "store_true": _switch_words,
    "store_false": _switch_words,
    "store_const": _const_words,
    "noop": _no_words,
    "value": _value_words,
    "nargs": _list_words,
    "append": _append_words,
}


def _one_value(flag: Flag, value: Any, release: str) -> list[str]:
    if isinstance(value, (tuple, list)):
        raise InvalidArgsError(f"{flag.name} takes one value, not a list: {value!r}")
    text = _checked_text(flag, value, release)
    if text.startswith("-"):
        return [f"{flag.name}={text}"]
    return [flag.name, text]


def _checked_text(flag: Flag, value: Any, release: str) -> str:
    _check_number(flag, value)
    text = repr(float(value)) if flag.type == "float" else str(value)
    try:
        check_text(flag.type, text)
    except ValueError:
        kind = type_words(flag.type, "another")
        raise InvalidArgsError(f"{flag.name} needs {kind} value, got {text!r}") from None
    if flag.choices is not None and text not in flag.choices:
        raise not_a_choice(flag, flag.name, value, release=release)
    return text


def _check_number(flag: Flag, value: Any) -> None:
    if flag.type not in ("int", "float"):
        return
    wanted = int if flag.type == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise InvalidArgsError(
            f"{flag.name} needs {article(flag.type)} value, not {value!r}", flag=flag.name
        )
