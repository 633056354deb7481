"""The argv codec: SGLang launcher argv <-> ``ServerArgs``, exact for each release.

``from_argv`` reads what the target release's own argparse parser reads (aliases,
unique prefixes, ``--flag=value``, store_true, nargs lists, repeated flags with the
last one winning) and refuses the rest with ``InvalidArgsError`` naming the flag.
One difference is deliberate: a flag name of another release is never read as an
abbreviation of this one's flags (argparse would take ``--nsa-decode`` for
``--nsa-decode-backend`` in 0.5.4–0.5.19); it gets the "not a flag of" message.
``to_argv`` is canonical: fields in declaration order, then passthrough flags by
name; only what the user set or a rule decided; a value that starts with ``-`` is
written ``--flag=value`` so the parser reads it as a value.

>>> args = from_argv(["--tp", "2", "--attention-backend=fa3"], sglang_version="0.5.23")
>>> to_argv(args, sglang_version="0.5.23")
['--attention-backend', 'fa3', '--tp-size', '2']
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from packaging.version import Version

from ._values import (
    DEFAULTS,
    FIELD_DESTS,
    FIELDS,
    PREFILL_GRAPH_DEST,
    PREFILL_GRAPH_PIECEWISE,
    ExtraValue,
    LaunchValues,
    refusal,
)
from .catalogue import (
    NEGATIVE_NUMBER,
    Catalogue,
    Flag,
    catalogue_for,
    dest_history,
    flag_history,
    refused_by,
    releases,
)
from .errors import DetargsWarning, InvalidArgsError
from .version import TargetVersion, target_version

if TYPE_CHECKING:
    from .args import ServerArgs

__all__ = [
    "KNOWN_TYPES",
    "encode_argv",
    "flag_name",
    "flag_problem",
    "from_argv",
    "parse_argv",
    "read_argv",
    "to_argv",
]

_PIECEWISE: Final = "piecewise_cuda_graph"
_FIELD_ORDER: Final = tuple(name for name in FIELDS if name != "extra")
_DEST_TO_FIELD: Final = {
    dest: name for name in _FIELD_ORDER for dest in FIELD_DESTS.get(name, (name,))
}


@dataclass(frozen=True)
class _Parsed:
    flag: Flag
    written: str
    value: Any


def from_argv(
    argv: Sequence[str], sglang_version: str | TargetVersion | None = None
) -> ServerArgs:
    """Parse launcher arguments as the target SGLang release's parser would.

    ``--model-path`` is optional here: test launchers add it themselves.
    """
    target = target_version(sglang_version)
    args, notes = parse_argv(argv, target)
    for note in (*target.warnings, *notes):
        warnings.warn(note, DetargsWarning, stacklevel=2)
    return args


def to_argv(args: ServerArgs, sglang_version: str | TargetVersion | None = None) -> list[str]:
    """The canonical argv for ``args`` in the target release's spelling."""
    target = target_version(sglang_version)
    for note in target.warnings:
        warnings.warn(note, DetargsWarning, stacklevel=2)
    return encode_argv(args.values(), target)


def parse_argv(argv: Sequence[str], target: TargetVersion) -> tuple[ServerArgs, list[str]]:
    """``from_argv`` without warnings: returns the notes it would have warned."""
    from .args import ServerArgs

    values, notes = read_argv(argv, target)
    return ServerArgs.from_values(values), notes


def read_argv(argv: Sequence[str], target: TargetVersion) -> tuple[LaunchValues, list[str]]:
    """``parse_argv`` to the plain record, without pydantic: what the CLI runs on."""
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
    return _build(by_dest), notes


def encode_argv(args: LaunchValues, target: TargetVersion) -> list[str]:
    """``to_argv`` of the plain record, for an already resolved target."""
    catalogue = catalogue_for(target.release)
    out: list[str] = []
    for name in _FIELD_ORDER:
        if name in args.fields_set:
            out += _encode_field(name, getattr(args, name), catalogue)
    passthrough = []
    for dest, value in args.extra.items():
        flag = _switch(dest, value, catalogue) or catalogue.primary(dest)
        if flag is None:
            raise _absent_dest(dest, catalogue)
        passthrough.append((flag.name, _encode(flag, value, catalogue)))
    for _, tokens in sorted(passthrough):
        out += tokens
    return out


def _switch(dest: str, value: object, catalogue: Catalogue) -> Flag | None:
    """For a boolean, the switch that writes it: ``--x`` for True, ``--no-x`` for False."""
    if not isinstance(value, bool):
        return None
    wanted = "store_true" if value else "store_false"
    switches = [flag for flag in catalogue.for_dest(dest) if flag.kind == wanted]
    switches.sort(key=lambda flag: flag.deprecated)
    return switches[0] if switches else None


# --- reading -----------------------------------------------------------------------


def _tokens(argv: list[str], catalogue: Catalogue, target: TargetVersion) -> Iterable[_Parsed]:
    position = 0
    switch: _Parsed | None = None
    while position < len(argv):
        token = argv[position]
        position += 1
        if not _is_option(token, catalogue) and switch is not None:
            raise InvalidArgsError(
                f"{switch.written} takes no value, but {token!r} follows it; write "
                f"{switch.flag.name} alone to turn it on, or leave it out",
                flag=switch.flag.name,
            )
        if not _is_option(token, catalogue):
            raise InvalidArgsError(
                f"unexpected argument {token!r}: SGLang {target.release} takes no positional "
                "arguments; a value must follow its flag",
            )
        name, has_value, attached = token.partition("=")
        flag = catalogue.get(token) or catalogue.get(name)
        if flag is None and flag_history(name):
            # a flag of other releases is never read as an abbreviation of another flag
            raise _unknown_flag(name, catalogue)
        flag = flag or _by_prefix(name, catalogue)
        if flag is None:
            raise _unknown_flag(name, catalogue)
        if catalogue.get(token) is flag:
            # the whole token is an option that contains "=": nothing is attached to it
            name, has_value, attached = token, "", ""
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


def _is_option(token: str, catalogue: Catalogue) -> bool:
    # argparse's own test: see ArgumentParser._parse_optional
    if len(token) < 2 or token[0] != "-":
        return False
    if token in catalogue.by_option:
        return True
    if NEGATIVE_NUMBER.match(token) and not catalogue.negative_number_options:
        return False
    return " " not in token or "=" in token.split(" ", 1)[0]


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
    while end < len(argv) and not _is_option(argv[end], catalogue):
        end += 1
    available = argv[position:end]
    nargs = flag.nargs
    if nargs is None or flag.kind in ("value", "append"):
        wanted = 1
    elif nargs == "?":
        return available[:1], position + min(1, len(available))
    elif nargs == "*":
        return available, end
    elif nargs == "+":
        wanted = max(1, len(available))
    else:
        wanted = int(nargs)
    if len(available) < wanted:
        what = "a value" if wanted == 1 else f"{wanted} values"
        found = f"; found {argv[end]!r}, which reads as a flag" if end < len(argv) else ""
        raise InvalidArgsError(
            f"{name} needs {what}{found}; write {flag.name}=VALUE for a value that starts "
            "with '-'",
            flag=flag.name,
        )
    return available[:wanted], position + wanted


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
    if flag.kind == "nargs" and flag.nargs == "?" and not values:
        return flag.const
    if flag.kind == "nargs" and flag.nargs == "?":
        return values[0]
    return values


def _convert(flag: Flag, written: str, raw: str, release: str) -> Any:
    value: Any = raw
    try:
        if flag.type == "int":
            value = int(raw)
        elif flag.type == "float":
            value = float(raw)
        else:
            _check_text(flag.type, raw)
    except ValueError:
        kind = _TYPE_WORDS.get(flag.type or "", _article(flag.type or "text"))
        message = f"{written} needs {kind} value, got {raw!r}"
        raise InvalidArgsError(message, flag=flag.name) from None
    if flag.choices is not None and str(value) not in flag.choices:
        raise _not_a_choice(flag, written, value, release=release)
    successor = catalogue_for(release).get(flag.replaced_by) if flag.replaced_by else None
    if successor is not None and successor.choices is not None and (
        str(value) not in successor.choices
    ):
        # the deprecated alias checks nothing, but the value lands in its successor's field
        raise _not_a_choice(successor, written, value, release=release)
    return value


def _json(raw: str) -> None:
    json.loads(raw)


def _size(raw: str) -> None:
    # SGLang's human-readable ints: 4096, 32k, 1.5M (SI), 4Ki (IEC, whole numbers only)
    if not _SIZE.fullmatch(raw.strip()):
        raise ValueError(raw)


def _phase_settings(raw: str) -> None:
    parsed = json.loads(raw)
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise ValueError(raw)


_SIZE: Final = re.compile(r"[+-]?\d+|\d+(?:\.\d+)?[kMGT]|\d+(?:Ki|Mi|Gi|Ti)")
# Value checks for the catalogue's types whose converter is a function of SGLang's own;
# the value is kept as written, so the release's converter reads it as the user wrote it.
_TEXT_CHECKS: Final[Mapping[str, Callable[[str], None]]] = {
    "json": _json,
    "fn:json_list_type": _json,
    "fn:human_readable_int": _size,
    "fn:parse_cuda_graph_config_arg": _phase_settings,
}
_TYPE_WORDS: Final = {
    "json": "a JSON",
    "fn:json_list_type": "a JSON",
    "fn:human_readable_int": "a size (4096, 32k, 4Ki)",
    "fn:parse_cuda_graph_config_arg": "a JSON object of per-phase settings as its",
}


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _check_text(type_name: str | None, text: str) -> None:
    check = _TEXT_CHECKS.get(type_name or "")
    if check is not None:
        check(text)


KNOWN_TYPES: Final = frozenset(
    {"int", "float", "str", "fn:nullable_str", "fn:parse_cuda_graph_backend_arg", *_TEXT_CHECKS}
)
"""Every catalogue value type the codec reads; the rest of the text types take any string
(their choices, where given, are checked)."""


def _build(by_dest: dict[str, _Parsed]) -> LaunchValues:
    fields: dict[str, Any] = {}
    extra: dict[str, ExtraValue] = {}
    piecewise: dict[str, bool] = {}
    for dest, parsed in by_dest.items():
        if dest == PREFILL_GRAPH_DEST and parsed.value in PREFILL_GRAPH_PIECEWISE:
            piecewise[dest] = PREFILL_GRAPH_PIECEWISE[parsed.value]
        elif _DEST_TO_FIELD.get(dest) == _PIECEWISE:
            if parsed.value is True:
                piecewise[dest] = dest != "disable_piecewise_cuda_graph"
        elif dest in _DEST_TO_FIELD:
            fields[_DEST_TO_FIELD[dest]] = parsed.value
        else:
            extra[dest] = parsed.value
    if piecewise:
        # SGLang lets --enforce-piecewise-cuda-graph win over --disable-piecewise-cuda-graph
        fields[_PIECEWISE] = piecewise.get("enforce_piecewise_cuda_graph", any(piecewise.values()))
    if extra:
        fields["extra"] = extra
    problem = refusal(fields)
    if problem is not None:
        raise InvalidArgsError(problem)
    return LaunchValues.of(fields)


# --- writing -----------------------------------------------------------------------


def _encode_field(name: str, value: Any, catalogue: Catalogue) -> list[str]:
    if name == _PIECEWISE:
        return _encode_piecewise(value, catalogue)
    dests = FIELD_DESTS.get(name, (name,))
    for dest in reversed(dests):
        flag = catalogue.primary(dest)
        if flag is not None:
            return _encode(flag, value, catalogue)
    if value is None or value == DEFAULTS[name]:
        return []
    raise _absent_dest(dests[-1], catalogue, field=name)


def _encode_piecewise(value: bool | None, catalogue: Catalogue) -> list[str]:
    if value is None:
        return []
    prefill = catalogue.primary(PREFILL_GRAPH_DEST)
    if prefill is not None and prefill.choices is not None:
        choice = "tc_piecewise" if value else "disabled"
        if choice in prefill.choices:
            return _encode(prefill, choice, catalogue)
    dest = (
        ("enforce_piecewise_cuda_graph", "enable_piecewise_cuda_graph")
        if value
        else ("disable_piecewise_cuda_graph",)
    )
    for candidate in dest:
        flag = catalogue.primary(candidate)
        if flag is not None and flag.kind == "store_true":
            return [flag.name]
    if not value:
        # piecewise CUDA graphs are off by default in this release: nothing to say
        return []
    spellings = [
        ("--enable-piecewise-cuda-graph", lambda flag: flag.kind == "store_true"),
        ("--enforce-piecewise-cuda-graph", lambda flag: flag.kind != "noop"),
        ("--cuda-graph-backend-prefill", lambda flag: "tc_piecewise" in (flag.choices or ())),
    ]
    where = "; ".join(
        f"{option}{' tc_piecewise' if option.endswith('prefill') else ''} in "
        + ", ".join(entry.span() for entry in _merged(tuple(filter(keep, flag_history(option)))))
        for option, keep in spellings
    )
    raise InvalidArgsError(
        f"piecewise CUDA graphs cannot be requested in SGLang {catalogue.release}; SGLang "
        f"took them as {where}",
        flag="--enforce-piecewise-cuda-graph",
    )


def _encode(flag: Flag, value: Any, catalogue: Catalogue) -> list[str]:
    if flag.kind == "store_true" or flag.kind == "store_false":
        if not isinstance(value, bool):
            raise InvalidArgsError(f"{flag.name} is a switch: give True or False, not {value!r}")
        return [flag.name] if value == (flag.kind == "store_true") else []
    if flag.kind == "store_const":
        if value == flag.const:
            return [flag.name]
        raise InvalidArgsError(f"{flag.name} can only set {flag.const!r}, not {value!r}")
    if flag.kind == "noop":
        return []
    if value is None:
        return []
    release = catalogue.release
    if flag.kind == "value" or (flag.kind == "nargs" and flag.nargs == "?"):
        return _one_value(flag, value, release)
    items = value if isinstance(value, (tuple, list)) else (value,)
    if flag.kind == "append":
        return [token for item in items for token in _one_value(flag, item, release)]
    texts = [_checked_text(flag, item, release) for item in items]
    if any(_is_option(text, catalogue) for text in texts):
        if len(texts) != 1:
            raise InvalidArgsError(
                f"{flag.name}: a list value cannot start with '-' ({texts}); SGLang's parser "
                "would read it as a flag",
                flag=flag.name,
            )
        return [f"{flag.name}={texts[0]}"]
    return [flag.name, *texts]


def _one_value(flag: Flag, value: Any, release: str) -> list[str]:
    if isinstance(value, (tuple, list)):
        raise InvalidArgsError(f"{flag.name} takes one value, not a list: {value!r}")
    text = _checked_text(flag, value, release)
    if text.startswith("-"):
        return [f"{flag.name}={text}"]
    return [flag.name, text]


def _checked_text(flag: Flag, value: Any, release: str) -> str:
    if isinstance(value, bool) and flag.type in ("int", "float"):
        raise InvalidArgsError(
            f"{flag.name} needs {_article(flag.type)} value, not {value!r}", flag=flag.name
        )
    if flag.type == "int" and not isinstance(value, int):
        raise InvalidArgsError(f"{flag.name} needs an int value, not {value!r}", flag=flag.name)
    if flag.type == "float" and not isinstance(value, (int, float)):
        raise InvalidArgsError(f"{flag.name} needs a float value, not {value!r}", flag=flag.name)
    text = repr(float(value)) if flag.type == "float" else str(value)
    try:
        _check_text(flag.type, text)
    except ValueError:
        kind = _TYPE_WORDS.get(flag.type or "", "another")
        raise InvalidArgsError(f"{flag.name} needs {kind} value, got {text!r}") from None
    if flag.choices is not None and text not in flag.choices:
        raise _not_a_choice(flag, flag.name, value, release=release)
    return text


# --- messages ----------------------------------------------------------------------


def flag_name(field: str, release: str) -> str:
    """How a user writes ``field`` (or ``extra.<dest>``) for SGLang ``release``."""
    catalogue = catalogue_for(release)
    if field == _PIECEWISE:
        for dest in ("enforce_piecewise_cuda_graph", "enable_piecewise_cuda_graph"):
            flag = catalogue.primary(dest)
            if flag is not None and flag.kind == "store_true":
                return flag.name
        prefill = catalogue.primary(PREFILL_GRAPH_DEST)
        return f"{prefill.name} tc_piecewise" if prefill else "--enable-piecewise-cuda-graph"
    dests = (field.removeprefix("extra."),) if field.startswith("extra.") else (
        FIELD_DESTS.get(field, (field,))
    )
    for dest in reversed(dests):
        flag = catalogue.primary(dest)
        if flag is not None:
            return flag.name
    return "--" + dests[-1].replace("_", "-")


def _shown(value: Any) -> str:
    if value is True:
        return ""
    if isinstance(value, tuple):
        return " ".join(str(item) for item in value)
    return str(value)


def _not_a_choice(flag: Flag, written: str, value: Any, release: str) -> Exception:
    accepted_in = [
        entry.span() for entry in flag_history(flag.name)
        if entry.choices is not None and str(value) in entry.choices
    ]  # fmt: skip
    elsewhere = f"; SGLang accepts it in {', '.join(accepted_in)}" if accepted_in else ""
    choices = ", ".join(flag.choices or ())
    return InvalidArgsError(
        f"{written} {value!r} is not accepted by SGLang {release}; choose one of: "
        f"{choices}{elsewhere}",
        flag=flag.name,
    )


def flag_problem(name: str, release: str) -> InvalidArgsError:
    """Why ``name`` is not a flag of SGLang ``release``: retired, of other releases, or a typo."""
    return _unknown_flag(name, catalogue_for(release))


def _unknown_flag(name: str, catalogue: Catalogue) -> InvalidArgsError:
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
    return InvalidArgsError(
        f"unknown flag {name} for SGLang {catalogue.release}{hint}", flag=name
    )


def _absent(name: str, history: tuple[Flag, ...], catalogue: Catalogue) -> InvalidArgsError:
    spans = ", ".join(entry.span() for entry in _merged(history))
    newest = history[-1]
    release = Version(catalogue.release)
    replacement = _replacement(newest, catalogue) if release > Version(newest.last) else None
    advice = f"; use {replacement} instead" if replacement else "; drop it"
    if replacement is None and release < Version(history[0].first):
        advice = f"; target SGLang {history[0].first} or newer to use it"
    return InvalidArgsError(
        f"{name} is not a flag of SGLang {catalogue.release}: it exists in {spans}{advice}",
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


def _absent_dest(dest: str, catalogue: Catalogue, field: str | None = None) -> InvalidArgsError:
    history = dest_history(dest)
    label = f"{field} (" + (history[0].name if history else dest) + ")" if field else dest
    if not history:
        close = _close_matches(dest, catalogue.by_dest)
        hint = f": did you mean {close[0]}?" if close else ""
        return InvalidArgsError(
            f"extra[{dest!r}] is no SGLang flag's dest{hint}", flag=dest
        )
    error = _absent(history[-1].name, history, catalogue)
    return InvalidArgsError(f"{label}: {error}", flag=history[-1].name)


def _close_matches(word: str, known: Mapping[str, object]) -> list[str]:
    import difflib  # only an error message needs it

    return difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)


def _merged(history: tuple[Flag, ...]) -> list[Flag]:
    """Entries whose spans touch are shown as one span."""
    order = {release: i for i, release in enumerate(releases())}
    merged: list[Flag] = []
    for entry in history:
        if merged and order[entry.first] == order[merged[-1].last] + 1:
            merged[-1] = dataclasses.replace(merged[-1], last=entry.last)
        else:
            merged.append(entry)
    return merged

