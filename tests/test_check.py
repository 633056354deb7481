"""``detargs check`` against real HTTP servers on 127.0.0.1: the stand-in in every mode.

Every injected non-determinism must be caught, by the probe that should catch it, with a
divergence that names where; the deterministic stand-in must pass, also 200 times over.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import jsonschema
import pytest

from detargs.check import (
    REPORT_SCHEMA,
    SHORT,
    CheckOptions,
    CheckReport,
    assert_deterministic,
    check,
)
from detargs.check.standin import StandinServer
from detargs.cli import main
from detargs.errors import CheckError, InvalidArgsError, NondeterminismError

# small enough for many runs, big enough that every probe has bursts of several sizes
QUICK = CheckOptions(
    max_new_tokens=8,
    trials=2,
    others=(1, 3, 7),
    repeats=3,
    prefix_fractions=(0.5,),
    prompt_words=40,
)

# which probes must fail, and on what, for each injected non-determinism
EXPECTED = {
    "batch-size": ({"batch", "seeded"}, "token"),
    "arrival-order": ({"batch", "seeded"}, "token"),
    "logprob-last-bit": ({"batch", "seeded"}, "logprob"),
    "seed-ignored": ({"seeded"}, "token"),
    "cache-hit": ({"repeat", "prefix"}, "token"),
}


@pytest.fixture(params=["sglang", "openai"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_deterministic_standin_passes_every_probe(api: str) -> None:
    with StandinServer("deterministic", apis=[api]) as server:
        report = check(server.url, QUICK)
    assert report.api == api
    assert report.deterministic
    assert [p.name for p in report.probes] == ["batch", "repeat", "prefix", "seeded"]
    assert all(p.unique_outputs == 1 and p.divergence is None for p in report.probes)
    assert report.compared == "tokens+logprobs"
    assert report.model == "standin"


@pytest.mark.parametrize("mode", [pytest.param(m, id=m) for m in EXPECTED])
def test_every_injected_nondeterminism_is_caught(mode: str, api: str) -> None:
    with StandinServer(mode, apis=[api]) as server:
        report = check(server.url, QUICK)
    failing, field = EXPECTED[mode]
    assert not report.deterministic
    assert {p.name for p in report.probes if not p.deterministic} >= failing
    for probe in report.probes:
        if probe.name in failing:
            assert probe.unique_outputs >= 2
            assert probe.divergence is not None
            assert probe.divergence.field == field
            assert probe.divergence.expected != probe.divergence.actual
    first = next(p.divergence for p in report.probes if p.name in failing and p.divergence)
    if field == "token" and mode != "seed-ignored":
        assert first.position == 3  # the stand-in keeps tokens 0-2 whatever happens


def test_a_last_bit_logprob_difference_is_reported_as_that_one_ulp() -> None:
    with StandinServer("logprob-last-bit") as server:
        report = check(server.url, QUICK, probes=("batch",))
    divergence = report.probes[0].divergence
    assert divergence is not None
    assert divergence.field == "logprob"
    assert isinstance(divergence.expected, float)
    assert isinstance(divergence.actual, float)
    assert math.nextafter(divergence.expected, 0.0) == divergence.actual
    assert "alone" in divergence.reference
    assert "with 1 other" in divergence.run


def test_bursts_are_served_as_batches() -> None:
    # the check's concurrency is what makes batch dependence visible: bursts must co-schedule
    with StandinServer("deterministic") as server:
        check(server.url, QUICK, probes=("batch",))
    assert max(server.batch_sizes) >= 4
    assert server.batch_sizes.count(1) >= QUICK.trials  # the probe prompt alone


def test_the_cache_probe_flushes_and_compares_cold_with_cached() -> None:
    with StandinServer("cache-hit") as server:
        report = check(server.url, QUICK, probes=("prefix",))
        assert server.flushes >= 1 + 2 * len(QUICK.prefix_fractions)
    divergence = report.probes[0].divergence
    assert divergence is not None
    assert "cold" in divergence.reference
    assert "cached" in divergence.run


def test_without_a_flush_endpoint_cold_prompts_are_fresh_and_a_cache_hit_still_shows() -> None:
    with StandinServer("cache-hit", flush=False) as server:
        report = check(server.url, QUICK, probes=("prefix",))
    prefix = report.probes[0]
    assert not prefix.deterministic
    assert any("cannot flush" in note for note in prefix.notes)
    with StandinServer("deterministic", flush=False) as server:
        assert check(server.url, QUICK, probes=("prefix",)).deterministic


def test_without_logprobs_outputs_are_compared_by_tokens(api: str) -> None:
    with StandinServer("deterministic", apis=[api], logprobs=False) as server:
        report = check(server.url, QUICK)
    assert report.deterministic
    assert report.compared == ("tokens" if api == "sglang" else "text")
    assert any("no logprobs" in note for note in report.notes)
    with StandinServer("batch-size", apis=[api], logprobs=False) as server:
        assert not check(server.url, QUICK).deterministic


def test_no_false_alarm_in_200_runs() -> None:
    tiny = CheckOptions(
        max_new_tokens=4,
        trials=1,
        others=(1, 3),
        repeats=2,
        prefix_fractions=(0.5,),
        prompt_words=12,
    )
    verdicts = []
    with StandinServer("deterministic", gap_s=0.002) as server:
        for _ in range(200):
            verdicts.append(check(server.url, tiny).deterministic)
    assert verdicts == [True] * 200
    assert max(server.batch_sizes) >= 2


def test_the_same_options_send_the_same_prompts_so_reports_compare() -> None:
    with StandinServer("deterministic") as one, StandinServer("deterministic") as two:
        first, second = check(one.url, QUICK), check(two.url, QUICK)
    assert [p.groups for p in first.probes] == [p.groups for p in second.probes]


def test_check_runs_from_inside_an_event_loop() -> None:
    async def caller(url: str) -> CheckReport:
        return check(url, QUICK, probes=("repeat",))

    with StandinServer("deterministic") as server:
        assert asyncio.run(caller(server.url)).deterministic


def test_assert_deterministic_raises_with_the_report() -> None:
    with (
        StandinServer("arrival-order") as server,
        pytest.raises(NondeterminismError, match="first divergence") as caught,
    ):
        assert_deterministic(server.url, QUICK)
    assert isinstance(caught.value.report, CheckReport)
    assert caught.value.exit_code == 5


# --- the report's JSON --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["deterministic", "cache-hit", "logprob-last-bit"])
def test_the_json_report_follows_the_schema_and_round_trips(mode: str) -> None:
    with StandinServer(mode) as server:
        report = check(server.url, QUICK)
    data = json.loads(report.to_json())
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["deterministic"] is report.deterministic
    assert CheckReport.from_json(report.to_json()) == report


@pytest.mark.parametrize("text", ['{"schema_version": 99}', "[]", '"x"', "3", "{"])
def test_a_report_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(CheckError, match="not a detargs check report"):
        CheckReport.from_json(text)


# --- the CLI ------------------------------------------------------------------------------


def _cli(*words: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(words))
    return code, out.getvalue(), err.getvalue()


_CLI_QUICK = (
    "--max-new-tokens",
    "8",
    "--trials",
    "2",
    "--others",
    "1,3,7",
    "--repeats",
    "3",
    "--prompt-words",
    "40",
)


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        pytest.param("deterministic", 0, id="deterministic"),
        pytest.param("batch-size", 5, id="batch-size"),
        pytest.param("seed-ignored", 5, id="seed-ignored"),
    ],
)
def test_the_cli_exit_code_is_the_verdict(mode: str, code: int) -> None:
    with StandinServer(mode) as server:
        got, out, err = _cli("check", server.url, *_CLI_QUICK)
    assert (got, err) == (code, "")
    assert out.splitlines()[0].endswith("outputs compared by tokens+logprobs")
    assert ("NOT deterministic" in out) is (code == 5)


def test_the_cli_prints_json_that_follows_the_schema() -> None:
    with StandinServer("cache-hit", apis=["openai"]) as server:
        code, out, _ = _cli("check", server.url, "--json", "--api", "openai", *_CLI_QUICK)
    assert code == 5
    data = json.loads(out)
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["api"] == "openai"
    assert data["options"]["others"] == [1, 3, 7]


def test_an_openai_base_url_ending_in_v1_checks_the_server() -> None:
    with StandinServer("deterministic", apis=["openai"]) as server:
        url = server.url
        code, out, err = _cli("check", f"{url}/v1/", *_CLI_QUICK)
    assert (code, err) == (0, "")
    assert out.startswith(f"{url} (openai")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Scripted(BaseHTTPRequestHandler):
    """Answers every request with what the test put in ``answers`` for its path."""

    answers: ClassVar[dict[str, tuple[int, bytes, float]]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        import time

        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body, delay = self.answers.get(self.path, (404, b"{}", 0.0))
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the timeout case's thread writes to a closed socket after its test: no traceback
        # may land in a later test's captured output
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def _scripted(answers: dict[str, tuple[int, bytes, float]]) -> Iterator[str]:
    handler = type("Handler", (_Scripted,), {"answers": answers})
    server = _Quiet(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_INFO = (200, b'{"model_path": "m"}', 0.0)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        pytest.param(
            {}, "does not look like an SGLang or OpenAI-compatible server", id="not-a-server"
        ),
        pytest.param(
            {"/model_info": _INFO, "/generate": (500, b"boom", 0.0)},
            "answered 500: boom",
            id="server-error",
        ),
        pytest.param(
            {"/model_info": _INFO, "/generate": (200, b"<html>", 0.0)}, "is not JSON", id="not-json"
        ),
        pytest.param(
            {"/model_info": _INFO, "/generate": (200, b'{"error": 1}', 0.0)},
            "not a completion: no 'text'",
            id="not-a-completion",
        ),
        pytest.param(
            {"/model_info": _INFO, "/generate": (200, b"{}", 2.0)},
            "timed out after 0.3 s; raise --timeout",
            id="timeout",
        ),
    ],
)
def test_a_server_that_cannot_be_checked_exits_6(
    answers: dict[str, tuple[int, bytes, float]], message: str
) -> None:
    with _scripted(answers) as url:
        code, out, err = _cli("check", url, "--timeout", "0.3", "--probes", "repeat")
    assert (code, out) == (6, "")
    assert err.startswith("detargs: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("127.0.0.1:30000", "is not a server URL", id="no-scheme"),
        pytest.param("http://127.0.0.1:port", "has no usable port", id="bad-port"),
        pytest.param("http://127.0.0.1:99999", "has no usable port", id="port-out-of-range"),
        pytest.param("http://127.0.0.1:30000/?x=1", "has a query or fragment", id="query"),
        pytest.param("http://127.0.0.1:{port}", "cannot connect to", id="nothing-listening"),
    ],
)
def test_a_bad_or_dead_url_exits_6(url: str, message: str) -> None:
    code, _, err = _cli("check", url.format(port=_free_port()))
    assert code == 6
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("words", "message"),
    [
        pytest.param(("--trials", "0"), "--trials: must be at least 1", id="trials"),
        pytest.param(("--others", "1,x"), "--others '1,x': give counts", id="others"),
        pytest.param(("--probes", "batch,speed"), "--probes: must be among", id="probes"),
        pytest.param(
            ("--timeout", "-1"), "--timeout: must be a finite number above 0", id="timeout"
        ),
        pytest.param(
            ("--timeout", "inf"), "--timeout: must be a finite number above 0", id="timeout-inf"
        ),
        pytest.param(
            ("--temperature", "inf"),
            "--temperature: must be a finite number above 0",
            id="temperature-inf",
        ),
        pytest.param(
            ("--temperature", "nan"),
            "--temperature: must be a finite number above 0",
            id="temperature-nan",
        ),
        pytest.param(
            ("--trials", "2", "--trials", "3"), "--trials is given twice", id="repeated-option"
        ),
        pytest.param(("--api", "grpc"), "argument --api: invalid choice", id="api"),
    ],
)
def test_bad_options_exit_2_before_anything_is_sent(words: tuple[str, ...], message: str) -> None:
    code, _, err = _cli("check", "http://127.0.0.1:9", *words)
    assert code == 2
    assert message in err


def test_options_from_python_are_checked() -> None:
    with pytest.raises(InvalidArgsError, match="max_new_tokens must be at least 1"):
        check("http://127.0.0.1:9", max_new_tokens=0)
    with pytest.raises(InvalidArgsError, match="unexpected keyword argument 'turns'"):
        check("http://127.0.0.1:9", turns=3)


def test_short_settings_still_catch_batch_dependence() -> None:
    with StandinServer("batch-size") as server:
        assert not check(server.url, SHORT).deterministic


def test_the_schema_in_the_docs_is_the_one_reports_follow() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "check.md").read_text("utf-8")
    block = page.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == REPORT_SCHEMA
