"""The catalogue's value types: which texts each accepts, and how a message names it.

``int`` and ``float`` values are converted; every other type keeps the text as written
(SGLang's own converter reads it at start-up), checked here where the catalogue names a
converter function of SGLang's whose refusals are worth catching before launch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Final

__all__ = ["article", "check_text", "type_words"]


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

KNOWN_TYPES: Final = frozenset(
    {"int", "float", "str", "fn:nullable_str", "fn:parse_cuda_graph_backend_arg", *_TEXT_CHECKS}
)
"""Every catalogue value type the codec reads; the rest of the text types take any string
(their choices, where given, are checked)."""


def check_text(type_name: str | None, text: str) -> None:
    """Raise ``ValueError`` when ``text`` is no value of ``type_name``."""
    check = _TEXT_CHECKS.get(type_name or "")
    if check is not None:
        check(text)


def type_words(type_name: str | None, otherwise: str) -> str:
    """How a message names a value of ``type_name`` ("needs a JSON value")."""
    return _TYPE_WORDS.get(type_name or "", otherwise)


def article(word: str) -> str:
    """``word`` with its indefinite article."""
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
