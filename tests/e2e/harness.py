"""The end-to-end harness: a Mill home with its own real server, driven by the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


class MillHome:
    """One MILL_HOME with a server on a free loopback port; ``cli`` runs the real `mill`."""

    # Built environments are shared by every home of a test run (builds are locked per key),
    # so the curated sklearn set is built once, not once per test.
    shared_envs: Path | None = None

    def __init__(self, home: Path, database_url: str | None = None) -> None:
        self.home = home
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MILL_") or k.startswith("MILL_TEST")
        }
        home.mkdir(parents=True, exist_ok=True)
        self.env["MILL_HOME"] = str(home)
        if database_url:
            self.env["MILL_DATABASE_URL"] = database_url
        if MillHome.shared_envs is not None:
            self.env["MILL_ENVS_DIR"] = str(MillHome.shared_envs)

    def cli(
        self,
        *args: str,
        check: bool = True,
        cwd: Path | None = None,
        timeout: float = 120,
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mill", *args],
            env={**self.env, **env},
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"mill {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.cli(*args, "-o", "json", **kw).stdout)

    def start(self, *extra: str) -> dict[str, Any]:
        info: dict[str, Any] = self.json("server", "start", "--port", "0", *extra)
        return info

    def stop(self) -> None:
        self.cli("server", "stop", check=False)

    def wait_job(
        self, name: str, timeout: float = 60, until: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        done = until or ("Completed", "Failed", "Canceled")
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.json("job", "show", "--name", name)
            if job["status"] in done:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {name} still {job.get('status')} after {timeout}s")

    def submit(self, yaml_text: str, *args: str, folder: str = "job") -> str:
        job_dir = self.home.parent / folder
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "job.yml").write_text(yaml_text)
        name: str = self.cli(
            "job",
            "create",
            "--file",
            str(job_dir / "job.yml"),
            "--query",
            "name",
            "-o",
            "tsv",
            *args,
        ).stdout.strip()
        return name


def kill_leftovers(home: Path) -> None:
    """Kill job bootstraps a test left running under this home (tests must not leak processes)."""
    for status in home.glob("workspaces/*/runs/*/status.json"):
        try:
            pid = int(json.loads(status.read_text()).get("pid", 0))
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
    for port_file in home.glob("endpoints/*/*/g*/replica-*.port"):  # online replicas
        try:
            os.killpg(int(json.loads(port_file.read_text())["pid"]), signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass
