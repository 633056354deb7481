"""The fields of ``LaunchValues``, generated from ``ServerArgs`` and checked for drift.

``ServerArgs`` (``detargs.sglang.args``) is the one declaration of a launch's fields: name,
type, default and description. ``LaunchValues`` (``detargs.sglang._values``), the plain record
the codec and the rules engine run on without pydantic, carries the same fields with
the same types and defaults; its field block is written by this module from the model's
own source text, so that ``mypy --strict`` reads real annotations in both classes and
the cold path imports a plain dataclass, not a table to build one from.

    python -m detargs.sglang._record_fields --write     # after editing ServerArgs
    python -m detargs.sglang._record_fields --check     # what tests/test_values.py asserts
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["main"]

BEGIN: Final = (
    "    # --- fields: generated from ServerArgs by "
    "python -m detargs.sglang._record_fields --write\n"
)
END: Final = "    # --- end of the generated fields\n"
_VALUES: Final = Path(__file__).with_name("_values.py")


def field_block() -> str:
    """The ``LaunchValues`` field lines for ``ServerArgs`` as its source declares them."""
    from . import args

    source = inspect.getsource(args)
    model = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and node.name == "ServerArgs"
    )
    lines = []
    for node in model.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if name == "model_config":
            continue
        annotation = ast.get_source_segment(source, node.annotation)
        lines.append(f"    {name}: {annotation} = {_default(source, name, node.value)}\n")
    return BEGIN + "".join(lines) + END


def _default(source: str, name: str, value: ast.expr | None) -> str:
    if not (isinstance(value, ast.Call) and ast.get_source_segment(source, value.func) == "Field"):
        raise ValueError(f"ServerArgs.{name}: declare it as Field(default, description=...)")
    factory = next((item.value for item in value.keywords if item.arg == "default_factory"), None)
    if factory is not None:
        return f"field(default_factory={ast.get_source_segment(source, factory)})"
    if not value.args:
        raise ValueError(f"ServerArgs.{name}: give its default as Field's first argument")
    return str(ast.get_source_segment(source, value.args[0]))


def with_block(text: str, block: str) -> str:
    """``text`` (``_values.py``) with its generated field block replaced by ``block``."""
    start = text.index(BEGIN)
    end = text.index(END, start) + len(END)
    return text[:start] + block + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m detargs.sglang._record_fields", description="generate LaunchValues' fields"
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--write",
        nargs="?",
        const=str(_VALUES),
        metavar="PATH",
        help="rewrite the block in PATH (default: detargs/sglang/_values.py)",
    )
    action.add_argument(
        "--check",
        nargs="?",
        const=str(_VALUES),
        metavar="PATH",
        help="exit 1 when the block in PATH is out of date",
    )
    options = parser.parse_args(argv)
    path = Path(options.write or options.check)
    current = path.read_text(encoding="utf-8")
    wanted = with_block(current, field_block())
    if options.write:
        path.write_text(wanted, encoding="utf-8")
        return 0
    if current != wanted:
        print(
            f"{path}: LaunchValues' fields differ from ServerArgs': run python -m "
            "detargs.sglang._record_fields --write",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
