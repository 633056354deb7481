"""Mistakes a new user makes, and what detargs answers.

Each case is one realistic mistake, run the way a user would meet it (the CLI where it
can show it, the Python API for what needs a fake NVML or an environment). Every answer
must name what is wrong and say what to do, exit 2 or 3 (0 for a warning), and never
be a traceback. Cases whose advice is missing or misleading carry a strict ``xfail`` on
the "what to do" check: fixing the message turns them red until the mark is dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from detargs.cli import main
from detargs.detection import detect
from detargs.errors import DetargsError, DetargsWarning
from detargs.resolution import resolve
from detargs.sglang.args import ServerArgs
from detargs.sglang.argv import from_argv, to_argv
from detargs.testing import FakeNvml

NEW = ["--sglang-version", "0.5.23"]
DET = "--enable-deterministic-inference"
Runner = Callable[[Path, pytest.CaptureFixture[str]], tuple[int, str]]


def cli(*words: str) -> Runner:
    def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        filled = [word.replace("{tmp}", str(tmp_path)) for word in words]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            code = main(filled)
        return code, capsys.readouterr().err

    return run


def api(call: Callable[[Path], Any]) -> Runner:
    def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DetargsWarning)
            try:
                call(tmp_path)
            except DetargsError as error:
                return error.exit_code, f"{type(error).__name__}: {error}"
        raise AssertionError("no error")

    return run


def _json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "device.json"
    path.write_text(text, encoding="utf-8")
    return path


def _broken_model(tmp_path: Path) -> str:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{", encoding="utf-8")
    return str(model)


class Mistake(NamedTuple):
    run: Runner
    code: int
    wrong: Sequence[str]
    """Fragments that name what is wrong."""
    todo: Sequence[str]
    """Fragments that say what to do."""
    unclear: str | None = None
    """Why the advice is missing or misleading (a strict xfail of the advice check)."""


MISTAKES: dict[str, Mistake] = {
    "typo-in-a-flag": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--enable-determinstic-inference"),
        2,
        ["unknown flag --enable-determinstic-inference", "SGLang 0.5.23"],
        ["did you mean --enable-deterministic-inference?"],
    ),
    "abbreviation-that-is-ambiguous": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--en"),
        2,
        ["ambiguous flag --en", "--enable-"],
        ["write it in full"],
    ),
    "backend-that-does-not-run-on-the-gpu": Mistake(
        cli("resolve", "--device", "b200", *NEW, "--", DET, "--attention-backend", "fa3"),
        2,
        ["--attention-backend fa3", "this GPU is sm100", "[rule attention_backend]"],
        ["(requires triton)", "Change or drop the flags above", "--on-conflict override"],
    ),
    "sampling-backend-that-is-not-batch-invariant": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", DET, "--sampling-backend", "flashinfer"),
        2,
        ["--sampling-backend flashinfer", "not"],
        ["(requires pytorch)", "--on-conflict"],
    ),
    "gpu-older-than-ampere": Mistake(
        cli("resolve", "--device", "t4", *NEW, "--", DET),
        3,
        ["Tesla T4 (sm75) is older than sm80"],
        ["--device a100"],
    ),
    "unknown-device-profile": Mistake(
        cli("resolve", "--device", "h10", *NEW, "--", DET),
        3,
        ["unknown device 'h10'"],
        ["did you mean h100", "Known devices:"],
    ),
    "device-count-zero": Mistake(
        cli("resolve", "--device", "h100x0", *NEW, "--", DET),
        3,
        ["'h100x0'", "not 0"],
        ["between 1 and 64"],
    ),
    "device-json-path-that-does-not-exist": Mistake(
        cli("resolve", "--device", "{tmp}/nope.json", *NEW, "--", DET),
        3,
        ["no such file", "nope.json"],
        ["Pass a profile name", "saved with `detargs detect`"],
    ),
    "device-json-that-is-not-a-device": Mistake(
        api(lambda tmp: detect(_json(tmp, '{"gpus": [{"name": 3}]}'))),
        3,
        ["is not a saved DeviceInfo JSON", "gpus.0.index: Field required"],
        ["detargs detect --json"],
    ),
    "no-nvidia-driver": Mistake(
        api(lambda tmp: detect(environ={}, nvml=FakeNvml.from_profile("h100", fail_on_init=12))),
        3,
        ["no NVIDIA driver found", "LIBRARY_NOT_FOUND", "from nvmlInit"],
        ["install the NVIDIA driver", "--device h100"],
    ),
    "cuda-visible-devices-pointing-nowhere": Mistake(
        api(
            lambda tmp: resolve(
                ServerArgs(enable_deterministic_inference=True),
                detect(
                    environ={"CUDA_VISIBLE_DEVICES": "3"},
                    nvml=FakeNvml.from_profile("h100", count=2),
                ),
                "0.5.23",
            )
        ),
        3,
        ["no GPU is visible", "CUDA_VISIBLE_DEVICES='3'", "out of range (2 GPUs: indices 0..1)"],
        ["Make a GPU visible", "--device h100"],
    ),
    "cuda-visible-devices-naming-a-gpu-twice": Mistake(
        api(
            lambda tmp: detect(
                environ={"CUDA_VISIBLE_DEVICES": "0,0"}, nvml=FakeNvml.from_profile("h100", count=2)
            )
        ),
        3,
        ["CUDA_VISIBLE_DEVICES='0,0' names GPU 0", "twice"],
        ["List each GPU once in CUDA_VISIBLE_DEVICES"],
    ),
    "detargs-device-with-a-typo": Mistake(
        api(lambda tmp: detect(environ={"DETARGS_DEVICE": "h200x"})),
        3,
        ["DETARGS_DEVICE='h200x'", "unknown device"],
        ["did you mean h200", "Known devices"],
    ),
    "gpu-index-out-of-range": Mistake(
        cli("resolve", "--device", "h100x2", "--gpu-index", "5", *NEW, "--", DET),
        3,
        ["GPU index 5 is out of range"],
        ["indices 0..1"],
    ),
    "sglang-version-older-than-the-catalogue": Mistake(
        cli("resolve", "--device", "h100", "--sglang-version", "0.4.0", "--", DET),
        2,
        ["SGLang 0.4.0 is older than 0.5.3"],
        ["upgrade SGLang or pass a version from 0.5.3"],
    ),
    "sglang-version-that-is-not-a-version": Mistake(
        cli("resolve", "--device", "h100", "--sglang-version", "latest", "--", DET),
        2,
        ["'latest' is not a version"],
        ["write it like 0.5.10"],
    ),
    "sglang-version-newer-than-the-catalogue": Mistake(
        cli("resolve", "--device", "h100", "--sglang-version", "0.6.0", "--", DET),
        0,
        ["detargs: warning: SGLang 0.6.0 is not in the flag catalogue"],
        ["resolving for 0.5.23"],
    ),
    "flag-removed-in-the-target-version": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--cuda-graph-max-bs", "8"),
        2,
        ["--cuda-graph-max-bs is not a flag of SGLang 0.5.23", "0.5.3–0.5.19"],
        ["use --cuda-graph-max-bs-decode instead"],
    ),
    "flag-removed-without-a-successor": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--enable-piecewise-cuda-graph"),
        2,
        ["--enable-piecewise-cuda-graph is not a flag of SGLang 0.5.23"],
        ["drop it"],
    ),
    "flag-newer-than-the-target-version": Mistake(
        cli(
            "resolve",
            "--device",
            "h100",
            "--sglang-version",
            "0.5.3",
            "--",
            "--cuda-graph-max-bs-decode",
            "8",
        ),
        2,
        ["--cuda-graph-max-bs-decode is not a flag of SGLang 0.5.3"],
        ["target SGLang 0.5.14 or newer"],
    ),
    "value-not-in-choices": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--kv-cache-dtype", "fp16"),
        2,
        ["--kv-cache-dtype 'fp16' is not accepted by SGLang 0.5.23"],
        ["choose one of: auto, fp8_e5m2"],
    ),
    "wrong-type": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--tp-size", "two"),
        2,
        ["--tp-size", "got 'two'"],
        ["needs an int value"],
    ),
    "missing-value": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", DET, "--tp-size"),
        2,
        ["--tp-size needs a value"],
        ["--tp-size=VALUE"],
    ),
    "tp-size-zero": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--tp-size", "0"),
        2,
        ["--tp-size", "(got 0)"],
        ["must be at least 1"],
    ),
    "mem-fraction-above-one": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--mem-fraction-static", "1.5"),
        2,
        ["--mem-fraction-static", "(got 1.5)"],
        ["at most 1"],
    ),
    "value-given-to-a-switch": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "--disable-radix-cache", "false"),
        2,
        ["'false'"],
        ["--disable-radix-cache takes no value"],
    ),
    "model-path-without-its-flag": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", "org/model", DET),
        2,
        ["unexpected argument 'org/model'", "no positional arguments"],
        ["a value must follow its flag"],
    ),
    "sglang-flags-without-the-double-dash": Mistake(
        cli("resolve", "--device", "h100", "--model-path", "m", DET),
        2,
        ["unrecognized arguments: --model-path m"],
        ["after --"],
    ),
    "detargs-option-after-the-double-dash": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", DET, "--on-conflict", "override"),
        2,
        ["--on-conflict is a detargs option, not an SGLang flag"],
        ["before --"],
    ),
    "on-conflict-not-a-choice": Mistake(
        cli("resolve", "--device", "h100", "--on-conflict", "force", "--", DET),
        2,
        ["invalid choice: 'force'"],
        ["choose from 'error', 'override'"],
    ),
    "launcher-with-an-unclosed-quote": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--launcher", "python 'my launcher.py", "--", DET),
        2,
        ['--launcher "python \'my launcher.py"', "No closing quotation"],
        ["quote"],
    ),
    "speculative-algorithm-that-cannot-be-deterministic": Mistake(
        cli("resolve", "--device", "h100", *NEW, "--", DET, "--speculative-algorithm", "UNO"),
        2,
        ["--speculative-algorithm UNO", "cannot be deterministic"],
        ["choose another --speculative-algorithm or drop it"],
    ),
    "environment-that-contradicts-a-rule": Mistake(
        api(
            lambda tmp: resolve(
                ServerArgs(enable_deterministic_inference=True, tp_size=2),
                "h100x2",
                "0.5.23",
                environ={"NCCL_ALGO": "Ring"},
            )
        ),
        2,
        ["$NCCL_ALGO Ring (requires allreduce:tree)"],
        ["--on-conflict override"],
    ),
    "argv-as-one-string": Mistake(
        api(lambda tmp: from_argv("--tp-size 2", "0.5.23")),
        2,
        ["argv must be a list of strings, not one string"],
        ["split it first"],
    ),
    "passthrough-dest-with-a-typo": Mistake(
        api(lambda tmp: to_argv(ServerArgs(extra={"log_levle": "debug"}), "0.5.23")),
        2,
        ["extra['log_levle'] is no SGLang flag's dest"],
        ["did you mean log_level?"],
    ),
    "model-config-that-is-not-json": Mistake(
        api(
            lambda tmp: resolve(
                ServerArgs(model_path=_broken_model(tmp), enable_deterministic_inference=True),
                "h100",
                "0.5.23",
            )
        ),
        2,
        ["config.json cannot be read"],
        ["fix the file or pass model_arch (--model-arch)"],
    ),
}


def _params(check_advice: bool) -> list[Any]:
    params = []
    for name, mistake in MISTAKES.items():
        marks = []
        if check_advice and mistake.unclear is not None:
            marks.append(pytest.mark.xfail(reason=f"unclear: {mistake.unclear}", strict=True))
        params.append(pytest.param(mistake, id=name, marks=marks))
    return params


def test_there_are_at_least_fifteen_mistakes() -> None:
    assert len(MISTAKES) >= 15


@pytest.mark.parametrize("mistake", _params(check_advice=False))
def test_the_message_names_what_is_wrong(
    mistake: Mistake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, message = mistake.run(tmp_path, capsys)
    assert code == mistake.code, message
    assert "Traceback" not in message
    for fragment in mistake.wrong:
        assert fragment in message, message
    if mistake.code and message.startswith(("detargs", "usage")):
        assert "error: " in message


@pytest.mark.parametrize("mistake", _params(check_advice=True))
def test_the_message_says_what_to_do(
    mistake: Mistake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, message = mistake.run(tmp_path, capsys)
    for fragment in mistake.todo:
        assert fragment in message, message


def test_a_refusal_does_not_offer_an_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, message = MISTAKES["speculative-algorithm-that-cannot-be-deterministic"].run(
        tmp_path, capsys
    )
    assert "--on-conflict override" not in message
