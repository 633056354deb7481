"""``detargs launch --plan`` on a real SLURM cluster of several nodes on this machine.

The cluster is ``shared/slurm-local/start.sh`` (munged, slurmctld and four slurmd, the
nodes ``node1``..``node4``), started once for the session by the ``slurm`` fixture and
stopped after it, unless start.sh found it already running (another session's). The
nodes' launcher is ``tests/standin_launcher.py``, which records its argv and env in one
file per node. SGLang 0.5.23 is "installed" on every node as a dist-info directory on
``PYTHONPATH``, which is what detargs reads. Tests skip, saying why, where ``srun`` or the
SLURM daemons are missing; CI installs them and sets ``DETARGS_REQUIRE_SLURM=1``, which
turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import detargs

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(detargs.__file__).resolve().parent.parent
STANDIN = Path(__file__).with_name("standin_launcher.py")
PAGE = ROOT / "docs" / "slurm.md"
_SHARED = [ROOT.parent / "shared" / "slurm-local", Path("/work/shared/slurm-local")]
_DAEMONS = ("/usr/sbin/slurmctld-wlm", "/usr/sbin/slurmd-wlm", "/usr/sbin/slurmstepd-wlm")
_CLUSTER = {
    "SLURM_LOCAL_DIR": "/tmp/detargs-slurm/cluster",
    "SLURM_LOCAL_PORT": os.environ.get("DETARGS_SLURM_PORT", "17400"),
}
PLAN_ARGV = [
    "--model-path",
    "/models/llama-70b",
    "--enable-deterministic-inference",
    "--tp-size",
    "16",
]


@dataclass(frozen=True)
class Cluster:
    env: dict[str, str]
    """The environment for srun/sbatch: SLURM_CONF, this venv on PATH, sglang 'installed'."""

    def run(self, *command: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("DETARGS_REQUIRE_SLURM") == "1":
        pytest.fail(f"DETARGS_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("srun") is None or shutil.which("sbatch") is None:
        _skip_or_fail(
            "srun/sbatch not found: apt-get install slurmctld slurmd slurm-client "
            "munge (CI's .ci/run does)"
        )
    scripts = next((path for path in _SHARED if (path / "start.sh").is_file()), None)
    if scripts is None:
        _skip_or_fail(f"no slurm-local/start.sh in {', '.join(map(str, _SHARED))}")
    assert scripts is not None
    missing = [daemon for daemon in _DAEMONS if not os.access(daemon, os.X_OK)]
    if missing:
        _skip_or_fail(f"{', '.join(missing)} missing: apt-get install slurmctld slurmd")
    env = {**os.environ, **_CLUSTER}
    started = subprocess.run(
        ["bash", str(scripts / "start.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # a cluster another session started stays up for it
    ours = "already running" not in started.stderr
    if started.returncode != 0:
        pytest.fail(f"start.sh failed:\n{started.stderr}")
    conf = re.search(r"export SLURM_CONF=(\S+)", started.stdout)
    assert conf is not None, started.stdout
    site = tmp_path_factory.mktemp("site-packages")
    (site / "sglang-0.5.23.dist-info").mkdir()
    (site / "sglang-0.5.23.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sglang\nVersion: 0.5.23\n\n", encoding="utf-8"
    )
    bin_dir = str(Path(sys.executable).parent)
    cluster_env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLURM_", "NCCL_", "SGLANG_", "DETARGS_", "LWS_"))
    }
    cluster_env.update(
        SLURM_CONF=conf.group(1),
        PATH=os.pathsep.join([bin_dir, "/usr/sbin", cluster_env.get("PATH", "/usr/bin:/bin")]),
        PYTHONPATH=os.pathsep.join([str(SRC), str(site)]),
        DETARGS_DEVICE="h100x8",
    )
    if shutil.which("detargs", path=cluster_env["PATH"]) is None:
        pytest.fail(f"no detargs script in {bin_dir}: pip install -e . first")
    try:
        yield Cluster(cluster_env)
    finally:
        if ours:
            subprocess.run(
                ["bash", str(scripts / "stop.sh")],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )


def write_plan(directory: Path, nnodes: int, records: Path) -> Path:
    """``detargs plan`` for ``nnodes`` H100x8 nodes whose launcher is the stand-in."""
    plan = directory / "plan.json"
    launcher = shlex.join([sys.executable, str(STANDIN), str(records)])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "detargs.cli",
            "plan",
            "--device",
            "h100x8",
            "--sglang-version",
            "0.5.23",
            "--nnodes",
            str(nnodes),
            "--launcher",
            launcher,
            "-o",
            str(plan),
            "--",
            *PLAN_ARGV[:-1],
            str(8 * nnodes),
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return plan


def read_records(records: Path) -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(records.glob("*.json"))
    }


def assert_one_launch(records: dict[str, dict[str, Any]], nnodes: int, plan: Path) -> None:
    """Every node got the plan's argv and env, differing only in --node-rank 0..N-1."""
    data = json.loads(plan.read_text(encoding="utf-8"))
    # SLURM picks which of node1..node4 run the job; the leader is the first of them
    assert len(records) == nnodes
    assert all(re.fullmatch(r"node[1-4]", name) for name in records), sorted(records)
    leader = sorted(records)[0]
    ranks = []
    for record in records.values():
        argv = record["argv"]
        assert argv[: len(data["argv"])] == data["argv"]
        tail = argv[len(data["argv"]) :]
        assert tail[:2] == ["--nnodes", str(nnodes)]
        assert tail[2] == "--node-rank"
        assert tail[4:] == ["--dist-init-addr", f"{leader}:50000"]
        ranks.append(int(tail[3]))
        assert {name: record["env"][name] for name in data["env"]} == data["env"]
    assert sorted(ranks) == list(range(nnodes))
    without_rank = {
        json.dumps(
            {
                **record,
                "argv": [
                    word if number != len(data["argv"]) + 3 else "R"
                    for number, word in enumerate(record["argv"])
                ],
            }
        )
        for record in records.values()
    }
    assert len(without_rank) == 1, "argv or env differ beyond --node-rank"


@pytest.mark.parametrize("nnodes", [pytest.param(2, id="srun-N2"), pytest.param(4, id="srun-N4")])
def test_srun_gives_every_node_one_launch(slurm: Cluster, tmp_path: Path, nnodes: int) -> None:
    records = tmp_path / "records"
    records.mkdir()
    plan = write_plan(tmp_path, nnodes, records)
    done = slurm.run("srun", f"-N{nnodes}", "detargs", "launch", "--plan", str(plan), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_one_launch(read_records(records), nnodes, plan)


def test_a_node_with_other_gpus_refuses_and_the_step_fails(slurm: Cluster, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    plan = write_plan(tmp_path, 2, records)
    node_two_is_a_b200 = (
        'if [ "$SLURM_NODEID" = 1 ]; then export DETARGS_DEVICE=b200; fi; '
        f"exec detargs launch --plan {shlex.quote(str(plan))}"
    )
    done = slurm.run(
        "srun", "-N2", "--kill-on-bad-exit=1", "bash", "-c", node_two_is_a_b200, cwd=tmp_path
    )
    assert done.returncode != 0
    refused = re.search(
        r"node \S+ \((node\d)\), rank 1, does not match the plan \w+: GPU "
        r"count: plan 8, this node 1; GPU 0: plan NVIDIA H100 80GB HBM3 "
        r"\(9\.0\), this node NVIDIA B200 \(10\.0\)",
        done.stderr,
    )
    assert refused is not None, done.stderr
    # each node checks itself before it execs: the node that differs never launched (SLURM
    # allocates whichever nodes are free, so the refusal names it)
    assert refused.group(1) not in read_records(records)


def test_a_plan_for_another_node_count_refuses(slurm: Cluster, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    plan = write_plan(tmp_path, 4, records)
    done = slurm.run("srun", "-N2", "detargs", "launch", "--plan", str(plan), cwd=tmp_path)
    assert done.returncode != 0
    assert "node count: plan 4, this launch 2 (from SLURM_NNODES/SLURM_NODEID)" in done.stderr
    assert read_records(records) == {}


# --- the sbatch script of docs/slurm.md -------------------------------------------------------


def doc_script() -> str:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- run by: tests/test_slurm.py -->\n```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL
    )
    assert match is not None, "docs/slurm.md has no sbatch script marked run by this file"
    return match.group(1)


def doc_plan_command() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(r"^\$ (detargs plan .*?)\n(?!    )", text.replace("\\\n", ""), re.MULTILINE)
    assert match is not None
    return shlex.split(match.group(1))


def sbatch_doc_script(
    slurm: Cluster, directory: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = directory / "serve.sbatch"
    script.write_text(doc_script(), encoding="utf-8")
    records = directory / "records"
    records.mkdir()
    words = doc_plan_command()
    assert words[:2] == ["detargs", "plan"]
    assert "-o" in words
    launcher = shlex.join([sys.executable, str(STANDIN), str(records)])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "detargs.cli",
            *words[1 : words.index("--")],
            "--launcher",
            launcher,
            *words[words.index("--") :],
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return subprocess.run(
        ["sbatch", "--wait", f"--output={directory / 'job.out'}", str(script)],
        env=env or slurm.env,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_docs_sbatch_job_launches_every_node(slurm: Cluster, tmp_path: Path) -> None:
    done = sbatch_doc_script(slurm, tmp_path)
    output = (tmp_path / "job.out").read_text(encoding="utf-8")
    assert done.returncode == 0, done.stderr + output
    assert output.count("matches plan") == 2, output
    assert_one_launch(read_records(tmp_path / "records"), 2, tmp_path / "plan.json")


def test_the_docs_sbatch_job_starts_no_node_when_one_differs(
    slurm: Cluster, tmp_path: Path
) -> None:
    # a `detargs` first on PATH that makes the second node a B200, as other GPUs would
    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("detargs", path=slurm.env["PATH"])
    assert real is not None
    (shim / "detargs").write_text(
        '#!/bin/sh\nif [ "$SLURM_NODEID" = 1 ]; then export DETARGS_DEVICE=b200; fi\n'
        f'exec {shlex.quote(real)} "$@"\n',
        encoding="utf-8",
    )
    (shim / "detargs").chmod(0o755)
    env = {**slurm.env, "PATH": f"{shim}{os.pathsep}{slurm.env['PATH']}"}
    done = sbatch_doc_script(slurm, tmp_path, env)
    output = (tmp_path / "job.out").read_text(encoding="utf-8")
    assert done.returncode != 0, output
    assert re.search(r"\(node\d\), rank 1, does not match the plan \w+: GPU count", output), output
    assert read_records(tmp_path / "records") == {}, "a node launched although one differed"
