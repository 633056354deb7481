"""Unit tests beside the stand-in runs: wire-format parsing, comparison, plans."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detargs.check import CheckOptions, Output
from detargs.check.probes import plan
from detargs.check.protocol import OpenAICompletions, SGLangGenerate
from detargs.check.report import first_divergence
from detargs.errors import CheckError


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {
                "text": " a b",
                "meta_info": {"output_token_logprobs": [[-0.5, 7, None], [-1.25, 9, None]]},
            },
            Output(" a b", (7, 9), (-0.5, -1.25)),
            id="triples",
        ),
        pytest.param(
            [{"text": "x", "meta_info": {"output_token_logprobs": [[-0.5, 7, "x"]]}}],
            Output("x", (7,), (-0.5,)),
            id="list-of-one",
        ),
        pytest.param(
            {"text": "x", "meta_info": {"output_token_logprobs": [[None, 7, None]]}},
            Output("x", (7,), (None,)),
            id="null-logprob",
        ),
        pytest.param(
            {"text": "x y", "output_ids": [3, 4], "meta_info": {}},
            Output("x y", (3, 4), None),
            id="ids-without-logprobs",
        ),
        pytest.param({"text": "x y", "meta_info": {}}, Output("x y"), id="text-only"),
    ],
)
def test_sglang_answers_are_read(payload: object, expected: Output) -> None:
    assert SGLangGenerate().parse(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"error": "overloaded"}, id="no-text"),
        pytest.param(
            {"text": "x", "meta_info": {"output_token_logprobs": [[7, "-0.5"]]}},
            id="swapped-triple",
        ),
        pytest.param([{"text": "a"}, {"text": "b"}], id="a-batch-answer"),
    ],
)
def test_sglang_answers_that_are_not_completions_are_refused(payload: object) -> None:
    with pytest.raises(CheckError, match="/generate answered something that is not a"):
        SGLangGenerate().parse(payload)


def test_the_sglang_body_leaves_an_unset_seed_out() -> None:
    from detargs.check.probes import Request

    greedy = SGLangGenerate().body(Request("p", 4))
    seeded = SGLangGenerate().body(Request("p", 4, 1.0, 7))
    assert "sampling_seed" not in greedy["sampling_params"]
    assert seeded["sampling_params"]["sampling_seed"] == 7
    assert greedy["return_logprob"] is True
    openai = OpenAICompletions("m").body(Request("p", 4, 1.0, 7))
    assert (openai["model"], openai["seed"], openai["max_tokens"]) == ("m", 7, 4)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        pytest.param(
            {"text": "ab", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0, -2.0]}},
            Output("ab", ("a", "b"), (-1.0, -2.0)),
            id="logprobs",
        ),
        pytest.param({"text": "ab", "logprobs": None}, Output("ab"), id="no-logprobs"),
        pytest.param(
            {"text": "ab", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0]}},
            Output("ab", ("a", "b")),
            id="ragged-logprobs",
        ),
    ],
)
def test_openai_answers_are_read(choice: dict[str, Any], expected: Output) -> None:
    assert OpenAICompletions().parse({"choices": [choice]}) == expected


def test_openai_answers_without_choices_are_refused() -> None:
    with pytest.raises(CheckError, match="no 'choices'"):
        OpenAICompletions().parse({"error": {"message": "model not found"}})


# --- comparison ---------------------------------------------------------------------------


def test_a_last_bit_and_a_signed_zero_are_differences() -> None:
    a = Output("t", (1, 2), (-1.0, 0.0))
    assert (
        first_divergence(
            "g", [("r", a), ("s", Output("t", (1, 2), (-1.0, -0.0)))], "tokens+logprobs"
        )
        is not None
    )
    ulp = Output("t", (1, 2), (math.nextafter(-1.0, 0.0), 0.0))
    found = first_divergence("g", [("r", a), ("s", ulp)], "tokens+logprobs")
    assert found is not None
    assert (found.position, found.field) == (0, "logprob")
    assert first_divergence("g", [("r", a), ("s", ulp)], "tokens") is None


tokens = st.lists(st.integers(0, 5), min_size=0, max_size=8)


@given(tokens, tokens)
def test_the_first_divergence_is_the_first_differing_token(a: list[int], b: list[int]) -> None:
    found = first_divergence(
        "g", [("first", Output("", tuple(a))), ("second", Output("", tuple(b)))], "tokens"
    )
    if a == b:
        assert found is None
        return
    assert found is not None
    prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if prefix is None:
        assert (found.field, found.position) == ("length", min(len(a), len(b)))
        assert (found.expected, found.actual) == (len(a), len(b))
    else:
        assert (found.field, found.position) == ("token", prefix)
        assert (found.expected, found.actual) == (a[prefix], b[prefix])
    assert (found.reference, found.run) == ("first", "second")


@given(st.text(max_size=20), st.text(max_size=20))
def test_text_comparison_finds_the_first_differing_character(a: str, b: str) -> None:
    found = first_divergence("g", [("r", Output(a)), ("s", Output(b))], "text")
    assert (found is None) == (a == b)
    if found is not None:
        assert a[: found.position] == b[: found.position]


# --- plans --------------------------------------------------------------------------------


def test_every_burst_puts_the_probe_prompt_in_the_middle_and_counts_its_others() -> None:
    options = CheckOptions(others=(1, 3, 7, 15, 31), trials=2, prompt_words=20)
    batch = plan("batch", options)
    sizes = [len(r.requests) for r in batch.rounds]
    assert sizes == [1, 2, 4, 8, 16, 32] * 2
    for round_ in batch.rounds:
        [watch] = round_.watched
        assert watch.index == (len(round_.requests) - 1) // 2 or len(round_.requests) == 1
        assert len({r.prompt for r in round_.requests}) == len(round_.requests)
    probe_prompts = {r.requests[w.index].prompt for r in batch.rounds for w in r.watched}
    assert len(probe_prompts) == 1


def test_the_prefix_plan_flushes_before_cold_runs_and_shares_prefixes() -> None:
    options = CheckOptions(prefix_fractions=(0.5,), prompt_words=40)
    rounds = plan("prefix", options).rounds
    assert [r.flush for r in rounds] == [True, False, True, True, False]
    whole, variant = rounds[0].requests[0].prompt, rounds[2].requests[0].prompt
    assert variant.split()[:20] == whole.split()[:20]
    assert variant != whole
    untagged = plan("prefix", options, can_flush=False, nonce="n").rounds
    assert not any(r.flush for r in untagged)
    assert untagged[2].requests[0].prompt.startswith("[n-1] ")


def test_the_seeded_plan_samples_with_the_seed() -> None:
    options = CheckOptions(temperature=0.7, seed=99)
    rounds = plan("seeded", options).rounds
    probe = rounds[0].requests[0]
    assert (probe.temperature, probe.seed) == (0.7, 99)
    fillers = [r for round_ in rounds[1:2] for r in round_.requests if r != probe]
    assert all(r.seed not in (None, 99) for r in fillers)


def test_the_progress_bar_shows_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from detargs.check import runner

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(runner._progress_bar(10, None), runner._NoBar)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = runner._progress_bar(10, None)
    bar.update(10)
    bar.close()
    assert "detargs check:   0%" in terminal.getvalue()
    assert isinstance(runner._progress_bar(10, False), runner._NoBar)
