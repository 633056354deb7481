"""Plans (``detargs.plan``), node placement (``detargs.nodes``) and the GPU fit
(``detargs.sglang.parallel``), without a scheduler: the real SLURM runs are in test_slurm.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detargs import InvalidArgsError, PlanMismatchError, detect, from_argv, make_plan
from detargs.cli import main
from detargs.nodes import NodePlacement, first_host, node_placement, split_address
from detargs.plan import Plan
from detargs.sglang.parallel import fit_problem, gpus_needed

TP16 = ["--model-path", "m", "--enable-deterministic-inference", "--tp-size", "16"]


def tp16_plan(**options: Any) -> Plan:
    return make_plan(
        from_argv(TP16, "0.5.23"), nnodes=2, device="h100x8", sglang_version="0.5.23", **options
    )


# --- hostlists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostlist", "first"),
    [
        pytest.param("node[1-4]", "node1", id="range"),
        pytest.param("gpu-[01-04,07]", "gpu-01", id="zero-padded-range-and-list"),
        pytest.param("gpu-[007-010]", "gpu-007", id="padding-kept"),
        pytest.param("gpu-[7,3]", "gpu-7", id="list-order-kept"),
        pytest.param("a-b-c[09-11],z", "a-b-c09", id="dashes-in-names"),
        pytest.param("rack[1-2]-gpu[3-4]", "rack1-gpu3", id="several-groups-in-one-name"),
        pytest.param("h100-[10-12],b200-[1-2]", "h100-10", id="several-hostlists"),
        pytest.param("single-host", "single-host", id="plain-host"),
        pytest.param("10.0.0.1", "10.0.0.1", id="address"),
    ],
)
def test_first_host_of_a_hostlist(hostlist: str, first: str) -> None:
    assert first_host(hostlist) == first


@pytest.mark.parametrize(
    "hostlist",
    [
        pytest.param("gpu-[3-1]", id="descending"),
        pytest.param("gpu-[1-2", id="unbalanced"),
        pytest.param("", id="empty"),
    ],
)
def test_a_bad_hostlist_names_the_variable(hostlist: str) -> None:
    with pytest.raises(InvalidArgsError, match="SLURM_JOB_NODELIST") as caught:
        first_host(hostlist)
    assert caught.value.flag == "SLURM_JOB_NODELIST"


# --- placement ------------------------------------------------------------------------------

SLURM = {
    "SLURM_NODEID": "2",
    "SLURM_NNODES": "4",
    "SLURM_JOB_NODELIST": "gpu-[01-04]",
    "SLURMD_NODENAME": "gpu-03",
}
LWS = {"LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2", "LWS_LEADER_ADDRESS": "sglang-0.sglang"}


@pytest.mark.parametrize(
    ("environ", "explicit", "expected"),
    [
        pytest.param(SLURM, {}, NodePlacement(2, 4, "gpu-01", None, "slurm", "gpu-03"), id="slurm"),
        pytest.param(
            {
                **SLURM,
                "SLURM_STEP_NODELIST": "gpu-[02-03]",
                "SLURM_NNODES": "2",
                "SLURM_NODEID": "1",
            },
            {},
            NodePlacement(1, 2, "gpu-02", None, "slurm", "gpu-03"),
            id="slurm-step-inside-a-larger-job",
        ),
        pytest.param(LWS, {}, NodePlacement(1, 2, "sglang-0.sglang", None, "lws"), id="lws"),
        pytest.param(
            {},
            {"node_rank": 1, "nnodes": 2, "dist_init_addr": "10.0.0.1:6000"},
            NodePlacement(1, 2, "10.0.0.1", 6000, "explicit"),
            id="explicit",
        ),
        pytest.param(
            SLURM,
            {"dist_init_addr": "head"},
            NodePlacement(2, 4, "head", None, "explicit", "gpu-03"),
            id="explicit-leader-over-slurm",
        ),
        pytest.param(
            LWS,
            {"node_rank": 0},
            NodePlacement(0, 2, "sglang-0.sglang", None, "explicit"),
            id="explicit-rank-over-lws",
        ),
        pytest.param(
            {**SLURM, **LWS},
            {},
            NodePlacement(2, 4, "gpu-01", None, "slurm", "gpu-03"),
            id="slurm-before-lws",
        ),
        pytest.param({}, {}, None, id="nothing"),
    ],
)
def test_node_placement(
    environ: dict[str, str], explicit: dict[str, Any], expected: NodePlacement | None
) -> None:
    assert node_placement(environ, **explicit) == expected


@pytest.mark.parametrize(
    ("environ", "explicit", "flag"),
    [
        pytest.param({**SLURM, "SLURM_NODEID": "x"}, {}, "SLURM_NODEID", id="not-a-number"),
        pytest.param(
            {**SLURM, "SLURM_NTASKS": "8"}, {}, "SLURM_NTASKS", id="several-tasks-per-node"
        ),
        pytest.param({"LWS_WORKER_INDEX": "0"}, {}, "LWS_GROUP_SIZE", id="lws-half-set"),
        pytest.param({}, {"node_rank": 1}, "--nnodes", id="rank-without-count"),
        pytest.param({}, {"node_rank": -1, "nnodes": 2}, "--node-rank", id="negative-rank"),
        pytest.param(
            {},
            {"node_rank": 0, "nnodes": 2, "dist_init_addr": "h:99999"},
            "--dist-init-addr",
            id="bad-port",
        ),
    ],
)
def test_bad_placement_names_the_variable(
    environ: dict[str, str], explicit: dict[str, Any], flag: str
) -> None:
    with pytest.raises(InvalidArgsError) as caught:
        node_placement(environ, **explicit)
    assert caught.value.flag == flag
    assert flag in str(caught.value)


def test_placement_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SLURM.items():
        monkeypatch.setenv(name, value)
    assert node_placement({}) is None


@given(st.from_regex(r"\A[a-z][a-z0-9.-]{0,20}\Z"), st.integers(1, 65535))
def test_split_address_round_trips(host: str, port: int) -> None:
    assert split_address(f"{host}:{port}") == (host, port)


# --- GPU fit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "extra", "needed"),
    [
        pytest.param({"tp_size": 8}, {}, 8, id="tp"),
        pytest.param({"tp_size": 8}, {"pp_size": 2}, 16, id="tp-pp"),
        pytest.param({"tp_size": 4}, {"pipeline_parallel_size": 2}, 8, id="pp-before-0.5.14"),
        pytest.param({"tp_size": 4, "dp_size": 2}, {}, 8, id="dp-replicas"),
        pytest.param(
            {"tp_size": 8, "dp_size": 8},
            {"enable_dp_attention": True},
            8,
            id="dp-attention-inside-tp",
        ),
        pytest.param({"tp_size": 8}, {"attn_dp_size": 4}, 8, id="attn-dp-adds-none"),
    ],
)
def test_gpus_needed(values: dict[str, int], extra: dict[str, Any], needed: int) -> None:
    assert gpus_needed(values, extra) == needed


def test_ranks_must_split_evenly_over_nodes() -> None:
    problem = fit_problem({"tp_size": 8}, {}, gpus_per_node=8, nnodes=3, device="h100x8")
    assert problem is not None
    assert "cannot split evenly over 3 nodes" in problem


@pytest.mark.parametrize(
    ("argv", "device", "message"),
    [
        pytest.param(
            ["--tp-size", "2"],
            "h100",
            "--tp-size 2 needs 2 GPUs, but h100 has 1 GPU",
            id="tp-on-one-gpu",
        ),
        pytest.param(
            ["--tp-size", "8", "--pp-size", "2"],
            "h100x8",
            "--tp-size 8 x --pp-size 2 needs 16 GPUs, but h100x8 has 8 GPUs",
            id="tp-times-pp",
        ),
        pytest.param(
            ["--tp-size", "4", "--dp-size", "4"],
            "b200x8",
            "--tp-size 4 x --dp-size 4 needs 16 GPUs",
            id="dp-replicas",
        ),
    ],
)
def test_resolve_refuses_what_does_not_fit(argv: list[str], device: str, message: str) -> None:
    from detargs import resolve

    args = from_argv(["--enable-deterministic-inference", *argv], "0.5.23")
    with pytest.raises(InvalidArgsError, match=message.replace("+", r"\+")) as caught:
        resolve(args, device=device, sglang_version="0.5.23")
    assert caught.value.flag == "--tp-size"


def test_resolve_counts_the_nodes_in_the_arguments() -> None:
    from detargs import resolve

    args = from_argv(
        ["--enable-deterministic-inference", "--tp-size", "16", "--nnodes", "2"], "0.5.23"
    )
    assert "--nnodes" in resolve(args, device="h100x8", sglang_version="0.5.23").argv


# --- plans ----------------------------------------------------------------------------------


def test_every_node_gets_the_same_argv_and_env_but_its_rank() -> None:
    plan = tp16_plan()
    launches = [plan.launch_for_node(NodePlacement(rank, 2, "gpu-01")) for rank in range(2)]
    assert [launch.argv[:-6] for launch in launches] == [plan.argv, plan.argv]
    assert [launch.argv[-6:] for launch in launches] == [
        ("--nnodes", "2", "--node-rank", str(rank), "--dist-init-addr", "gpu-01:50000")
        for rank in range(2)
    ]
    assert launches[0].env == launches[1].env == plan.env
    assert plan.env["NCCL_ALGO"] == "allreduce:tree"
    assert "--tp-size" in plan.argv
    assert "--nnodes" not in plan.argv


def test_plan_spells_the_per_node_flags_of_its_release() -> None:
    plan = make_plan(from_argv(TP16, "0.5.3"), nnodes=2, device="h100x8", sglang_version="0.5.3")
    assert dict(plan.per_node_flags) == {
        "nnodes": "--nnodes",
        "node_rank": "--node-rank",
        "dist_init_addr": "--dist-init-addr",
    }
    assert plan.sglang_version == "0.5.3"


def test_an_ipv6_leader_is_bracketed_and_an_explicit_port_wins() -> None:
    plan = tp16_plan(dist_port=6000)
    assert plan.node_argv(NodePlacement(0, 2, "fd00::1"))[-1] == "[fd00::1]:6000"
    assert plan.node_argv(NodePlacement(0, 2, "h", 7000))[-1] == "h:7000"


def test_a_multi_node_plan_needs_the_leader() -> None:
    with pytest.raises(InvalidArgsError, match="leader's address is not known"):
        tp16_plan().node_argv(NodePlacement(0, 2, None))


@pytest.mark.parametrize(
    ("argv", "options", "flag", "message"),
    [
        pytest.param(
            ["--tp-size", "32"],
            {},
            "--tp-size",
            "--tp-size 32 needs 32 GPUs, but 2 nodes of h100x8 have 16 GPUs",
            id="tp-does-not-fit",
        ),
        pytest.param(
            ["--tp-size", "16", "--node-rank", "1"],
            {},
            "--node-rank",
            "--node-rank differ per node",
            id="per-node-flag-in-the-args",
        ),
        pytest.param(["--tp-size", "16"], {"nnodes": 0}, "--nnodes", "at least 1", id="no-nodes"),
        pytest.param(
            ["--tp-size", "16"], {"dist_port": 0}, "--dist-port", "port from 1", id="bad-port"
        ),
    ],
)
def test_make_plan_refuses(
    argv: list[str], options: dict[str, Any], flag: str, message: str
) -> None:
    args = from_argv(["--enable-deterministic-inference", *argv], "0.5.23")
    with pytest.raises(InvalidArgsError, match=message.replace("+", r"\+")) as caught:
        make_plan(args, **{"nnodes": 2, "device": "h100x8", "sglang_version": "0.5.23", **options})
    assert caught.value.flag == flag


def _report(path: Path, device: str) -> str:
    path.write_text(detect(device).to_json(), encoding="utf-8")
    return str(path)


def test_node_reports_that_agree_make_the_plan(tmp_path: Path) -> None:
    reports = [_report(tmp_path / f"n{number}.json", "h100x8") for number in range(2)]
    plan = make_plan(
        from_argv(TP16, "0.5.23"), nnodes=2, node_reports=reports, sglang_version="0.5.23"
    )
    assert plan == tp16_plan()
    assert plan.fingerprint == tp16_plan().fingerprint


def test_node_reports_that_disagree_are_named(tmp_path: Path) -> None:
    reports = [_report(tmp_path / "a.json", "h100x8"), _report(tmp_path / "b.json", "b200x8")]
    with pytest.raises(InvalidArgsError) as caught:
        make_plan(
            from_argv(TP16, "0.5.23"), nnodes=2, node_reports=reports, sglang_version="0.5.23"
        )
    assert caught.value.flag == "--node-report"
    assert f"{reports[1]} (8 x NVIDIA B200 (10.0))" in str(caught.value)


def test_fewer_reports_than_nodes_is_a_warning(tmp_path: Path) -> None:
    plan = make_plan(
        from_argv(TP16, "0.5.23"),
        nnodes=2,
        node_reports=[_report(tmp_path / "a.json", "h100x8")],
        sglang_version="0.5.23",
    )
    assert "1 node reports for 2 nodes" in plan.warnings[-1]


def test_plan_json_round_trips_and_its_writing_is_atomic(tmp_path: Path) -> None:
    plan = tp16_plan()
    target = tmp_path / "plan.json"
    plan.write(target)
    assert Plan.read(target) == plan
    assert [path.name for path in tmp_path.iterdir()] == ["plan.json"]
    with pytest.raises(InvalidArgsError, match="cannot write"):
        plan.write(tmp_path / "missing" / "plan.json")
    assert [path.name for path in tmp_path.iterdir()] == ["plan.json"]


def _edited(change: dict[str, Any]) -> str:
    data = {**tp16_plan().to_dict(), **change}
    return json.dumps({key: value for key, value in data.items() if value is not None})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{", "not JSON", id="not-json"),
        pytest.param("[]", "not a JSON object", id="not-an-object"),
        pytest.param(_edited({"detargs_plan": 2}), "detargs_plan is 2", id="other-format"),
        pytest.param(_edited({"extra": 1}), "unknown keys extra", id="unknown-key"),
        pytest.param(_edited({"env": None}), "missing keys env", id="missing-key"),
        pytest.param(_edited({"nnodes": "2"}), "nnodes must be a int", id="wrong-type"),
        pytest.param(
            _edited({"argv": ["--tp-size", "8"]}), "changed after detargs plan", id="edited-by-hand"
        ),
        pytest.param(_edited({"gpus": [{"name": "x"}]}), "gpus[0]", id="bad-gpu"),
    ],
)
def test_a_bad_plan_file_is_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(InvalidArgsError, match=message.replace("[", r"\[")) as caught:
        Plan.from_json(text, source="p.json")
    assert caught.value.flag == "--plan"
    assert "'p.json'" in str(caught.value)


# --- the node check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placement", "device", "installed", "differences"),
    [
        pytest.param(NodePlacement(1, 2, "l"), "h100x8", "0.5.23", [], id="matches"),
        pytest.param(
            NodePlacement(1, 2, "l"),
            "h200x8",
            "0.5.23",
            ["GPUs 0-7: plan NVIDIA H100 80GB HBM3 (9.0), this node NVIDIA H200 (9.0)"],
            id="other-gpu-name",
        ),
        pytest.param(
            NodePlacement(1, 2, "l"),
            "h100x4",
            "0.5.23",
            ["GPU count: plan 8, this node 4"],
            id="fewer-gpus",
        ),
        pytest.param(
            NodePlacement(1, 2, "l"),
            "h100x8",
            "0.5.22",
            ["SGLang: plan 0.5.23, this node 0.5.22"],
            id="other-sglang",
        ),
        pytest.param(
            NodePlacement(1, 2, "l"),
            "h100x8",
            None,
            [
                "SGLang: plan 0.5.23, this node has no sglang installed (no sglang "
                "dist-info on sys.path)"
            ],
            id="no-sglang",
        ),
        pytest.param(
            NodePlacement(3, 4, "l", source="slurm"),
            "h100x8",
            "0.5.23",
            [
                "node count: plan 2, this launch 4 (from SLURM_NNODES/SLURM_NODEID)",
                "node rank: 3 is outside 0..1 (from SLURM_NNODES/SLURM_NODEID)",
            ],
            id="count-and-rank",
        ),
    ],
)
def test_differences_list_everything_that_differs(
    placement: NodePlacement, device: str, installed: str | None, differences: list[str]
) -> None:
    assert tp16_plan().differences(placement, detect(device), installed) == differences


def test_check_node_names_the_node_and_exits_4() -> None:
    plan = tp16_plan()
    with pytest.raises(PlanMismatchError) as caught:
        plan.check_node(
            NodePlacement(1, 2, "l", name="node2"),
            device="b200",
            installed=lambda: "0.5.23",
            hostname="vm",
        )
    error = caught.value
    assert (error.exit_code, error.node, error.rank) == (4, "vm (node2)", 1)
    assert str(error).startswith(
        f"node vm (node2), rank 1, does not match the plan "
        f"{plan.fingerprint}: GPU count: plan 8, this node 1; GPU 0:"
    )
    plan.check_node(
        NodePlacement(0, 2, "l"), environ={"DETARGS_DEVICE": "h100x8"}, installed=lambda: "0.5.23"
    )


# --- the CLI ----------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def plan_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [*os.environ]:
        if name.startswith(("SLURM_", "LWS_", "DETARGS_", "NCCL_")):
            monkeypatch.delenv(name)
    site = tmp_path / "site"
    (site / "sglang-0.5.23.dist-info").mkdir(parents=True)
    (site / "sglang-0.5.23.dist-info" / "METADATA").write_text(
        "Version: 0.5.23\n\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))
    target = tmp_path / "plan.json"
    tp16_plan().write(target)
    return target


@pytest.mark.parametrize(
    ("words", "code", "message"),
    [
        pytest.param(
            ("plan", "--device", "h100", "--", "--tp-size", "2"),
            2,
            "the following arguments are required: --nnodes",
            id="plan-without-nnodes",
        ),
        pytest.param(
            ("launch", "--plan", "{plan}", "--", "--tp-size", "2"),
            2,
            "the plan holds the SGLang arguments",
            id="launch-plan-with-args",
        ),
        pytest.param(
            ("launch", "--plan", "{plan}", "--sglang-version", "0.5.22"),
            2,
            "--sglang-version was decided when the plan was written",
            id="launch-plan-with-version",
        ),
        pytest.param(
            ("launch", "--plan", "{plan}", "--device", "h100x8"),
            2,
            "the plan spans 2 nodes, but nothing says which one this is",
            id="launch-plan-without-placement",
        ),
        pytest.param(
            ("launch", "--node-rank", "1", "--", "--tp-size", "2"),
            2,
            "--node-rank goes with --plan FILE",
            id="rank-without-plan",
        ),
        pytest.param(
            ("launch", "--plan", "{plan}.missing"), 2, "cannot read it", id="missing-plan"
        ),
        pytest.param(
            (
                "launch",
                "--plan",
                "{plan}",
                "--device",
                "b200",
                "--node-rank",
                "0",
                "--nnodes",
                "2",
                "--dist-init-addr",
                "l",
            ),
            4,
            "rank 0, does not match the plan",
            id="mismatch-exits-4",
        ),
    ],
)
def test_cli_errors(
    capsys: pytest.CaptureFixture[str],
    plan_file: Path,
    words: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    got, out, err = run(capsys, *(word.replace("{plan}", str(plan_file)) for word in words))
    assert (got, out) == (code, "")
    assert err.startswith("detargs: error: ")
    assert message in err, err


def test_cli_check_only_and_dry_run(
    capsys: pytest.CaptureFixture[str], plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**LWS, "DETARGS_DEVICE": "h100x8"}.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, "launch", "--plan", str(plan_file), "--check-only")
    assert (code, err) == (0, "")
    assert out == f"detargs: rank 1 of 2 matches plan {Plan.read(plan_file).fingerprint}\n"
    code, out, err = run(
        capsys, "launch", "--plan", str(plan_file), "--dry-run", "--launcher", "my-sglang"
    )
    assert (code, err) == (0, "")
    assert out.rstrip().endswith(
        "--tp-size 16 --nnodes 2 --node-rank 1 --dist-init-addr sglang-0.sglang:50000"
    )
    assert " my-sglang --model-path m " in out


def test_cli_dry_run_json_is_this_nodes_launch(
    capsys: pytest.CaptureFixture[str], plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**LWS, "DETARGS_DEVICE": "h100x8"}.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(
        capsys, "launch", "--plan", str(plan_file), "--dry-run", "--format", "json"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    plan = Plan.read(plan_file)
    assert (data["node_rank"], data["nnodes"], data["leader"]) == (1, 2, "sglang-0.sglang")
    assert data["argv"] == [
        *plan.argv,
        "--nnodes",
        "2",
        "--node-rank",
        "1",
        "--dist-init-addr",
        "sglang-0.sglang:50000",
    ]
    assert data["env"] == dict(plan.env)
    code, _, err = run(capsys, "launch", "--plan", str(plan_file), "--format", "json")
    assert code == 2
    assert "--format json is for --dry-run" in err


def test_a_written_plan_is_readable_by_other_accounts(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        tp16_plan().write(tmp_path / "plan.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "plan.json").stat().st_mode) == 0o644


def test_cli_plan_to_stdout_is_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "plan",
        "--device",
        "h100x8",
        "--sglang-version",
        "0.5.23",
        "--nnodes",
        "2",
        "--",
        *TP16,
    )
    assert (code, err) == (0, "")
    assert Plan.from_json(out) == tp16_plan()


def test_cli_plan_refused_leaves_no_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "plan.json"
    code, _, err = run(
        capsys,
        "plan",
        "--device",
        "h100x8",
        "--sglang-version",
        "0.5.23",
        "--nnodes",
        "2",
        "-o",
        str(target),
        "--",
        *TP16[:-1],
        "64",
    )
    assert code == 2
    assert "needs 64 GPUs" in err
    assert list(tmp_path.iterdir()) == []
