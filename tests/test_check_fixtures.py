"""The check from test fixtures: the pytest fixture and the mixin, in inner pytest sessions.

The "launched server" is the stand-in on 127.0.0.1; a class whose server is not
deterministic fails every one of its tests with the divergence report.
"""

from __future__ import annotations

import pytest

from tests.test_plugin import PLUGIN


def _run(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *PLUGIN, "-v")


_PYTEST_CLASS = """
import pytest
from detargs.check.standin import StandinServer


@pytest.fixture(scope="class")
def server(detargs_check):
    with StandinServer({mode!r}) as launched:
        detargs_check(launched.url, max_new_tokens=8)
        yield launched


class TestGsm8k:
    def test_accuracy(self, server):
        assert server.url

    def test_latency(self, server):
        assert server.url
"""


def test_the_fixture_passes_a_deterministic_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_PYTEST_CLASS.format(mode="deterministic"))
    _run(pytester).assert_outcomes(passed=2)


def test_the_fixture_fails_the_class_with_the_divergence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_PYTEST_CLASS.format(mode="batch-size"))
    result = _run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the server is not deterministic*",
            "*batch   NOT deterministic*",
            "*first divergence: batch prompt: token at position 3 differs*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


_UNITTEST_CLASS = """
import unittest
from detargs.check.standin import StandinServer
from detargs.fixtures import DeterministicServerMixin

STOPPED = []


class TestGsm8k(DeterministicServerMixin, unittest.TestCase):
    model = "meta-llama/Llama-3.1-8B-Instruct"
    enable_deterministic_inference = True
    device = "h100"
    sglang_version = "0.5.23"

    @classmethod
    def setUpClass(cls):
        cls.process = StandinServer({mode!r}).start()  # popen_launch_server(...) on a GPU
        cls.assert_deterministic_server(cls.process.url, max_new_tokens=8)

    @classmethod
    def tearDownClass(cls):
        cls.process.stop()
        STOPPED.append(cls.__name__)

    def test_accuracy(self):
        self.assertIn("--sampling-backend", self.get_server_args())

    def test_latency(self):
        pass


def test_the_server_was_stopped():
    assert STOPPED == ["TestGsm8k"]
"""


def test_the_mixin_passes_a_deterministic_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_UNITTEST_CLASS.format(mode="deterministic"))
    _run(pytester).assert_outcomes(passed=3)


def test_the_mixin_fails_the_class_and_still_stops_the_server(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(_UNITTEST_CLASS.format(mode="cache-hit"))
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*NondeterminismError: TestGsm8k: the server is not deterministic*",
            "*prefix  NOT deterministic*",
        ]
    )


_UNCHECKABLE_CLASS = """
import socket
import unittest
from detargs.fixtures import DeterministicServerMixin

STOPPED = []


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestGsm8k(DeterministicServerMixin, unittest.TestCase):
    model = "m"
    enable_deterministic_inference = True
    device = "h100"
    sglang_version = "0.5.23"

    @classmethod
    def setUpClass(cls):
        # a server that died at start-up: nothing listens on its port
        cls.assert_deterministic_server(f"http://127.0.0.1:{_free_port()}", timeout_s=2.0)

    @classmethod
    def tearDownClass(cls):
        STOPPED.append(cls.__name__)

    def test_accuracy(self):
        pass


def test_the_server_was_stopped():
    assert STOPPED == ["TestGsm8k"]
"""


def test_the_mixin_stops_the_server_when_it_cannot_be_checked(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(_UNCHECKABLE_CLASS)
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*CheckError*"])
