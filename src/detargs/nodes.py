"""Where this node stands in a multi-node launch: its rank, the node count, the leader.

``node_placement`` reads them from an environment mapping it is given (never from
``os.environ`` itself), first match wins for each value:

1. explicit values (``detargs launch --node-rank/--nnodes/--dist-init-addr``);
2. SLURM, inside ``srun``: ``SLURM_NODEID``, ``SLURM_NNODES``, and the first host of
   ``SLURM_STEP_NODELIST`` (the step's nodes), else of ``SLURM_JOB_NODELIST``;
3. Kubernetes LeaderWorkerSet: ``LWS_WORKER_INDEX``, ``LWS_GROUP_SIZE``,
   ``LWS_LEADER_ADDRESS``.

A SLURM hostlist such as ``gpu-[01-04,07]`` is expanded by python-hostlist (imported
only here, only when a hostlist is read); ``first_host`` is the replaceable default.

>>> node_placement({"LWS_WORKER_INDEX": "1", "LWS_GROUP_SIZE": "2",
...                 "LWS_LEADER_ADDRESS": "sglang-0.sglang"})
NodePlacement(rank=1, nnodes=2, leader='sglang-0.sglang', leader_port=None, source='lws', name=None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .errors import InvalidArgsError

__all__ = ["NodePlacement", "node_placement"]

PlacementSource = Literal["explicit", "slurm", "lws"]
SLURM_VARIABLES: Final = ("SLURM_NODEID", "SLURM_NNODES", "SLURM_JOB_NODELIST")
LWS_VARIABLES: Final = ("LWS_WORKER_INDEX", "LWS_GROUP_SIZE", "LWS_LEADER_ADDRESS")


@dataclass(frozen=True)
class NodePlacement:
    """This node's place in the launch."""

    rank: int
    """``--node-rank``: 0 is the leader."""
    nnodes: int
    """``--nnodes``: how many nodes the launch spans."""
    leader: str | None
    """The leader's host name or address (``None`` for a one-node launch)."""
    leader_port: int | None = None
    """A port given with the leader's address; ``None``: the plan's port."""
    source: PlacementSource = "explicit"
    """Where the values came from (the first one found)."""
    name: str | None = None
    """The scheduler's name for this node (``SLURMD_NODENAME``), for messages."""


def first_host(hostlist: str) -> str:
    """The first host of a SLURM hostlist expression: ``gpu-[01-04,07]`` -> ``gpu-01``.

    >>> first_host("node[1-4]")
    'node1'
    """
    import hostlist as parser  # python-hostlist: only the SLURM path needs it

    try:
        hosts = parser.expand_hostlist(hostlist)
    except parser.BadHostlist as error:
        raise InvalidArgsError(
            f"SLURM_JOB_NODELIST={hostlist!r} is not a hostlist expression ({error}); run "
            "under srun, or pass --dist-init-addr HOST:PORT",
            flag="SLURM_JOB_NODELIST",
        ) from None
    if not hosts or not hosts[0]:
        raise InvalidArgsError(
            f"SLURM_JOB_NODELIST={hostlist!r} names no host; run under srun, or pass "
            "--dist-init-addr HOST:PORT",
            flag="SLURM_JOB_NODELIST",
        )
    return str(hosts[0])


def split_address(text: str, *, flag: str = "--dist-init-addr") -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port`` or a bare host -> ``(host, port or None)``.

    >>> split_address("10.0.0.1:5000"), split_address("[fd00::1]:5000"), split_address("gpu-01")
    (('10.0.0.1', 5000), ('fd00::1', 5000), ('gpu-01', None))
    """
    text = text.strip()
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) <= 65535)):
        raise InvalidArgsError(
            f"{flag} {text!r} is not HOST:PORT (e.g. gpu-01:50000, [fd00::1]:50000)", flag=flag
        )
    return host, int(port) if port else None


def node_placement(
    environ: Mapping[str, str],
    *,
    node_rank: int | None = None,
    nnodes: int | None = None,
    dist_init_addr: str | None = None,
    hosts: Callable[[str], str] = first_host,
) -> NodePlacement | None:
    """This node's placement (see the module docstring for the order), or ``None`` when
    nothing says it: no explicit value and no scheduler variable."""
    rank, count, leader, source = _explicit(node_rank, nnodes)
    port: int | None = None
    if dist_init_addr is not None:
        leader, port = split_address(dist_init_addr)
    scheduler = _scheduler(environ, hosts)
    if scheduler is not None:
        found_rank, found_count, found_leader, found_source = scheduler
        rank = found_rank if rank is None else rank
        count = found_count if count is None else count
        leader = found_leader if leader is None else leader
        if node_rank is None and nnodes is None and dist_init_addr is None:
            source = found_source
    if rank is None and count is None and leader is None:
        return None
    missing = [
        flag for flag, value in (("--node-rank", rank), ("--nnodes", count)) if value is None
    ]
    if missing:
        raise InvalidArgsError(
            f"{' and '.join(missing)} not given and no scheduler says it (SLURM_NODEID/"
            "SLURM_NNODES under srun, LWS_WORKER_INDEX/LWS_GROUP_SIZE under a "
            "LeaderWorkerSet); pass --node-rank and --nnodes together",
            flag=missing[0],
        )
    assert rank is not None
    assert count is not None
    return NodePlacement(
        rank=rank,
        nnodes=count,
        leader=leader,
        leader_port=port,
        source=source,
        name=environ.get("SLURMD_NODENAME") or None,
    )


def _explicit(
    node_rank: int | None, nnodes: int | None
) -> tuple[int | None, int | None, str | None, PlacementSource]:
    for flag, value, least in (("--node-rank", node_rank, 0), ("--nnodes", nnodes, 1)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < least
        ):
            raise InvalidArgsError(
                f"{flag} must be an int of at least {least}, not {value!r}", flag=flag
            )
    return node_rank, nnodes, None, "explicit"


def _scheduler(
    environ: Mapping[str, str], hosts: Callable[[str], str]
) -> tuple[int, int, str | None, PlacementSource] | None:
    if environ.get("SLURM_NODEID") is not None:
        tasks, count = environ.get("SLURM_NTASKS"), environ.get("SLURM_NNODES")
        if tasks and count and tasks.strip() != count.strip():
            raise InvalidArgsError(
                f"SLURM_NTASKS={tasks} on SLURM_NNODES={count}: run one detargs launch per "
                "node (srun --ntasks-per-node=1), which starts every GPU of its node",
                flag="SLURM_NTASKS",
            )
        nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST")
        return (
            _number(environ, "SLURM_NODEID", 0),
            _number(environ, "SLURM_NNODES", 1),
            None if not nodelist else hosts(nodelist),
            "slurm",
        )
    if environ.get("LWS_WORKER_INDEX") is not None:
        return (
            _number(environ, "LWS_WORKER_INDEX", 0),
            _number(environ, "LWS_GROUP_SIZE", 1),
            environ.get("LWS_LEADER_ADDRESS") or None,
            "lws",
        )
    return None


def _number(environ: Mapping[str, str], name: str, least: int) -> int:
    text = environ.get(name)
    if text is None:
        raise InvalidArgsError(
            f"{name} is not set while the other variables of its scheduler "
            "are; run under the scheduler, or pass --node-rank and --nnodes",
            flag=name,
        )
    value = text.strip()
    if not value.isdigit() or int(value) < least:
        raise InvalidArgsError(
            f"{name}={text!r} is not a whole number of at least {least}", flag=name
        )
    return int(value)
