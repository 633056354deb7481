"""SGLang's own server-args resolution of detargs' launches, recorded by tools/sglang_resolution.py.

The tool runs each release's real ``prepare_server_args`` (and 0.5.19+'s ``resolve_once``) on
CPU with a mocked GPU (its docstring says how) and records the fields SGLang ends with. It is
too heavy for CI, so these tests check the record: that SGLang ends with no prefill CUDA
graph, and that the record still describes what detargs resolves today. After a rules
change, re-record with

    python3 tools/sglang_resolution.py

and commit tests/fixtures/sglang_resolution.json.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parent.parent
RECORD = _ROOT / "tests" / "fixtures" / "sglang_resolution.json"
RERECORD = (
    "re-run `python3 tools/sglang_resolution.py` and commit tests/fixtures/sglang_resolution.json"
)


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sglang_resolution", _ROOT / "tools" / "sglang_resolution.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()
CASES: list[dict[str, Any]] = json.loads(RECORD.read_text("utf-8"))["cases"]


def _id(case: dict[str, Any]) -> str:
    return f"{case['release']}-{case['device']}-{case['fixture']}-{case['variant']}"


def _prefill_param(case: dict[str, Any]) -> Any:
    return pytest.param(case, id=_id(case))


def test_the_record_covers_the_issue_releases_devices_and_fixtures() -> None:
    covered = {
        (c["release"], c["device"], c["fixture"]) for c in CASES if c["variant"] == "detargs"
    }
    wanted = {
        (release, device, fixture)
        for release in TOOL.RELEASES
        for device in TOOL.DEVICES
        for fixture in ("standalone-spec", "mla-fp8")
    }
    assert covered == wanted


@pytest.mark.parametrize("case", [pytest.param(c, id=_id(c)) for c in CASES])
def test_sglang_accepted_the_launch(case: dict[str, Any]) -> None:
    outcome = case["sglang"]
    assert outcome["ok"], outcome.get("error")
    assert outcome["fields"]["sampling_backend"] == "pytorch"
    assert outcome["env"].get("SGLANG_ENABLE_DETERMINISTIC_INFERENCE") == "1"


@pytest.mark.parametrize("case", [_prefill_param(c) for c in CASES])
def test_sglang_ends_with_no_prefill_cuda_graph(case: dict[str, Any]) -> None:
    fields = case["sglang"].get("fields", {})
    assert TOOL.prefill_backend(fields) == "disabled", (
        f"SGLang {case['release']} on {case['device']} resolved the prefill CUDA graph to "
        f"{TOOL.prefill_backend(fields)!r} for {case['argv']}"
    )
    assert fields["cuda_graph_config"]["decode"]["backend"] == "full"


@pytest.mark.parametrize("case", [pytest.param(c, id=_id(c)) for c in CASES])
def test_the_recorded_argv_is_what_detargs_resolves_today(case: dict[str, Any]) -> None:
    fixture_argv, model_arch = TOOL.fixtures(case["release"])[case["fixture"]]
    assert (fixture_argv, model_arch) == (case["fixture_argv"], case["model_arch"]), RERECORD
    argv, env = TOOL.detargs_launch(
        case["release"], case["device"], case["fixture_argv"], case["model_arch"]
    )
    if case["variant"] == "detargs+prefill-disabled":
        assert "--cuda-graph-backend-prefill" not in argv, f"detargs emits it now: {RERECORD}"
        argv = [*argv, "--cuda-graph-backend-prefill", "disabled"]
    assert (argv, env) == (case["argv"], case["env"]), f"detargs resolves differently: {RERECORD}"
