"""Cancel, timeout, restart safety and queueing, with real processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.e2e.harness import MillHome


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_cancel_kills_the_whole_process_tree(mill: MillHome, tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    name = mill.submit(
        f"command: sleep 300 & echo $! > {pids}.tmp; echo $$ >> {pids}.tmp; "
        f"mv {pids}.tmp {pids}; wait\n"
    )
    mill.wait_job(name, until=("Running",))
    children = [int(p) for p in _wait_for_file(pids).split()]
    assert all(_alive(p) for p in children)
    job = mill.json("job", "cancel", "--name", name)
    assert job["status"] == "Canceled"
    assert job["error"]["message"] == "canceled by user"
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in children), "a process of the canceled job survived"
    result = mill.cli("job", "stream", "--name", name, check=False)
    assert result.returncode == 1 and "ended Canceled" in result.stderr


def test_timeout_fails_the_job_with_that_reason(mill: MillHome) -> None:
    name = mill.submit("command: echo waiting && sleep 120\nlimits:\n  timeout: 1\n")
    job = mill.wait_job(name, timeout=30)
    assert job["status"] == "Failed"
    assert "limits.timeout of 1 s" in job["error"]["message"]


def test_restart_re_adopts_live_jobs_and_settles_dead_ones(mill: MillHome, tmp_path: Path) -> None:
    mill.cli("compute", "create", "--name", "one-slot", "--max-instances", "1")
    gate = tmp_path / "gate"
    survivor = mill.submit(
        f"command: while [ ! -f {gate} ]; do sleep 0.05; done; echo survived\ncompute: one-slot\n",
        folder="survivor",
    )
    waiting = mill.submit("command: echo my turn\ncompute: one-slot\n", folder="waiting")
    victim_pid_file = tmp_path / "victim.pid"
    victim = mill.submit(f"command: echo $PPID > {victim_pid_file}; sleep 300\n", folder="victim")
    mill.wait_job(survivor, until=("Running",))
    mill.wait_job(victim, until=("Running",))
    assert mill.json("job", "show", "--name", waiting)["status"] == "Queued"
    _wait_for_file(victim_pid_file)
    victim_job = mill.json("job", "show", "--name", victim)

    mill.stop()
    # While the control plane is down: one job's bootstrap dies, the other job finishes.
    os.killpg(victim_job["pid"], 9)
    gate.touch()
    time.sleep(0.5)
    mill.start()

    done = mill.wait_job(survivor)
    assert done["status"] == "Completed", done
    assert "survived" in mill.cli("job", "stream", "--name", survivor).stdout
    assert mill.wait_job(waiting)["status"] == "Completed"  # the queue carried on
    dead = mill.wait_job(victim)
    assert dead["status"] == "Failed"
    assert (
        "no longer running" in dead["error"]["message"]
        or "without reporting" in dead["error"]["message"]
    )


def test_twenty_jobs_on_a_two_slot_compute_run_in_order(mill: MillHome, tmp_path: Path) -> None:
    mill.cli("compute", "create", "--name", "two-slots", "--type", "local", "--max-instances", "2")
    marks = tmp_path / "marks"
    marks.mkdir()
    job_dir = tmp_path / "queued"
    job_dir.mkdir()
    (job_dir / "job.yml").write_text(
        "command: python -c \"import time,sys; open(sys.argv[1]+'/'+sys.argv[2],'w').write("
        "str(time.time())+' '); time.sleep(0.2); "
        "open(sys.argv[1]+'/'+sys.argv[2],'a').write(str(time.time()))\" "
        f"{marks} ${{{{inputs.i}}}}\n"
        "compute: azureml:two-slots\ninputs:\n  i: 0\n"
    )
    names = []
    for i in range(20):
        names.append(
            mill.cli(
                "job",
                "create",
                "--file",
                str(job_dir / "job.yml"),
                "--set",
                f"inputs.i={i}",
                "--query",
                "name",
                "-o",
                "tsv",
            ).stdout.strip()
        )
    for name in names:
        assert mill.wait_job(name, timeout=120)["status"] == "Completed"
    spans = [tuple(map(float, (marks / str(i)).read_text().split())) for i in range(20)]
    starts = [s for s, _ in spans]
    assert starts == sorted(starts), "jobs did not start in submission order"
    for t in starts:
        running = sum(1 for s, e in spans if s <= t < e)
        assert running <= 2, f"{running} jobs ran at once on a compute limited to 2"
    jobs = {j["name"]: j for j in mill.json("job", "list", "--max-results", "100")}
    assert all(jobs[n]["compute"] == "two-slots" for n in names)


def test_unknown_compute_lists_the_known_ones(mill: MillHome) -> None:
    mill.cli("compute", "create", "--name", "cpu-small", "--max-instances", "1")
    (mill.home.parent / "c").mkdir()
    path = mill.home.parent / "c" / "job.yml"
    path.write_text("command: echo\ncompute: azureml:gpu-cluster\n")
    result = mill.cli("job", "create", "--file", str(path), check=False)
    assert result.returncode == 2
    assert "compute 'gpu-cluster' not found" in result.stderr
    assert "local, cpu-small" in result.stderr
    computes = mill.cli("compute", "list").stdout
    assert "cpu-small" in computes and "local" in computes


def test_a_job_process_that_dies_is_failed_with_a_reason(mill: MillHome) -> None:
    name = mill.submit("command: sleep 300\n")
    job = mill.wait_job(name, until=("Running",))
    os.killpg(job["pid"], 9)  # the bootstrap and its children, with no chance to report
    failed = mill.wait_job(name, timeout=30)
    assert failed["status"] == "Failed"
    assert "ended without reporting a result" in failed["error"]["message"]
