"""The LeaderWorkerSet manifest of docs/kubernetes.md, checked against ``detargs launch``.

LeaderWorkerSet cannot run here: the manifest is parsed, its leader and worker commands
are run through detargs' own parser, and the variables LWS sets are fed to the same
placement code ``detargs launch --plan`` uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from detargs.cli import _parser
from detargs.nodes import node_placement
from detargs.plan import make_plan
from detargs.sglang._argv_read import read_values
from detargs.sglang.version import target_version

PAGE = Path(__file__).resolve().parent.parent / "docs" / "kubernetes.md"


def manifest() -> dict[str, Any]:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- run by: tests/test_kubernetes.py -->\n```yaml\n(.*?)^```",
        text,
        re.MULTILINE | re.DOTALL,
    )
    assert match is not None
    data: dict[str, Any] = yaml.safe_load(match.group(1))
    return data


@pytest.mark.parametrize("role", ["leaderTemplate", "workerTemplate"])
def test_each_pod_runs_detargs_launch_with_the_mounted_plan(role: str) -> None:
    data = manifest()
    assert (data["apiVersion"], data["kind"]) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    pod = data["spec"]["leaderWorkerTemplate"][role]["spec"]
    [container] = pod["containers"]
    command = container["command"]
    assert command[0] == "detargs"
    options = _parser().parse_args(command[1:])
    assert (options.command, options.dry_run, options.check_only) == ("launch", False, False)
    assert options.node_rank is options.nnodes is options.dist_init_addr is None  # from LWS
    [mount] = container["volumeMounts"]
    assert Path(options.plan).parent == Path(mount["mountPath"])
    [volume] = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["configMap"]["name"] == "sglang-plan"
    assert "sglang-plan --from-file=plan.json" in PAGE.read_text(encoding="utf-8")
    assert Path(options.plan).name == "plan.json"


def test_the_group_size_is_the_plan_node_count_and_each_pod_gets_its_rank() -> None:
    group = manifest()["spec"]["leaderWorkerTemplate"]
    command = re.search(r"^\$ (detargs plan .*)$", PAGE.read_text(encoding="utf-8"), re.MULTILINE)
    assert command is not None
    words = command.group(1).split()
    nnodes = int(words[words.index("--nnodes") + 1])
    assert group["size"] == nnodes
    gpus = int(
        group["leaderTemplate"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    )
    target = target_version("0.5.23")
    args, _ = read_values(words[words.index("--") + 1 :], target)
    plan = make_plan(args, nnodes=nnodes, device=f"h100x{gpus}", sglang_version=target)
    argvs = []
    for index in range(group["size"]):
        lws = {
            "LWS_WORKER_INDEX": str(index),
            "LWS_GROUP_SIZE": str(group["size"]),
            "LWS_LEADER_ADDRESS": "sglang-0.sglang.default",
        }
        placement = node_placement(lws)
        assert placement is not None
        assert placement.source == "lws"
        argvs.append(plan.launch_for_node(placement).argv)
    assert [argv[-6:] for argv in argvs] == [
        (
            "--nnodes",
            "2",
            "--node-rank",
            str(index),
            "--dist-init-addr",
            "sglang-0.sglang.default:50000",
        )
        for index in range(2)
    ]
    assert {argv[:-6] for argv in argvs} == {plan.argv}
