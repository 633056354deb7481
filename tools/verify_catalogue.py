"""Check the committed SGLang flag catalogue against the real parsers, or check argvs.

Default mode: for each catalogued release, build the release's own argparse parser (see
``tools/_sglang_parser.py``) and compare its flags with ``detargs.sglang.catalogue.catalogue_for``
on options, dest, kind, choices and type (``--all-facts``: every catalogued fact), plus the
set of rejected deprecated flags. Then (unless ``--no-probe``) it feeds the real parser one
argv per catalogued option string, with a sample value of the catalogued type or the first
choice, and fails if any is refused; options catalogued only for other releases are fed
too, and any the parser still takes (an argparse abbreviation) is printed as a note.
Prints one summary line per release and exits 1 on any difference.

``--argv-file F.json``: ``F`` is ``{"<release>": [[argv...], ...]}``; every argv (which
already contains ``--model-path``) goes through the release's real ``parser.parse_args``.
Prints ACCEPT/REJECT per argv, optionally writes the results as JSON (``--json-out``), and
exits 1 if any argv is rejected.

Heavy (downloads wheels on first use), run by hand:

    python3 tools/verify_catalogue.py [--releases 0.5.10 0.5.23] [--all-facts]
    python3 tools/verify_catalogue.py --argv-file argvs.json [--json-out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

_TOOLS: Final = Path(__file__).resolve().parent
sys.path.insert(0, str(_TOOLS))
sys.path.insert(0, str(_TOOLS.parent / "src"))

import _sglang_parser  # noqa: E402
import build_catalogue  # noqa: E402

from detargs.sglang import catalogue  # noqa: E402

CHECKED: Final = ("options", "dest", "kind", "choices", "type")


def _catalogued(release: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for flag in catalogue.catalogue_for(release).flags:
        facts: dict[str, Any] = {key: getattr(flag, key) for key in keys}
        facts["options"] = list(flag.options)
        if facts.get("choices") is not None:
            facts["choices"] = list(facts["choices"])
        result[flag.name] = facts
    return result


def _rejected(release: str) -> set[str]:
    text = build_catalogue.DATA_FILE.read_text("utf-8")
    data = json.loads(text)
    order = {name: i for i, name in enumerate(data["releases"])}
    position = order[release]
    return {
        entry["options"][0]
        for entry in data.get("rejected", [])
        if order[entry["first"]] <= position <= order[entry["last"]]
    }


def compare(release: str, raw: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """Differences between the real parser (``raw``) and the catalogue, one line each."""
    flags, rejected = build_catalogue.normalise(raw)
    real = {facts["options"][0]: {key: facts[key] for key in keys} for facts in flags}
    listed = _catalogued(release, keys)
    problems: list[str] = []
    for name in sorted(real.keys() - listed.keys()):
        problems.append(f"missing from catalogue: {name}")
    for name in sorted(listed.keys() - real.keys()):
        problems.append(f"not in the real parser: {name}")
    for name in sorted(real.keys() & listed.keys()):
        for key in keys:
            if real[name][key] != listed[name][key]:
                problems.append(
                    f"{name}: {key} is {real[name][key]!r}, catalogue says {listed[name][key]!r}"
                )
    real_rejected = {entry["options"][0] for entry in rejected}
    listed_rejected = _rejected(release)
    for name in sorted(real_rejected ^ listed_rejected):
        where = "real parser" if name in real_rejected else "catalogue"
        problems.append(f"rejected flag {name} only in the {where}")
    return problems


# A value each catalogued type accepts, for the probe.
_SAMPLES: Final = {
    "str": "x",
    "int": "1",
    "float": "0.5",
    "json": "{}",
    "bool": "true",
    "fn:json_list_type": "[]",
    "fn:human_readable_int": "1",
    "fn:nullable_str": "x",
    "fn:parse_cuda_graph_config_arg": "{}",
}


def _sample(flag: catalogue.Flag) -> str | None:
    if flag.choices:
        return flag.choices[0]
    if flag.type is None:
        return "x"
    return _SAMPLES.get(flag.type)


def probe_argvs(release: str) -> tuple[list[list[str]], list[list[str]]]:
    """(argvs the release must accept, argvs using options it does not have)."""
    base = ["--model-path", "m"]
    accept: list[list[str]] = []
    for flag in catalogue.catalogue_for(release).flags:
        if flag.name in ("--model-path",):
            continue
        value: list[str] = []
        if flag.takes_value:
            sample = _sample(flag)
            if sample is None:
                continue
            count = flag.nargs if isinstance(flag.nargs, int) else 1
            value = [sample] * count
        for option in flag.options:
            if option != "--model":
                accept.append([*base, option, *value])
    present = set(catalogue.catalogue_for(release).by_option)
    absent: set[str] = set()
    for other in catalogue.releases():
        absent |= set(catalogue.catalogue_for(other).by_option) - present
    absent |= _rejected(release)
    # With and without a value: an abbreviation of a valued option needs one.
    reject = [[*base, option, *value] for option in sorted(absent) for value in ([], ["1"])]
    return accept, reject


def probe(release: str) -> tuple[list[str], list[str]]:
    """(problems, notes): catalogued flags the parser refuses; absent ones it takes."""
    accept, reject = probe_argvs(release)
    outcome = _sglang_parser.check_argvs(release, [*accept, *reject])
    problems = [
        f"refused {' '.join(item['argv'][2:])}: {item['error']}"
        for item in outcome[: len(accept)]
        if not item["ok"]
    ]
    notes = sorted(
        {
            f"accepted though not catalogued (abbreviation?): {item['argv'][2]}"
            for item in outcome[len(accept) :]
            if item["ok"]
        }
    )
    return problems, notes


def verify(releases: Sequence[str], keys: Sequence[str], jobs: int, with_probe: bool = True) -> int:
    failures = 0
    published = _sglang_parser.release_list(build_catalogue.LOW, build_catalogue.HIGH)
    if list(published) != list(catalogue.releases()):
        print(
            f"release list differs: published {published}, catalogued {list(catalogue.releases())}"
        )
        failures += 1
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        raws = pool.map(_sglang_parser.extract_flags, releases)
        probes = pool.map(probe, releases if with_probe else [])
        for release, raw in zip(releases, raws, strict=True):
            problems = compare(release, raw, keys)
            notes: list[str] = []
            if with_probe:
                refused, notes = next(probes)
                problems += refused
            count = len(catalogue.catalogue_for(release).flags)
            status = "OK  " if not problems else "FAIL"
            print(
                f"{status} {release:<14} {count:4d} flags, {len(problems)} differences, "
                f"{len(notes)} notes"
            )
            for problem in problems:
                print(f"       {problem}")
            for note in notes:
                print(f"       note: {note}")
            failures += bool(problems)
    print(f"{len(releases) - failures} of {len(releases)} releases match")
    return 1 if failures else 0


def check_file(path: Path, json_out: Path | None, jobs: int) -> int:
    request: dict[str, list[list[str]]] = json.loads(path.read_text("utf-8"))
    rejected = 0
    results: dict[str, list[dict[str, Any]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        answers = pool.map(_sglang_parser.check_argvs, request.keys(), request.values())
        for release, outcome in zip(request.keys(), answers, strict=True):
            results[release] = outcome
            for item in outcome:
                argv = " ".join(item["argv"])
                if item["ok"]:
                    print(f"ACCEPT {release:<14} {argv}")
                else:
                    rejected += 1
                    print(f"REJECT {release:<14} {argv}\n       {item['error']}")
    total = sum(len(v) for v in results.values())
    print(f"{total - rejected} of {total} argvs accepted")
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=1), "utf-8")
    return 1 if rejected else 0


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description="Verify the SGLang flag catalogue.")
    cli.add_argument("--releases", nargs="*", help="default: every catalogued release")
    cli.add_argument("--all-facts", action="store_true", help="compare every catalogued fact")
    cli.add_argument("--argv-file", type=Path, help='{"<release>": [[argv...], ...]}')
    cli.add_argument("--json-out", type=Path, help="with --argv-file: write results here")
    cli.add_argument(
        "--no-probe", action="store_true", help="skip parsing a sample argv for every flag"
    )
    cli.add_argument("--jobs", type=int, default=2)
    ns = cli.parse_args(argv)
    if ns.argv_file is not None:
        return check_file(ns.argv_file, ns.json_out, ns.jobs)
    releases: list[str] = ns.releases or list(catalogue.releases())
    keys = build_catalogue.FACT_KEYS if ns.all_facts else CHECKED
    return verify(releases, keys, ns.jobs, with_probe=not ns.no_probe)


if __name__ == "__main__":
    raise SystemExit(main())
