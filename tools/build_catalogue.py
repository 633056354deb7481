"""Generate ``src/detargs/sglang/_data/sglang_flags.json`` from the released SGLang wheels.

For every sglang release from 0.5.3 through 0.5.23 (post releases included, as listed by
``pip index versions sglang``), ``tools/_sglang_parser.py`` builds the release's own argparse
parser in a fresh subprocess and describes every action except ``-h/--help``. Consecutive
releases in which a flag has identical facts become one entry (``first``/``last``
inclusive); see ``detargs.sglang.catalogue`` for the format.

Two cases are mapped onto the format:

* ``argparse.BooleanOptionalAction`` (``--x/--no-x``) becomes two entries on the same dest:
  ``--x`` (``store_true``) and ``--no-x`` (``store_false``).
* A deprecated action that *refuses* to run (raises, or calls ``parser.error``) is not a flag
  the release accepts: it is left out of ``"flags"`` and listed under the top-level
  ``"rejected"`` key instead (``first``/``last``/``options``/``dest``), which the loader ignores.

``replaced_by`` is the flag token of the deprecated action's ``new_flag`` (the text before
any ``=`` or space; ``--x=disabled`` -> ``--x``).

Facts only: no help text is read or written. Run by hand (needs network the first time):

    python3 tools/build_catalogue.py [--jobs 2] [--report .cache/build_report.json]
    python3 tools/build_catalogue.py --sensitivity   # facts that move with stubs or env
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _sglang_parser

REPO: Final = Path(__file__).resolve().parent.parent
DATA_FILE: Final = REPO / "src" / "detargs" / "sglang" / "_data" / "sglang_flags.json"
KINDS: Final = ("store_true", "store_false", "store_const", "value", "nargs", "append", "noop")
NO_VALUE_KINDS: Final = ("store_true", "store_false", "store_const", "noop")
LOW: Final = "0.5.3"
HIGH: Final = "0.5.23"
FACT_KEYS: Final = (
    "options",
    "dest",
    "kind",
    "type",
    "choices",
    "default",
    "const",
    "nargs",
    "required",
    "replaced_by",
)


def _flag_token(new_flag: str | None) -> str | None:
    if new_flag is None:
        return None
    return new_flag.split("=", 1)[0].split()[0]


def normalise(raw: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One release's raw actions -> (flag fact dicts, rejected dicts)."""
    flags: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for action in raw["flags"]:
        if action["rejects"]:
            rejected.append({"options": action["options"], "dest": action["dest"]})
            continue
        facts = {key: action[key] for key in FACT_KEYS}
        facts["replaced_by"] = _flag_token(facts["replaced_by"])
        if facts["kind"] in NO_VALUE_KINDS and facts["nargs"] == 0:
            facts["nargs"] = None  # argparse's nargs=0 of a value-less action says nothing more
        if action["kind"] == "bool_optional":
            positive = [o for o in action["options"] if not o.startswith("--no-")]
            negative = [o for o in action["options"] if o.startswith("--no-")]
            for options, kind in ((positive, "store_true"), (negative, "store_false")):
                if options:
                    flags.append(
                        {
                            **facts,
                            "options": options,
                            "kind": kind,
                            "nargs": None,
                            "const": None,
                            "type": None,
                        }
                    )
            continue
        if facts["kind"] not in KINDS:
            raise ValueError(f"{facts['options'][0]}: unsupported kind {facts['kind']!r}")
        flags.append(facts)
    return flags, rejected


def merge(
    releases: Sequence[str], per_release: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Spans of identical facts, keyed by canonical option, in releases order."""
    entries: list[dict[str, Any]] = []
    open_entries: dict[str, dict[str, Any]] = {}
    previous: str | None = None
    for release in releases:
        seen: set[str] = set()
        for facts in per_release[release]:
            name = facts["options"][0]
            if name in seen:
                raise ValueError(f"{release}: {name} registered twice")
            seen.add(name)
            current = open_entries.get(name)
            if (
                current is not None
                and current["last"] == previous
                and all(current[key] == facts[key] for key in facts)
            ):
                current["last"] = release
                continue
            entry = {"first": release, "last": release, **facts}
            entries.append(entry)
            open_entries[name] = entry
        previous = release
    order = {release: i for i, release in enumerate(releases)}
    entries.sort(key=lambda e: (e["options"][0], order[e["first"]]))
    return entries


def render(
    releases: Sequence[str],
    entries: Iterable[dict[str, Any]],
    rejected: Iterable[dict[str, Any]],
) -> str:
    def line(obj: dict[str, Any]) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    parts = ['{"format":1,', f'"releases":{json.dumps(list(releases))},', '"flags":[']
    flag_lines = [line(e) for e in entries]
    parts.append(",\n".join(flag_lines))
    parts.append("],")
    parts.append('"rejected":[')
    parts.append(",\n".join(line(e) for e in rejected))
    parts.append("]}")
    return "\n".join(parts) + "\n"


def build(
    releases: Sequence[str], jobs: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        found = pool.map(_sglang_parser.extract_flags, releases)
        raws = dict(zip(releases, found, strict=True))
    per_release: dict[str, list[dict[str, Any]]] = {}
    rejected_per_release: dict[str, list[dict[str, Any]]] = {}
    report: dict[str, Any] = {
        "notes": {},
        "fn_types": {},
        "kinds": {},
        "types": {},
        "stubbed_modules": {},
        "replaced_by_raw": {},
        "unserialisable": {},
    }
    for release in releases:
        raw = raws[release]
        flags, rejected = normalise(raw)
        per_release[release] = flags
        rejected_per_release[release] = rejected
        if raw["notes"]:
            report["notes"][release] = raw["notes"]
        report["stubbed_modules"][release] = raw["stubbed"]
        for action in raw["flags"]:
            new_flag = action["replaced_by"]
            if new_flag is not None and new_flag != _flag_token(new_flag):
                report["replaced_by_raw"].setdefault(f"{action['options'][0]}: {new_flag}", [])
                report["replaced_by_raw"][f"{action['options'][0]}: {new_flag}"].append(release)
        for facts in flags:
            report["kinds"][facts["kind"]] = report["kinds"].get(facts["kind"], 0) + 1
            kind_name = str(facts["type"])
            report["types"][kind_name] = report["types"].get(kind_name, 0) + 1
            if facts["type"] and facts["type"].startswith("fn:"):
                report["fn_types"].setdefault(facts["type"], set()).add(facts["options"][0])
    report["fn_types"] = {k: sorted(v) for k, v in report["fn_types"].items()}
    entries = merge(releases, per_release)
    rejected_entries = [
        {key: value for key, value in entry.items()}
        for entry in merge(releases, rejected_per_release)
    ]
    return entries, rejected_entries, report


def _facts_by_name(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    flags, rejected = normalise(raw)
    result = {facts["options"][0]: facts for facts in flags}
    result.update({f"rejected {r['options'][0]}": r for r in rejected})
    return result


def _differences(base: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for name in sorted(base.keys() | other.keys()):
        if name not in other:
            lines.append(f"{name}: gone")
        elif name not in base:
            lines.append(f"{name}: appears")
        elif base[name] != other[name]:
            changed = [
                f"{key} {base[name][key]!r} -> {other[name][key]!r}"
                for key in base[name]
                if base[name][key] != other[name][key]
            ]
            lines.append(f"{name}: {'; '.join(changed)}")
    return lines


def sensitivity(release: str) -> list[str]:
    """Facts of ``release`` that move with the stubs' behaviour or with a SGLANG_* variable.

    Each other stub flavour is compared with the default one; then every ``SGLANG_*``/``SGL_*``
    variable the release reads while building its parser is set to ``1``, one at a time.
    """
    raw = _sglang_parser.extract_flags(release)
    base = _facts_by_name(raw)
    lines: list[str] = []
    runs: list[tuple[str, str, dict[str, str]]] = [
        (f"stub flavour {flavour}", flavour, {}) for flavour in _sglang_parser.FLAVOURS[1:]
    ]
    runs += [
        (f"{name}=1", _sglang_parser.FLAVOURS[0], {name: "1"})
        for name in raw["env_read"]
        if name.startswith(("SGLANG_", "SGL_"))
    ]
    for label, flavour, env in runs:
        try:
            other = _facts_by_name(_sglang_parser.extract_flags(release, flavour=flavour, env=env))
        except RuntimeError as exc:
            lines.append(f"{release} {label}: parser not built ({str(exc).splitlines()[-1]})")
            continue
        lines += [f"{release} {label}: {line}" for line in _differences(base, other)]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    cli.add_argument("--jobs", type=int, default=2)
    cli.add_argument("--output", type=Path, default=DATA_FILE)
    cli.add_argument("--report", type=Path, default=REPO / ".cache" / "build_report.json")
    cli.add_argument("--releases", nargs="*", help="default: every release 0.5.3-0.5.23")
    cli.add_argument(
        "--sensitivity",
        action="store_true",
        help="write nothing; list facts that depend on the stubs or on SGLANG_* "
        "variables (slow: one parser build per variable)",
    )
    ns = cli.parse_args(argv)
    releases: list[str] = ns.releases or _sglang_parser.release_list(LOW, HIGH)
    if ns.sensitivity:
        with ThreadPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
            for lines in pool.map(sensitivity, releases):
                for line in lines:
                    print(line)
        return 0
    print(f"{len(releases)} releases: {releases[0]} .. {releases[-1]}", file=sys.stderr)
    entries, rejected, report = build(releases, ns.jobs)
    text = render(releases, entries, rejected)
    ns.output.parent.mkdir(parents=True, exist_ok=True)
    ns.output.write_text(text, "utf-8")
    ns.report.parent.mkdir(parents=True, exist_ok=True)
    ns.report.write_text(json.dumps(report, indent=1, sort_keys=True), "utf-8")
    print(
        f"wrote {ns.output} ({len(entries)} entries, {len(rejected)} rejected, "
        f"{len(text.encode())} bytes); report in {ns.report}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
