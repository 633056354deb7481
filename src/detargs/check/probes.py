"""The probes as plans: which requests go out together, and which outputs are compared.

Pure: a plan is built from ``CheckOptions`` alone (plus whether the server can flush its
prefix cache), so the same options send the same prompts to every server. Prompts are
words drawn from a fixed list with a seeded generator; fillers vary in length so that a
burst mixes short and long prefills.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

from .report import CheckOptions

__all__ = ["Request", "Round", "plan"]

DESCRIPTIONS: Final = {
    "batch": "one prompt alone, then inside concurrent bursts of other prompts",
    "repeat": "one request sent again and again, one at a time",
    "prefix": "prompts sharing prefixes, cold (cache flushed) and with the prefix cached",
    "seeded": "sampling at a temperature with a fixed seed, alone and inside bursts",
}

_WORDS: Final = (  # noqa: SIM905 - a word list reads better as prose
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "who will more no if out so said what up its about into than them can only other new "
    "some could time these two may then do first any my now such like our over man me even "
    "most made after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very make world "
    "still own see men work long get here between both life being under never day same "
    "another know while last might us great old year off come since against go came right "
    "used take three river garden number copper lantern violet harbour signal matrix"
).split()


@dataclass(frozen=True)
class Request:
    prompt: str
    max_new_tokens: int
    temperature: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class Watch:
    """An output of a round that is compared: which request it is, and which run."""

    index: int
    group: str
    run: str


@dataclass(frozen=True)
class Round:
    """Requests sent at once (after flushing the prefix cache when ``flush``)."""

    requests: tuple[Request, ...]
    watched: tuple[Watch, ...]
    flush: bool = False


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    rounds: tuple[Round, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def requests(self) -> int:
        return sum(len(r.requests) for r in self.rounds)


def plan(name: str, options: CheckOptions, *, can_flush: bool = True, nonce: str = "") -> Plan:
    """The plan of probe ``name``. ``nonce`` makes the prefix probe's prompts unseen
    when the server cannot flush its cache."""
    builder = {"batch": _batch, "repeat": _repeat, "prefix": _prefix, "seeded": _seeded}[name]
    rounds, notes = builder(options, can_flush, nonce)
    return Plan(name, DESCRIPTIONS[name], tuple(rounds), tuple(notes))


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(_WORDS, k=words))


def _prompt(options: CheckOptions, tag: str) -> str:
    return _text(random.Random(f"{options.seed}:{tag}"), options.prompt_words)


def _fillers(options: CheckOptions, count: int, tag: str) -> list[str]:
    # lengths spread from an eighth to twice the probe prompt's, so prefill batches mix
    rng = random.Random(f"{options.seed}:{tag}:{count}")
    low, high = max(1, options.prompt_words // 8), options.prompt_words * 2
    return [_text(rng, rng.randint(low, high)) for _ in range(count)]


def _burst(probe: Request, fillers: list[Request], group: str, run: str) -> Round:
    """The probe request in the middle of the burst, so others arrive before and after it."""
    at = len(fillers) // 2
    requests = (*fillers[:at], probe, *fillers[at:])
    others = f"{len(fillers)} other{'' if len(fillers) == 1 else 's'}"
    where = f"with {others}, position {at + 1} of {len(requests)}"
    return Round(requests, (Watch(at, group, f"{run}, {where}"),))


def _alone(probe: Request, group: str, run: str) -> Round:
    return Round((probe,), (Watch(0, group, f"{run}, alone"),))


def _batch(options: CheckOptions, can_flush: bool, nonce: str) -> tuple[list[Round], list[str]]:
    probe = Request(_prompt(options, "batch"), options.max_new_tokens)
    rounds = []
    for trial in range(1, options.trials + 1):
        rounds.append(_alone(probe, "batch prompt", f"trial {trial}"))
        for count in options.others:
            fillers = [
                Request(text, options.max_new_tokens)
                for text in _fillers(options, count, f"batch{trial}")
            ]
            rounds.append(_burst(probe, fillers, "batch prompt", f"trial {trial}"))
    return rounds, []


def _repeat(options: CheckOptions, can_flush: bool, nonce: str) -> tuple[list[Round], list[str]]:
    probe = Request(_prompt(options, "repeat"), options.max_new_tokens)
    return [
        Round((probe,), (Watch(0, "repeated prompt", f"request {number}"),))
        for number in range(1, options.repeats + 1)
    ], []


def _prefix(options: CheckOptions, can_flush: bool, nonce: str) -> tuple[list[Round], list[str]]:
    words = _prompt(options, "prefix").split()
    rng = random.Random(f"{options.seed}:prefix-suffixes")
    suffix_words = max(8, options.prompt_words // 4)
    rounds: list[Round] = []
    notes: list[str] = []
    if not can_flush:
        notes.append(
            "the server cannot flush its prefix cache: cold runs use prompts it "
            "has not seen instead (a fresh tag in front)"
        )

    def one(prompt: str, group: str, run: str, *, flush: bool = False) -> Round:
        request = Request(prompt, options.max_new_tokens)
        return Round((request,), (Watch(0, group, run),), flush=flush and can_flush)

    def tagged(text: str, step: int) -> str:
        return text if can_flush else f"[{nonce}-{step}] {text}"

    base = " ".join(words)
    rounds.append(one(tagged(base, 0), "whole prompt", "cold", flush=True))
    rounds.append(one(tagged(base, 0), "whole prompt", "all of it cached"))
    for step, fraction in enumerate(options.prefix_fractions, start=1):
        shared = max(1, round(len(words) * fraction))
        variant = " ".join([*words[:shared], *(rng.choice(_WORDS) for _ in range(suffix_words))])
        group = f"prompt sharing its first {shared} words"
        rounds.append(one(tagged(variant, step), group, "cold", flush=True))
        base_group = "whole prompt" if can_flush else f"whole prompt, tag {step}"
        rounds.append(
            one(tagged(base, step), base_group, f"cold again (before prefix {shared})", flush=True)
        )
        rounds.append(one(tagged(variant, step), group, f"first {shared} words cached"))
    return rounds, notes


def _seeded(options: CheckOptions, can_flush: bool, nonce: str) -> tuple[list[Round], list[str]]:
    probe = Request(
        _prompt(options, "seeded"), options.max_new_tokens, options.temperature, options.seed
    )
    sizes = options.others[::2]
    rounds = []
    for trial in range(1, options.trials + 1):
        rounds.append(_alone(probe, "seeded prompt", f"trial {trial}"))
        for count in sizes:
            fillers = [
                Request(
                    text, options.max_new_tokens, options.temperature, options.seed + number + 1
                )
                for number, text in enumerate(_fillers(options, count, f"seeded{trial}"))
            ]
            rounds.append(_burst(probe, fillers, "seeded prompt", f"trial {trial}"))
    return rounds, []
