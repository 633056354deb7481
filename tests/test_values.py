"""``LaunchValues`` (the plain record the CLI runs on) and ``ServerArgs`` stay one model.

The property tests that both paths read, check and resolve an argv alike are in
``test_properties.py`` (section f).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detargs.errors import InvalidArgsError
from detargs.resolution import _resolve_record
from detargs.sglang import _record_fields, _values
from detargs.sglang._argv_read import read_values
from detargs.sglang._values import DEFAULTS, FIELDS, RANGED, LaunchValues, out_of_range
from detargs.sglang.args import ServerArgs
from detargs.sglang.catalogue import catalogue_for, releases
from detargs.sglang.version import target_version


def test_the_records_fields_are_generated_from_the_model() -> None:
    assert _record_fields.main(["--check"]) == 0, (
        "LaunchValues' fields differ from ServerArgs': "
        "run python -m detargs.sglang._record_fields --write"
    )


@pytest.mark.parametrize(
    ("line", "edited"),
    [
        pytest.param("    tp_size: int = 1\n", "    tp_size: float = 1\n", id="type"),
        pytest.param("    port: int = 30000\n", "    port: int = 8000\n", id="default"),
        pytest.param('    host: str = "127.0.0.1"\n', "", id="missing-field"),
    ],
)
def test_the_field_check_finds_a_record_edited_by_hand(
    tmp_path: Path, line: str, edited: str
) -> None:
    text = Path(_values.__file__).read_text(encoding="utf-8")
    assert line in text
    stale = tmp_path / "_values.py"
    stale.write_text(text.replace(line, edited), encoding="utf-8")
    assert _record_fields.main(["--check", str(stale)]) == 1
    assert _record_fields.main(["--write", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == text


def test_the_record_has_the_models_fields_in_order_with_its_defaults() -> None:
    assert tuple(ServerArgs.model_fields) == FIELDS
    model_defaults = {
        name: (info.default_factory() if info.default_factory else info.default)  # type: ignore[call-arg]
        for name, info in ServerArgs.model_fields.items()
    }
    assert model_defaults == DEFAULTS


def test_the_record_and_the_model_read_the_same_values() -> None:
    args = ServerArgs(tp_size=2, extra={"log_level": "debug"}, piecewise_cuda_graph=False)
    values = args.values()
    assert values.fields_set == args.model_fields_set
    assert values.tp_size == 2
    assert values.kv_cache_dtype == "auto"
    assert ServerArgs.from_values(values) == args


def _literal_choices(name: str) -> set[str]:
    hint = typing.get_type_hints(LaunchValues)[name]
    members = typing.get_args(hint) if typing.get_origin(hint) is not typing.Literal else (hint,)
    return {
        choice
        for member in members
        for choice in typing.get_args(member)
        if isinstance(choice, str)
    }


@pytest.mark.parametrize(
    "name",
    [
        "attention_backend",
        "prefill_attention_backend",
        "decode_attention_backend",
        "sampling_backend",
        "kv_cache_dtype",
        "rl_on_policy_target",
    ],
)
def test_every_choice_a_release_accepts_is_a_value_of_the_field(name: str) -> None:
    # read_values trusts the catalogue's choices; ServerArgs checks its Literal: they must agree
    allowed = _literal_choices(name)
    assert allowed
    for release in releases():
        flag = catalogue_for(release).primary(name)
        if flag is not None and flag.choices is not None:
            assert set(flag.choices) <= allowed, (release, set(flag.choices) - allowed)


@pytest.mark.parametrize("name", RANGED)
@given(value=st.one_of(st.integers(-5, 70000), st.floats(-2, 2, allow_nan=False)))
def test_the_range_check_is_the_models(name: str, value: float) -> None:
    if name != "mem_fraction_static":
        value = int(value)
    problem = out_of_range(name, value)
    if problem is None:
        assert getattr(ServerArgs(**{name: value}), name) == value
        return
    with pytest.raises(InvalidArgsError, match=re.escape(problem)):
        ServerArgs(**{name: value})


def test_the_record_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        LaunchValues().tp_size = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("argv", "release", "fields"),
    [
        pytest.param(
            ["--tp", "0", "--port", "70000"],
            "0.5.10",
            {"tp_size": 0, "port": 70000},
            id="long-alias-release",
        ),
        pytest.param(
            ["--tp-size", "0", "--mem-fraction-static", "1.5"],
            "0.5.23",
            {"tp_size": 0, "mem_fraction_static": 1.5},
            id="newest",
        ),
        pytest.param(
            ["--cuda-graph-max-bs-decode", "0"],
            "0.5.23",
            {"cuda_graph_max_bs": 0},
            id="renamed-field",
        ),
    ],
)
def test_the_argv_reader_refuses_out_of_range_values_as_server_args_does(
    argv: list[str], release: str, fields: dict[str, float]
) -> None:
    # every problem is listed, each under the flag name ServerArgs gives its field
    with pytest.raises(InvalidArgsError) as from_argv_error:
        read_values(argv, target_version(release))
    with pytest.raises(InvalidArgsError) as model_error:
        ServerArgs(**fields)
    assert str(from_argv_error.value) == str(model_error.value)
    assert str(model_error.value).count("(got") == len(fields)


def test_resolve_checks_a_plain_record_it_is_given() -> None:
    with pytest.raises(InvalidArgsError, match="--tp-size: must be at least 1"):
        _resolve_record(
            LaunchValues.of({"tp_size": 0, "enable_deterministic_inference": True}),
            target_version("0.5.23"),
            device="h100",
        )
