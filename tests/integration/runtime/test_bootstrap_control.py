"""Stopping jobs (timeout, cancel), an unreachable control plane, and LocalRunner's view
of its processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mill.compute import LocalRunner, ProcessHandle
from mill.compute.processes import descendants, parse_stat, process_start_ticks, read_stat


def test_timeout_stops_the_whole_tree(harness) -> None:
    # The grandchild ignores SIGTERM, so only the SIGKILL after the grace can stop it.
    command = "trap '' TERM; sleep 1000 & echo $! > grandchild.pid; wait"
    plan = harness.plan(command, timeout_seconds=1, cancel_grace_seconds=0.5)
    handle = harness.launch(plan)
    grandchild = int(harness.wait_for_file(harness.working_dir / "grandchild.pid"))
    harness.wait(handle)
    result = harness.result()

    assert result == {
        "status": "Failed",
        "exit_code": None,
        "reason": "job exceeded limits.timeout of 1 s and was stopped",
        "at": result["at"],
    }
    assert harness.is_dead(grandchild)
    assert harness.receiver.statuses() == ["Preparing", "Running", "Finalizing", "Failed"]


def test_cancel_through_the_runner(harness) -> None:
    command = (
        "mkdir -p outputs && echo partial > outputs/partial.txt; "
        "sleep 1000 & echo $! > grandchild.pid; wait"
    )
    handle = harness.launch(harness.plan(command))
    harness.receiver.wait_for("Running")
    grandchild = int(harness.wait_for_file(harness.working_dir / "grandchild.pid"))

    harness.runner.terminate(handle, grace=10.0)

    assert not harness.runner.is_alive(handle)
    result = harness.result()
    assert result["status"] == "Canceled" and result["reason"] == "canceled by user"
    assert harness.is_dead(grandchild)
    assert (harness.artifacts / "outputs" / "partial.txt").read_text() == "partial\n"
    harness.receiver.wait_for("Canceled")
    assert harness.receiver.statuses() == ["Preparing", "Running", "Finalizing", "Canceled"]


def test_terminate_kills_a_bootstrap_that_does_not_stop(harness, tmp_path: Path) -> None:
    """A bootstrap that ignores SIGTERM (hung, or not ours) is killed with its tree."""
    script = tmp_path / "stubborn.sh"
    script.write_text("trap '' TERM; sleep 1000 & echo $! > grandchild.pid; wait\n")
    child = subprocess.Popen(["/bin/bash", str(script)], cwd=tmp_path, start_new_session=True)
    try:
        handle = ProcessHandle(child.pid, process_start_ticks(child.pid))
        grandchild = int(harness.wait_for_file(tmp_path / "grandchild.pid"))
        runner = LocalRunner()  # a runner that did not start it, as after a restart

        runner.terminate(handle, grace=0.2)

        assert child.wait(timeout=10) == -9
        assert harness.is_dead(grandchild)
    finally:
        if child.poll() is None:
            child.kill()


def test_a_dead_control_plane_never_holds_the_job(harness) -> None:
    callback = {
        "base_url": f"http://127.0.0.1:{harness.free_port()}",
        "path": "/api/v1/runtime/jobs/job-1/events",
        "token": "t",
        "server_file": str(harness.tmp / "no-such-server.json"),
    }
    handle = harness.launch(harness.plan("echo done", callback=callback))
    took = harness.wait(handle, timeout=45)

    assert took < 45  # the bootstrap gives up flushing events after ~10 s
    assert harness.result()["status"] == "Completed"
    assert harness.status()["status"] == "Completed"
    assert harness.std_log() == "done\n"
    assert "not delivered" in (harness.artifacts / "system_logs/runtime.txt").read_text()


def test_events_follow_the_control_plane_to_its_new_address(harness) -> None:
    (harness.tmp / "server.json").write_text(json.dumps({"url": harness.receiver.url}))
    callback = {
        "base_url": f"http://127.0.0.1:{harness.free_port()}",
        "path": "/api/v1/runtime/jobs/job-1/events",
        "token": "s3cret-token",
        "server_file": str(harness.tmp / "server.json"),
    }
    result = harness.run(harness.plan("echo moved", callback=callback))

    assert result["status"] == "Completed"
    harness.receiver.wait_for("Completed")
    assert harness.receiver.statuses() == ["Preparing", "Running", "Finalizing", "Completed"]


def test_refused_events_are_dropped_not_retried(harness) -> None:
    harness.receiver.token = "another-token"
    result = harness.run(harness.plan("true"))

    assert result["status"] == "Completed"
    assert harness.receiver.refused == 4
    assert harness.receiver.events == []


def test_no_callback_means_files_only(harness) -> None:
    result = harness.run(harness.plan("true", callback=None))

    assert result["status"] == "Completed"
    assert harness.receiver.events == [] and harness.receiver.refused == 0
    history = [h["status"] for h in harness.status()["history"]]
    assert history == ["Preparing", "Running", "Finalizing", "Completed"]


def test_is_alive_follows_the_process_not_the_pid(harness) -> None:
    handle = harness.launch(harness.plan("true", callback=None))
    harness.wait(handle)
    assert not harness.runner.is_alive(handle)
    assert ProcessHandle.from_dict(handle.to_dict()) == handle

    me = os.getpid()
    ticks = process_start_ticks(me)
    assert ticks is not None
    assert harness.runner.is_alive(ProcessHandle(me, ticks))
    assert not harness.runner.is_alive(ProcessHandle(me, ticks + 1))


def test_finished_children_are_reaped(harness) -> None:
    handle = harness.launch(harness.plan("true", callback=None))
    harness.wait(handle)
    left = read_stat(handle.pid)  # gone, not a zombie (unless the pid was reused already)
    assert left is None or left.start_ticks != handle.start_ticks
    assert handle.pid not in descendants(os.getpid())


def test_stat_parsing_survives_odd_command_names() -> None:
    fields = " ".join(str(n) for n in range(3, 53)).replace("3", "S", 1)
    stat = parse_stat(f"1234 (my (odd) ) name) {fields}".encode())
    assert stat.state == "S"
    assert (stat.ppid, stat.pgrp, stat.start_ticks) == (4, 5, 22)


def test_launch_reports_a_missing_interpreter(tmp_path: Path) -> None:
    import pytest

    from mill.errors import MillError

    runner = LocalRunner(python=str(tmp_path / "no-python"))
    with pytest.raises(MillError, match="could not start the job bootstrap"):
        runner.launch({"version": 1}, tmp_path / "run")
