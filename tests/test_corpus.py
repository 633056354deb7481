"""The recorded corpus of resolutions still resolves byte for byte as recorded."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

CORPUS = Path(__file__).with_name("data") / "resolution_corpus.json"
TOOL = Path(__file__).resolve().parent.parent / "tools" / "record_corpus.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_corpus", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("record_corpus", module)
    spec.loader.exec_module(module)
    return module


def test_every_recorded_resolution_is_unchanged() -> None:
    recorded: dict[str, Any] = json.loads(CORPUS.read_text(encoding="utf-8"))
    current: dict[str, Any] = _tool().record()
    assert sorted(current) == sorted(recorded), "the corpus's cases changed: re-record it"
    changed = [key for key in recorded if current[key] != recorded[key]]
    assert changed == [], (
        f"{len(changed)} of {len(recorded)} resolutions changed, first {changed[:5]}; if that "
        "is meant, re-record with python tools/record_corpus.py --write "
        "tests/data/resolution_corpus.json and say why in the commit"
    )


def test_the_corpus_covers_every_kind_of_outcome() -> None:
    recorded: dict[str, Any] = json.loads(CORPUS.read_text(encoding="utf-8"))
    outcomes = {value.get("error", "resolved") for value in recorded.values()}
    assert outcomes >= {"resolved", "ConflictError", "UnsupportedDeviceError"}
    assert any(value.get("env") for value in recorded.values())
