"""The control plane process: auto-start, homes, tokens, workspaces, MILL_URL, PostgreSQL."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from tests.e2e.harness import EXAMPLES, MillHome, kill_leftovers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_starts_the_server_on_first_use_and_says_so_once(tmp_path: Path) -> None:
    home = MillHome(tmp_path / "home")
    port = str(_free_port())
    try:
        first = home.cli("workspace", "list", MILL_PORT=port)
        assert "Started the Mill control plane at http://127.0.0.1:" + port in first.stderr
        assert "default" in first.stdout
        second = home.cli("workspace", "list", MILL_PORT=port)
        assert second.stderr == ""
        status = json.loads(home.cli("server", "status", "-o", "json").stdout)
        assert status["running"] is True and status["port"] == int(port)
        assert (home.home / "server.pid").read_text().strip() == str(status["pid"])
        assert (home.home / "logs/server.log").exists()
    finally:
        home.stop()
    stopped = home.cli("server", "status", check=False)
    assert stopped.returncode == 3 and '"running": false' in stopped.stdout


def test_two_homes_never_share_a_server(tmp_path: Path) -> None:
    one, two = MillHome(tmp_path / "one"), MillHome(tmp_path / "two")
    try:
        url_one = one.start()["url"]
        url_two = two.start()["url"]
        assert url_one != url_two
        one.cli("workspace", "create", "--name", "only-in-one")
        assert "only-in-one" not in two.cli("workspace", "list").stdout
        # A stale address file pointing at the other home's server is not trusted.
        server_file = json.loads((two.home / "server.json").read_text())
        server_file["url"] = url_one
        (two.home / "server.json").write_text(json.dumps(server_file))
        status = two.cli("server", "status", check=False)
        assert status.returncode == 3
    finally:
        one.stop()
        two.stop()


def test_a_second_server_for_the_same_home_is_refused(mill: MillHome) -> None:
    result = mill.cli("server", "start", "--port", "0", check=False)
    assert result.returncode == 1 and "already running" in result.stderr


def test_non_loopback_needs_a_token_and_then_checks_it(tmp_path: Path) -> None:
    home = MillHome(tmp_path / "home")
    refused = home.cli("server", "start", "--host", "0.0.0.0", "--port", "0", check=False)
    assert refused.returncode == 2 and "needs a token" in refused.stderr
    try:
        info = home.start("--host", "0.0.0.0", "--token", "t0ken-value")
        assert info["token_required"] is True
        assert "t0ken-value" not in (home.home / "server.json").read_text()
        assert httpx.get(f"{info['url']}/api/v1/workspaces").status_code == 401
        # The MLflow API too, fixed-path calls (found ahead of the routers) included.
        for path in (
            "/api/2.0/mlflow/experiments/search",
            "/workspaces/default/api/2.0/mlflow/runs/search",
        ):
            assert httpx.post(f"{info['url']}{path}", json={}).status_code == 401
        assert (
            httpx.post(
                f"{info['url']}/api/2.0/mlflow/experiments/search",
                json={},
                headers={"Authorization": "Bearer t0ken-value"},
            ).status_code
            == 200
        )
        denied = home.cli("workspace", "list", check=False)
        assert denied.returncode == 1 and "token" in denied.stderr
        assert "default" in home.cli("workspace", "list", MILL_TOKEN="t0ken-value").stdout
        name = home.cli(
            "job",
            "create",
            "--file",
            str(EXAMPLES / "hello-world/job.yml"),
            "--stream",
            MILL_TOKEN="t0ken-value",
        )
        assert "Status: Completed" in name.stdout
    finally:
        home.stop()
        kill_leftovers(home.home)


def test_mill_url_points_the_cli_at_another_server(mill: MillHome, tmp_path: Path) -> None:
    url = json.loads((mill.home / "server.json").read_text())["url"]
    elsewhere = MillHome(tmp_path / "elsewhere")
    listed = elsewhere.cli("workspace", "list", MILL_URL=url)
    assert "default" in listed.stdout
    assert not (elsewhere.home / "server.json").exists()  # nothing started for this home
    down = elsewhere.cli("workspace", "list", MILL_URL="http://127.0.0.1:9", check=False)
    assert down.returncode == 1 and "cannot reach the Mill server" in down.stderr


def test_workspaces_and_the_workspace_option(mill: MillHome) -> None:
    created = mill.json(
        "workspace", "create", "--name", "team-a", "--description", "A's", "--tags", "k=v"
    )
    assert created["storage_root"].endswith("workspaces/team-a")
    assert Path(created["storage_root"], "datastores/workspaceblobstore").is_dir()
    hello = str(EXAMPLES / "hello-world/job.yml")
    name = mill.cli(
        "job", "create", "-f", hello, "-w", "team-a", "--query", "name", "-o", "tsv"
    ).stdout.strip()
    assert [j["name"] for j in mill.json("job", "list", "-w", "team-a")] == [name]
    assert name not in mill.cli("job", "list").stdout
    via_env = mill.json("job", "list", MILL_WORKSPACE="team-a")
    assert [j["name"] for j in via_env] == [name]
    assert mill.json("workspace", "show", "-w", "team-a")["name"] == "team-a"
    while mill.json("job", "show", "--name", name, "-w", "team-a")["status"] != "Completed":
        time.sleep(0.1)
    mill.cli("workspace", "delete", "--name", "team-a", "--yes")
    assert "team-a" not in mill.cli("workspace", "list").stdout
    assert not Path(created["storage_root"]).exists()

    mill.cli("workspace", "create", "--name", "team-b")
    busy = mill.submit("command: sleep 60\n", "-w", "team-b", folder="busy")
    refused = mill.cli("workspace", "delete", "--name", "team-b", "--yes", check=False)
    assert refused.returncode == 1 and "unfinished" in refused.stderr and busy in refused.stderr
    mill.cli("job", "cancel", "--name", busy, "-w", "team-b")
    mill.cli("workspace", "delete", "--name", "team-b", "--yes")
    table = mill.cli("workspace", "list").stdout
    assert table.splitlines()[0].split() == ["Name", "Description", "StorageRoot"]
    default = mill.cli("workspace", "delete", "--name", "default", "--yes", check=False)
    assert default.returncode == 1 and "cannot be deleted" in default.stderr


@pytest.mark.postgres
def test_jobs_run_with_the_store_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    home = MillHome(tmp_path / "home", database_url=postgres_url)
    try:
        home.start()
        result = home.cli(
            "job", "create", "--file", str(EXAMPLES / "sklearn-iris/job.yml"), "--stream"
        )
        assert "Status: Completed" in result.stdout
        assert not (home.home / "mill.db").exists()
    finally:
        home.stop()
        kill_leftovers(home.home)
