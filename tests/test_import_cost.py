"""What importing and first using detargs loads: never pynvml nor torch until NVML is needed.

Each check runs in a fresh interpreter (``sys.modules`` of this test process is shared
with every other test). No timing is asserted here; timings are in ``benchmarks/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import detargs

_SRC = str(Path(detargs.__file__).resolve().parent.parent)
_HEAVY = ("pynvml", "torch", "detargs.nvml")
# what only `detargs check` may load: its HTTP client, the client's own stack, the progress bar
_CHECK_ONLY = ("httpx", "httpcore", "anyio", "h11", "tqdm", "rich", "detargs.check.runner")
_WATCHED = ("pynvml", "torch", "detargs.nvml", "pydantic", *_CHECK_ONLY)


def _loaded_after(code: str, *, env: dict[str, str] | None = None) -> list[str]:
    """Which of ``_WATCHED`` are in ``sys.modules`` after ``code`` runs."""
    report = (
        "\nimport json as _json, sys as _sys\n"
        f"print(_json.dumps([m for m in {_WATCHED!r} if m in _sys.modules]))\n"
    )
    environ = dict(os.environ if env is None else env)
    environ.pop("DETARGS_DEVICE", None)
    environ["PYTHONPATH"] = os.pathsep.join(
        [_SRC, *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    )
    done = subprocess.run(
        [sys.executable, "-c", code + report],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_import_detargs_loads_nothing_heavy() -> None:
    assert _loaded_after("import detargs") == []


def test_the_engine_interface_loads_nothing_heavy() -> None:
    # the generic layers import detargs.engines (and so detargs.sglang) at module level:
    # the interface itself must stay as light as ``import detargs``
    code = "import detargs.engines\nassert detargs.engines.ENGINE.name"
    assert _loaded_after(code) == []


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            "import detargs\nfor name in detargs.__all__: getattr(detargs, name)",
            id="every-public-name",
        ),
        pytest.param(
            "import detargs.fixtures, detargs.pytest_plugin, detargs.testing",
            id="fixtures-plugin-testing",
        ),
        pytest.param("import detargs.check, detargs.check.standin", id="check-package"),
    ],
)
def test_no_http_client_outside_the_check_run(code: str) -> None:
    assert set(_loaded_after(code)).isdisjoint(_CHECK_ONLY)


def test_lazy_names_resolve_without_nvml() -> None:
    loaded = _loaded_after("import detargs\nfor name in detargs.__all__: getattr(detargs, name)")
    assert "pynvml" not in loaded
    assert "torch" not in loaded


def test_first_resolution_for_a_profile_imports_no_pynvml_nor_torch() -> None:
    code = (
        "from detargs import from_argv, resolve\n"
        "args = from_argv(['--model-path', 'm', '--enable-deterministic-inference'], '0.5.23')\n"
        "launch = resolve(args, device='h100', sglang_version='0.5.23')\n"
        "assert launch.argv, launch\n"
    )
    loaded = _loaded_after(code)
    assert "pynvml" not in loaded
    assert "torch" not in loaded


def test_resolution_without_deterministic_inference_detects_nothing() -> None:
    code = (
        "from detargs import ServerArgs, resolve\n"
        "resolve(ServerArgs(model_path='m'), sglang_version='0.5.23')\n"
    )
    loaded = _loaded_after(code)
    assert "pynvml" not in loaded
    assert "torch" not in loaded


def test_the_profile_named_in_the_environment_imports_no_pynvml() -> None:
    code = (
        "import os\n"
        "os.environ['DETARGS_DEVICE'] = 'h200'\n"
        "from detargs import ServerArgs, resolve\n"
        "resolve(ServerArgs(enable_deterministic_inference=True), sglang_version='0.5.23')\n"
    )
    assert "pynvml" not in _loaded_after(code)


def _cli(argv: list[str]) -> str:
    """Code that runs ``detargs <argv>`` in the child and checks it exits 0."""
    return (
        "import contextlib, io\n"
        "from detargs.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({argv!r})\n"
        "assert code == 0, code\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "--device", "h100"],
        [
            "resolve",
            "--device",
            "h100",
            "--sglang-version",
            "0.5.23",
            "--",
            "--enable-deterministic-inference",
        ],
        ["resolve", "--device", "h100", "--", "--enable-deterministic-inference"],
        [
            "resolve",
            "--device",
            "b200x2",
            "--format",
            "json",
            "--",
            "--tp-size",
            "2",
            "--enable-deterministic-inference",
            "--log-level",
            "debug",
        ],
        [
            "resolve",
            "--device",
            "h100",
            "--on-conflict",
            "override",
            "--format",
            "shell",
            "--",
            "--enable-deterministic-inference",
            "--sampling-backend",
            "flashinfer",
        ],
        [
            "explain",
            "--device",
            "h200",
            "--sglang-version",
            "0.5.10",
            "--",
            "--enable-deterministic-inference",
            "--cuda-graph-max-bs",
            "8",
        ],
        ["launch", "--dry-run", "--device", "h100", "--", "--enable-deterministic-inference"],
        ["detect", "--device", "h100x2", "--json"],
        [
            "plan",
            "--device",
            "h100x8",
            "--sglang-version",
            "0.5.23",
            "--nnodes",
            "2",
            "--",
            "--enable-deterministic-inference",
            "--tp-size",
            "16",
        ],
        ["profiles"],
        ["completion", "bash"],
        ["flags", "--sglang-version", "0.5.23", "tp-size"],
    ],
    ids=[
        "detect",
        "resolve-pinned-version",
        "resolve",
        "resolve-json-tp",
        "resolve-override",
        "explain",
        "launch",
        "detect-json",
        "plan",
        "profiles",
        "completion",
        "flags",
    ],
)
def test_the_cli_with_a_profile_imports_no_pynvml_torch_nor_pydantic(argv: list[str]) -> None:
    # pydantic's import and schema building cost more than the rest of a cold
    # `detargs resolve`; the CLI runs on the plain record (detargs.sglang._values) instead
    loaded = _loaded_after(_cli(argv))
    assert "pynvml" not in loaded
    assert "torch" not in loaded
    assert "pydantic" not in loaded
    assert set(loaded).isdisjoint(_CHECK_ONLY)


def test_detargs_check_is_where_the_http_client_comes_in() -> None:
    code = (
        "import contextlib, io\n"
        "from detargs.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    code = main(['check', 'http://127.0.0.1:9', '--timeout', '1'])\n"
        "assert code == 6, code\n"
    )
    loaded = _loaded_after(code)
    assert {"httpx", "detargs.check.runner"} <= set(loaded)
    assert "pynvml" not in loaded
    assert "pydantic" not in loaded


def test_without_httpx_check_says_what_to_install_and_exits_6() -> None:
    code = (
        "import contextlib, io, sys\n"
        "sys.modules['httpx'] = None  # what an environment without the extra looks like\n"
        "from detargs.cli import main\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        "    code = main(['check', 'http://127.0.0.1:9'])\n"
        "assert code == 6, code\n"
        "assert err.getvalue().startswith('detargs: error: detargs check needs'), err.getvalue()\n"
        "assert \"pip install 'detargs[check]'\" in err.getvalue(), err.getvalue()\n"
        "assert len(err.getvalue().splitlines()) == 1\n"
    )
    _loaded_after(code)


def test_reading_a_saved_device_report_is_where_pydantic_comes_in(tmp_path: Path) -> None:
    saved = tmp_path / "node.json"
    saved.write_text(detargs.detect("h100").to_json(), encoding="utf-8")
    assert "pydantic" in _loaded_after(_cli(["detect", "--device", str(saved)]))


@pytest.mark.parametrize(
    ("scheduler", "hostlist"),
    [
        pytest.param(
            {"LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2", "LWS_LEADER_ADDRESS": "l"},
            False,
            id="lws",
        ),
        pytest.param(
            {"SLURM_NODEID": "1", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "n[1-2]"},
            True,
            id="slurm",
        ),
    ],
)
def test_a_node_launch_from_a_plan_imports_no_pynvml_nor_pydantic(
    tmp_path: Path, scheduler: dict[str, str], hostlist: bool
) -> None:
    from detargs import from_argv, make_plan

    plan = tmp_path / "plan.json"
    make_plan(
        from_argv(["--enable-deterministic-inference", "--tp-size", "16"], "0.5.23"),
        nnodes=2,
        device="h100x8",
        sglang_version="0.5.23",
    ).write(plan)
    site = tmp_path / "site"
    (site / "sglang-0.5.23.dist-info").mkdir(parents=True)
    (site / "sglang-0.5.23.dist-info" / "METADATA").write_text(
        "Version: 0.5.23\n\n", encoding="utf-8"
    )
    code = (
        f"import sys\nsys.path.append({str(site)!r})\nimport os\n"
        "os.environ['DETARGS_DEVICE'] = 'h100x8'\n"
        + _cli(["launch", "--plan", str(plan), "--dry-run"])
    )
    env = {**os.environ, **scheduler}
    report = (
        "\nimport json as _json, sys as _sys\n"
        "print(_json.dumps([m for m in ('pynvml', 'torch', 'pydantic', 'hostlist') "
        "if m in _sys.modules]))\n"
    )
    env["PYTHONPATH"] = os.pathsep.join(
        [_SRC, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    done = subprocess.run(
        [sys.executable, "-c", code + report], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == (["hostlist"] if hostlist else [])
