"""What the rules need to know about the model: its architecture, and so its family.

The architecture comes from ``architectures[0]`` of a local ``config.json`` when
``model_path`` is a local directory, or from an explicit ``model_arch``. Nothing is
fetched from the network: a hub id with no local copy is an unknown family, and the
resolution says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidArgsError
from .releases import ABSORBED_MLA_ARCHITECTURES

__all__ = ["ModelFacts", "model_facts"]

ModelFamily = Literal["absorbed-mla", "other", "unknown"]
FactSource = Literal["model_arch", "config.json", "none"]


@dataclass(frozen=True)
class ModelFacts:
    """The model facts the rules read."""

    architecture: str | None
    source: FactSource
    detail: str
    """Where the facts came from, or why there are none, as a sentence."""
    warning: str | None = None
    """A ``model_arch`` that looks like a misspelt architecture the rules know."""

    @property
    def family(self) -> ModelFamily:
        if self.architecture is None:
            return "unknown"
        return "absorbed-mla" if self.architecture in ABSORBED_MLA_ARCHITECTURES else "other"


def model_facts(model_path: str | None, model_arch: str | None = None) -> ModelFacts:
    """Read the model's architecture without touching the network."""
    if model_arch is not None:
        detail = f"architecture {model_arch} given as model_arch"
        return ModelFacts(model_arch, "model_arch", detail, _misspelt(model_arch))
    if model_path is None:
        return ModelFacts(None, "none", "no --model-path given, so the model family is unknown")
    # os.path, not pathlib: pathlib's imports cost a cold `detargs resolve` ~1 ms
    config = os.path.join(model_path, "config.json")
    if not _holds(lambda: os.path.isdir(model_path)):
        return ModelFacts(
            None,
            "none",
            f"{model_path} is not a local directory, so its family is unknown (nothing is "
            "fetched); pass model_arch (--model-arch) if it is a DeepSeek-style MLA model",
        )
    if not _holds(lambda: os.path.isfile(config)):
        return ModelFacts(None, "none", f"{model_path} has no config.json; the family is unknown")
    try:
        with open(config, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError) as error:
        raise InvalidArgsError(
            f"--model-path {model_path}: config.json cannot be read ({error}); fix the file or "
            "pass model_arch (--model-arch)",
            flag="--model-path",
        ) from None
    architectures = data.get("architectures") if isinstance(data, dict) else None
    if not isinstance(architectures, list) or not architectures:
        return ModelFacts(None, "none", f"{config} lists no architectures; the family is unknown")
    first = str(architectures[0])
    return ModelFacts(first, "config.json", f"architecture {first} from {config}")


def _misspelt(architecture: str) -> str | None:
    """A warning when ``architecture`` is close to, but not, one the rules treat specially.

    Architectures the rules do not single out (Qwen2ForCausalLM) are read as plain
    models without a word; only a near miss of an absorbed-MLA name would silently skip
    that model's backend allow-list.
    """
    if architecture in ABSORBED_MLA_ARCHITECTURES:
        return None
    known = sorted(ABSORBED_MLA_ARCHITECTURES)
    close = [name for name in known if name.lower() == architecture.lower()]
    if not close:
        import difflib  # only this warning needs it

        close = difflib.get_close_matches(architecture, known, n=1, cutoff=0.85)
    if not close:
        return None
    return (
        f"--model-arch {architecture} is not an architecture the rules know: did you mean "
        f"{close[0]}? Read as written, it is not an absorbed-MLA model, so the MLA attention "
        "backend allow-list is skipped"
    )


def _holds(check: Callable[[], bool]) -> bool:
    # a name too long for the filesystem, or with a NUL byte, names no local file
    try:
        return check()
    except (OSError, ValueError):
        return False
