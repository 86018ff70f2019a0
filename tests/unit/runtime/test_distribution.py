"""Process plans for distributed jobs (yaml-reference §15)."""

from __future__ import annotations

import json

import pytest

from mill.compute.distribution import process_plan
from mill.errors import SpecError


def test_no_distribution_runs_one_process_per_instance() -> None:
    assert process_plan(None, 1, 29500) == [{"rank": 0, "env": {}}]
    assert process_plan({}, 1, 29500) == [{"rank": 0, "env": {}}]
    assert process_plan(None, 3, 29500) == [
        {"rank": 0, "env": {"NODE_RANK": "0"}},
        {"rank": 1, "env": {"NODE_RANK": "1"}},
        {"rank": 2, "env": {"NODE_RANK": "2"}},
    ]


def test_pytorch_single_process_defaults() -> None:
    assert process_plan({"type": "pytorch"}, 1, 29500, "10.0.0.1") == [
        {
            "rank": 0,
            "env": {
                "RANK": "0",
                "LOCAL_RANK": "0",
                "WORLD_SIZE": "1",
                "LOCAL_WORLD_SIZE": "1",
                "NODE_RANK": "0",
                "GROUP_RANK": "0",
                "MASTER_ADDR": "10.0.0.1",
                "MASTER_PORT": "29500",
            },
        }
    ]


@pytest.mark.parametrize(("instances", "per_instance"), [(1, 2), (1, 8), (2, 4), (3, 1)])
def test_pytorch_ranks_are_numbered_node_by_node(instances: int, per_instance: int) -> None:
    distribution = {"type": "pytorch", "process_count_per_instance": per_instance}
    plan = process_plan(distribution, instances, 29500)

    world = instances * per_instance
    assert [p["rank"] for p in plan] == list(range(world))
    for p in plan:
        env = p["env"]
        node, local = divmod(p["rank"], per_instance)
        assert env["RANK"] == str(p["rank"])
        assert env["WORLD_SIZE"] == str(world)
        assert env["LOCAL_RANK"] == str(local)
        assert env["NODE_RANK"] == env["GROUP_RANK"] == str(node)
        assert env["LOCAL_WORLD_SIZE"] == str(per_instance)
        assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("127.0.0.1", "29500")


def test_type_names_are_case_insensitive() -> None:
    assert len(process_plan({"type": "PyTorch", "process_count_per_instance": 2}, 1, 1)) == 2


def test_tensorflow_workers_default_to_the_instance_count() -> None:
    plan = process_plan({"type": "tensorflow"}, 2, 5000)

    configs = [json.loads(p["env"]["TF_CONFIG"]) for p in plan]
    assert [p["rank"] for p in plan] == [0, 1]
    assert configs == [
        {
            "cluster": {"worker": ["127.0.0.1:5000", "127.0.0.1:5001"]},
            "task": {"type": "worker", "index": i},
        }
        for i in (0, 1)
    ]


def test_tensorflow_worker_count_and_parameter_servers() -> None:
    distribution = {"type": "tensorflow", "worker_count": 2, "parameter_server_count": 1}
    plan = process_plan(distribution, 1, 5000)

    configs = [json.loads(p["env"]["TF_CONFIG"]) for p in plan]
    cluster = {"worker": ["127.0.0.1:5000", "127.0.0.1:5001"], "ps": ["127.0.0.1:5002"]}
    assert all(c["cluster"] == cluster for c in configs)
    assert [c["task"] for c in configs] == [
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
        {"type": "ps", "index": 0},
    ]
    assert [p["rank"] for p in plan] == [0, 1, 2]


def test_mpi_sets_open_mpi_and_pmi_variables() -> None:
    plan = process_plan({"type": "mpi", "process_count_per_instance": 2}, 2, 29500)

    assert [p["env"]["OMPI_COMM_WORLD_RANK"] for p in plan] == ["0", "1", "2", "3"]
    assert [p["env"]["OMPI_COMM_WORLD_LOCAL_RANK"] for p in plan] == ["0", "1", "0", "1"]
    assert [p["env"]["OMPI_COMM_WORLD_NODE_RANK"] for p in plan] == ["0", "0", "1", "1"]
    for p in plan:
        env = p["env"]
        assert env["OMPI_COMM_WORLD_SIZE"] == env["PMI_SIZE"] == "4"
        assert env["OMPI_COMM_WORLD_LOCAL_SIZE"] == "2"
        assert env["PMI_RANK"] == env["OMPI_COMM_WORLD_RANK"]


def test_mpi_defaults_to_one_process_per_instance() -> None:
    plan = process_plan({"type": "mpi"}, 1, 29500)
    assert plan[0]["env"]["OMPI_COMM_WORLD_SIZE"] == "1"


def test_unknown_type_is_a_spec_error_listing_the_allowed_ones() -> None:
    with pytest.raises(SpecError) as caught:
        process_plan({"type": "horovod"}, 1, 29500)
    assert "distribution.type" in caught.value.message
    assert "pytorch, tensorflow, mpi" in caught.value.message
    assert "'horovod'" in caught.value.message


@pytest.mark.parametrize(
    ("distribution", "instances", "field"),
    [
        ({"type": "pytorch", "process_count_per_instance": 0}, 1, "process_count_per_instance"),
        ({"type": "pytorch", "process_count_per_instance": "2"}, 1, "process_count_per_instance"),
        ({"type": "mpi", "process_count_per_instance": True}, 1, "process_count_per_instance"),
        ({"type": "tensorflow", "worker_count": -1}, 1, "worker_count"),
        ({"type": "tensorflow", "parameter_server_count": -1}, 1, "parameter_server_count"),
        (None, 0, "instance_count"),
    ],
)
def test_bad_counts_are_spec_errors(distribution: dict | None, instances: int, field: str) -> None:
    with pytest.raises(SpecError, match=field):
        process_plan(distribution, instances, 29500)
