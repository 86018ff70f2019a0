"""Distributed-training process plans (yaml-reference §15): which processes a job runs and
the environment each needs so PyTorch, TensorFlow or MPI code finds its peers.

The result is the ``processes`` list of the bootstrap's launch plan. All processes run on
this host, so "nodes" are simulated: ranks are numbered node by node, and every address
is ``master_addr`` with consecutive ports.
"""

from __future__ import annotations

import json
from typing import Any

from mill.errors import SpecError

__all__ = ["DISTRIBUTION_TYPES", "process_plan"]

DISTRIBUTION_TYPES = ("pytorch", "tensorflow", "mpi")


def _count(distribution: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = distribution.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError.one(
            f"expected an integer >= {minimum}", field=f"distribution.{key}", value=value
        )
    return value


def process_plan(
    distribution: dict[str, Any] | None,
    instance_count: int,
    master_port: int,
    master_addr: str = "127.0.0.1",
) -> list[dict[str, Any]]:
    """The ``[{"rank": int, "env": {str: str}}]`` list for a job's launch plan.

    - no distribution: one process per instance; ``NODE_RANK`` only when there are several;
    - pytorch: ``instance_count x process_count_per_instance`` processes with ``RANK``,
      ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``, ``GROUP_RANK``,
      ``MASTER_ADDR``, ``MASTER_PORT``;
    - tensorflow: ``worker_count`` (default ``instance_count``) workers, then
      ``parameter_server_count`` parameter servers, each with its ``TF_CONFIG``;
    - mpi: ``instance_count x process_count_per_instance`` processes with the Open MPI
      ``OMPI_COMM_WORLD_*`` variables and ``PMI_RANK``/``PMI_SIZE``.
    """
    if isinstance(instance_count, bool) or not isinstance(instance_count, int):
        raise SpecError.one(
            "expected an integer", field="resources.instance_count", value=instance_count
        )
    if instance_count < 1:
        raise SpecError.one(
            "expected an integer >= 1", field="resources.instance_count", value=instance_count
        )
    kind = (distribution or {}).get("type")
    if distribution is None or kind is None:
        if instance_count == 1:
            return [{"rank": 0, "env": {}}]
        return [{"rank": i, "env": {"NODE_RANK": str(i)}} for i in range(instance_count)]
    kind = str(kind).lower()
    if kind == "pytorch":
        return _pytorch(distribution, instance_count, master_port, master_addr)
    if kind == "tensorflow":
        return _tensorflow(distribution, instance_count, master_port, master_addr)
    if kind == "mpi":
        return _mpi(distribution, instance_count)
    raise SpecError.one(
        "unknown distribution type",
        field="distribution.type",
        value=distribution.get("type"),
        allowed=", ".join(DISTRIBUTION_TYPES),
    )


def _slots(instance_count: int, per_instance: int) -> list[tuple[int, int, int]]:
    """(rank, node, local rank) for every process, node by node."""
    return [
        (node * per_instance + local, node, local)
        for node in range(instance_count)
        for local in range(per_instance)
    ]


def _pytorch(
    distribution: dict[str, Any], instance_count: int, port: int, addr: str
) -> list[dict[str, Any]]:
    per_instance = _count(distribution, "process_count_per_instance", 1)
    world = instance_count * per_instance
    return [
        {
            "rank": rank,
            "env": {
                "RANK": str(rank),
                "LOCAL_RANK": str(local),
                "WORLD_SIZE": str(world),
                "LOCAL_WORLD_SIZE": str(per_instance),
                "NODE_RANK": str(node),
                "GROUP_RANK": str(node),
                "MASTER_ADDR": addr,
                "MASTER_PORT": str(port),
            },
        }
        for rank, node, local in _slots(instance_count, per_instance)
    ]


def _tensorflow(
    distribution: dict[str, Any], instance_count: int, port: int, addr: str
) -> list[dict[str, Any]]:
    workers = _count(distribution, "worker_count", instance_count)
    servers = _count(distribution, "parameter_server_count", 0, minimum=0)
    cluster: dict[str, list[str]] = {"worker": [f"{addr}:{port + i}" for i in range(workers)]}
    if servers:
        # Parameter servers run the same command with task type "ps"; without them the
        # workers of a parameter-server strategy would wait forever.
        cluster["ps"] = [f"{addr}:{port + workers + i}" for i in range(servers)]
    tasks = [("worker", i) for i in range(workers)] + [("ps", i) for i in range(servers)]
    return [
        {
            "rank": rank,
            "env": {
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": kind, "index": index}},
                    separators=(",", ":"),
                )
            },
        }
        for rank, (kind, index) in enumerate(tasks)
    ]


def _mpi(distribution: dict[str, Any], instance_count: int) -> list[dict[str, Any]]:
    per_instance = _count(distribution, "process_count_per_instance", 1)
    world = instance_count * per_instance
    return [
        {
            "rank": rank,
            "env": {
                "OMPI_COMM_WORLD_RANK": str(rank),
                "OMPI_COMM_WORLD_SIZE": str(world),
                "OMPI_COMM_WORLD_LOCAL_RANK": str(local),
                "OMPI_COMM_WORLD_LOCAL_SIZE": str(per_instance),
                "OMPI_COMM_WORLD_NODE_RANK": str(node),
                "PMI_RANK": str(rank),
                "PMI_SIZE": str(world),
            },
        }
        for rank, node, local in _slots(instance_count, per_instance)
    ]
