"""The job bootstrap end to end: staging, running, logs, outputs, events, results."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from mill.compute import process_plan

PY = sys.executable

MAIN = b"""\
import os, sys
data = sys.argv[sys.argv.index("--data") + 1]
print("hello from main", open(data).read().strip())
print("folder input:", sorted(os.listdir(sys.argv[sys.argv.index("--folder") + 1])))
print("downloaded:", open(sys.argv[sys.argv.index("--url") + 1]).read().strip())
os.makedirs("outputs/nested", exist_ok=True)
open("outputs/nested/metrics.txt", "w").write("acc=0.9")
open("logs/extra.log", "w").write("extra log")
model = sys.argv[sys.argv.index("--model") + 1]
open(os.path.join(model, "model.pkl"), "w").write("weights")
open(sys.argv[sys.argv.index("--report") + 1], "w").write("report")
open("src/main.py", "a").write("# user code may change its own files")
"""


def test_a_successful_job_stages_runs_saves_and_reports(harness, tmp_path: Path) -> None:
    main_digest = harness.blob(MAIN)
    helper_digest = harness.blob(b"VALUE = 1\n")
    data_file = tmp_path / "data.txt"
    data_file.write_text("the data")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("a")
    (folder / "sub" / "b.csv").write_text("b")
    harness.receiver.files["/files/remote.txt"] = b"remote bytes" * 100_000
    inputs_dir = harness.run_dir / "inputs"
    model_local = harness.run_dir / "outputs" / "model"
    model_store = tmp_path / "store" / "model"
    report_store = tmp_path / "store" / "report.txt"  # rw_mount: written in place
    command = (
        f"{PY} src/main.py --data {data_file} --folder {inputs_dir / 'folder'}"
        f" --url {inputs_dir / 'remote.txt'} --model {model_local} --report {report_store}"
    )
    plan = harness.plan(
        command,
        code={
            "blobs_dir": str(harness.blobs),
            "files": [
                {"path": "src/main.py", "sha256": main_digest, "mode": 0o755},
                {"path": "src/lib/helper.py", "sha256": helper_digest, "mode": 0o644},
            ],
        },
        inputs=[
            {"name": "data", "action": "none", "source": str(data_file), "target": ""},
            {
                "name": "folder",
                "action": "copy",
                "source": str(folder),
                "target": str(inputs_dir / "folder"),
            },
            {
                "name": "remote",
                "action": "download_url",
                "source": f"{harness.receiver.url}/files/remote.txt",
                "target": str(inputs_dir / "remote.txt"),
            },
        ],
        outputs=[
            {
                "name": "model",
                "type": "uri_folder",
                "mode": "upload",
                "local_path": str(model_local),
                "destination": str(model_store),
            },
            {
                "name": "report",
                "type": "uri_file",
                "mode": "rw_mount",
                "local_path": str(report_store),
                "destination": str(report_store),
            },
        ],
    )

    result = harness.run(plan)

    assert result["status"] == "Completed", harness.logs()
    assert result["exit_code"] == 0 and result["reason"] is None
    assert harness.receiver.statuses() == ["Preparing", "Running", "Finalizing", "Completed"]
    assert harness.receiver.refused == 0
    final = harness.receiver.events[-1]
    assert final["exit_code"] == 0 and final["pid"] == harness.handles[0].pid
    status = harness.status()
    assert status["status"] == "Completed" and status["pid"] == harness.handles[0].pid
    assert [h["status"] for h in status["history"]] == harness.receiver.statuses()

    staged = harness.working_dir / "src" / "main.py"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o755
    assert (harness.working_dir / "src" / "lib" / "helper.py").read_text() == "VALUE = 1\n"
    blob = harness.blobs / main_digest[:2] / main_digest
    assert blob.read_bytes() == MAIN  # the job changed its copy, never the shared blob

    log = harness.std_log()
    assert "hello from main the data" in log
    assert "folder input: ['a.csv', 'sub']" in log
    assert "downloaded: remote bytes" in log
    assert (inputs_dir / "folder" / "sub" / "b.csv").read_text() == "b"
    assert (inputs_dir / "remote.txt").stat().st_size == len(b"remote bytes") * 100_000

    assert (harness.artifacts / "outputs/nested/metrics.txt").read_text() == "acc=0.9"
    assert (harness.artifacts / "logs/extra.log").read_text() == "extra log"
    assert (model_store / "model.pkl").read_text() == "weights"
    assert report_store.read_text() == "report"
    runtime_log = (harness.artifacts / "system_logs" / "runtime.txt").read_text()
    assert "staged 2 code file(s)" in runtime_log
    assert oct(os.stat(harness.run_dir / "launch.json").st_mode & 0o777) == "0o600"


def test_the_log_is_written_while_the_command_runs(harness) -> None:
    go = harness.working_dir / "go"
    command = f"echo started; while [ ! -e {go} ]; do sleep 0.02; done; echo finished"
    handle = harness.launch(harness.plan(command))

    harness.receiver.wait_for("Running")
    harness.wait_for_file(harness.artifacts / "user_logs" / "std_log.txt")
    assert harness.std_log() == "started\n"
    assert harness.runner.is_alive(handle)
    go.touch()
    harness.wait(handle)

    assert harness.result()["status"] == "Completed"
    assert harness.std_log() == "started\nfinished\n"


def test_a_failing_command_fails_the_job_with_its_code_and_last_line(harness) -> None:
    command = f"{PY} -c 'print(\"working\"); 1/0'"
    result = harness.run(harness.plan(command))

    assert result["status"] == "Failed"
    assert result["exit_code"] == 1
    assert result["reason"].startswith(
        "user command exited with code 1 (rank 0); see user_logs/std_log.txt"
    )
    assert result["reason"].endswith("Last line: ZeroDivisionError: division by zero")
    assert harness.receiver.statuses() == ["Preparing", "Running", "Finalizing", "Failed"]
    failed = harness.receiver.events[-1]
    assert failed["exit_code"] == 1 and failed["reason"] == result["reason"]


def test_several_processes_log_per_rank_and_combined(harness) -> None:
    processes = process_plan({"type": "pytorch", "process_count_per_instance": 2}, 1, 29500)
    command = 'echo "rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK"; echo "bye $RANK"'
    result = harness.run(harness.plan(command, processes=processes))

    assert result["status"] == "Completed", harness.logs()
    for rank in (0, 1):
        own = harness.std_log(f"std_log_process_{rank}.txt")
        assert own == f"rank={rank} world=2 local={rank}\nbye {rank}\n"
    combined = harness.std_log().splitlines()
    assert sorted(combined) == [
        "[rank 0] bye 0",
        "[rank 0] rank=0 world=2 local=0",
        "[rank 1] bye 1",
        "[rank 1] rank=1 world=2 local=1",
    ]


def test_a_failing_rank_stops_the_others(harness) -> None:
    processes = process_plan({"type": "pytorch", "process_count_per_instance": 3}, 1, 29500)
    command = (
        'if [ "$RANK" = 1 ]; then echo "rank 1 broke"; exit 3; fi; '
        "sleep 1000 & echo $! > sleeper_$RANK.pid; wait"
    )
    handle = harness.launch(harness.plan(command, processes=processes))
    harness.wait(handle)
    result = harness.result()

    assert result["status"] == "Failed"
    assert result["exit_code"] == 3
    assert "exited with code 3 (rank 1)" in result["reason"]
    assert "std_log_process_1.txt" in result["reason"]
    assert result["reason"].endswith("Last line: rank 1 broke")
    for rank in (0, 2):
        pid_file = harness.working_dir / f"sleeper_{rank}.pid"
        if pid_file.exists():  # it may have been stopped before it got that far
            assert harness.is_dead(int(pid_file.read_text()))


def test_staging_failures_fail_the_job_before_user_code(harness, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plan = harness.plan(
        f"touch {marker}",
        inputs=[
            {
                "name": "data",
                "action": "copy",
                "source": str(tmp_path / "missing.csv"),
                "target": str(harness.run_dir / "inputs" / "data.csv"),
            }
        ],
    )
    result = harness.run(plan)

    assert result["status"] == "Failed"
    assert result["reason"].startswith("could not stage input 'data': ")
    assert "missing.csv" in result["reason"]
    assert not marker.exists()
    assert harness.receiver.statuses() == ["Preparing", "Failed"]


def test_a_download_that_fails_names_the_input(harness, tmp_path: Path) -> None:
    plan = harness.plan(
        "true",
        inputs=[
            {
                "name": "remote",
                "action": "download_url",
                "source": f"{harness.receiver.url}/files/nope.csv",
                "target": str(harness.run_dir / "inputs" / "nope.csv"),
            }
        ],
    )
    result = harness.run(plan)

    assert result["status"] == "Failed"
    assert result["reason"].startswith("could not stage input 'remote': HTTP 404")
    assert not (harness.run_dir / "inputs" / "nope.csv").exists()


def test_code_paths_that_leave_the_working_dir_are_refused(harness, tmp_path: Path) -> None:
    digest = harness.blob(b"print('evil')\n")
    for bad in ("../evil.py", "src/../../evil.py", str(tmp_path / "evil.py")):
        files = [{"path": "ok.py", "sha256": digest, "mode": 0o644}]
        files.append({"path": bad, "sha256": digest, "mode": 0o644})
        plan = harness.plan("true", code={"blobs_dir": str(harness.blobs), "files": files})
        result = harness.run(plan)

        assert result["status"] == "Failed"
        assert result["reason"] == (
            f"refusing code file path {bad!r}: it must stay inside the code folder"
        )
        assert not (harness.run_dir / "evil.py").exists()
        assert not (tmp_path / "evil.py").exists()
        assert not (harness.working_dir / "ok.py").exists()  # checked before any copy


def test_the_bootstrap_runs_as_a_module_too(harness) -> None:
    plan = harness.plan("echo via module", callback=None)
    harness.run_dir.mkdir(parents=True)
    plan_path = harness.run_dir / "launch.json"
    plan_path.write_text(json.dumps(plan))
    done = subprocess.run(
        [PY, "-m", "mill.runtime.bootstrap", str(plan_path)], timeout=60, check=False
    )

    assert done.returncode == 0
    assert harness.result()["status"] == "Completed"
    assert harness.std_log() == "via module\n"


def test_an_unreadable_plan_exits_2(tmp_path: Path) -> None:
    from mill.compute.local import BOOTSTRAP_PATH

    plan_path = tmp_path / "launch.json"
    plan_path.write_text(json.dumps({"version": 99, "run_dir": str(tmp_path)}))
    done = subprocess.run([PY, "-S", str(BOOTSTRAP_PATH), str(plan_path)], check=False)

    assert done.returncode == 2
    result = (tmp_path / "result.json").read_text()
    assert "invalid launch plan" in result and "version 99" in result


def test_an_output_that_cannot_be_saved_fails_a_completed_job(harness, tmp_path: Path) -> None:
    local = harness.run_dir / "outputs" / "model"
    blocker = tmp_path / "store"
    blocker.write_text("a file where the output folder should go")
    plan = harness.plan(
        f"echo weights > {local}/model.pkl",
        outputs=[
            {
                "name": "model",
                "type": "uri_folder",
                "mode": "upload",
                "local_path": str(local),
                "destination": str(blocker / "model"),
            }
        ],
    )
    result = harness.run(plan)

    assert result["status"] == "Failed"
    assert result["exit_code"] == 0
    assert result["reason"].startswith("could not upload output 'model': ")
    assert harness.receiver.statuses() == ["Preparing", "Running", "Finalizing", "Failed"]
