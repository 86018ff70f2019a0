"""The vault through the real CLI and a real server: values go in, and only jobs see them."""

from __future__ import annotations

import hashlib
import json
import secrets as token_source
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import MillHome

VALUE = "pw-" + token_source.token_hex(10)


def _set_from_stdin(mill: MillHome, name: str, value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mill", "secret", "set", "--name", name, "-o", "json"],
        input=value + "\n",
        env=mill.env,
        cwd=mill.home,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _nowhere_under(home: Path, value: str) -> None:
    """No file under the home (database, logs, plans, job outputs) holds the value."""
    needle = value.encode()
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink() and "envs" not in path.parts:
            assert needle not in path.read_bytes(), f"{path} holds the secret value"


def test_set_show_list_delete_never_print_the_value(mill: MillHome, tmp_path: Path) -> None:
    done = _set_from_stdin(mill, "db-password", VALUE)
    assert VALUE not in done.stdout + done.stderr
    info = json.loads(done.stdout)
    assert (info["name"], info["version"]) == ("db-password", 1)
    key_file = mill.home / "vault.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    value_file = tmp_path / "token.txt"
    value_file.write_text(VALUE + "-file\n")
    from_file = mill.json("secret", "set", "--name", "api.token", "--file", str(value_file))
    assert from_file["version"] == 1
    again = mill.json(
        "secret", "set", "--name", "db-password", "--value", VALUE, "--description", "db"
    )
    assert again["version"] == 2 and again["description"] == "db"

    outputs = [
        mill.cli("secret", "show", "--name", "db-password", "-o", fmt).stdout
        for fmt in ("json", "yaml", "table")
    ]
    outputs += [mill.cli("secret", "list", "-o", fmt).stdout for fmt in ("json", "yaml", "table")]
    listed = mill.cli("secret", "list").stdout
    assert "api.token" in listed and "db-password" in listed
    for text in [*outputs, listed]:
        assert VALUE not in text

    bad = mill.cli("secret", "set", "--name", "bad name", "--value", VALUE, check=False)
    assert bad.returncode == 2 and "invalid secret name" in bad.stderr and VALUE not in bad.stderr

    mill.cli("secret", "delete", "--name", "api.token", "--yes")
    assert [s["name"] for s in mill.json("secret", "list")] == ["db-password"]
    gone = mill.cli("secret", "show", "--name", "api.token", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr
    _nowhere_under(mill.home, VALUE)


def test_a_job_sees_the_value_while_its_spec_and_logs_keep_the_reference(
    mill: MillHome,
) -> None:
    _set_from_stdin(mill, "db-password", VALUE)
    digest = hashlib.sha256(VALUE.encode()).hexdigest()
    # The command compares a hash, so the value appears nowhere but in the vault.
    name = mill.submit(
        "command: >-\n"
        f'  test "$(printf %s "$DB_PASSWORD" | sha256sum)" = "{digest}  -" && echo ok\n'
        "environment_variables:\n"
        '  DB_PASSWORD: "${{secrets.db-password}}"\n'
    )
    job = mill.wait_job(name)
    assert job["status"] == "Completed", job
    assert job["environment_variables"] == {"DB_PASSWORD": "${{secrets.db-password}}"}
    logs = mill.cli("job", "stream", "--name", name).stdout
    assert "ok" in logs and VALUE not in logs
    shown = mill.cli("job", "show", "--name", name, "-o", "yaml").stdout
    assert "${{secrets.db-password}}" in shown and VALUE not in shown
    _nowhere_under(mill.home, VALUE)


def test_an_unknown_secret_fails_the_submit_naming_variable_and_secret(mill: MillHome) -> None:
    job_dir = mill.home.parent / "job"
    job_dir.mkdir()
    (job_dir / "job.yml").write_text(
        'command: echo hi\nenvironment_variables:\n  TOKEN: "x-${{secrets.no-such}}"\n'
    )
    done = mill.cli("job", "create", "--file", str(job_dir / "job.yml"), check=False)
    assert done.returncode == 2, done.stderr
    assert "environment_variables.TOKEN" in done.stderr and "no-such" in done.stderr
    assert mill.json("job", "list") == []


def test_a_server_with_another_key_says_so(mill: MillHome) -> None:
    _set_from_stdin(mill, "db-password", VALUE)
    first_id = mill.json("secret", "show", "--name", "db-password")["key_id"]
    mill.stop()
    other_key = token_source.token_urlsafe(32)
    mill.cli("server", "start", "--port", "0", "-o", "json", MILL_VAULT_KEY=other_key)

    job_dir = mill.home.parent / "job"
    job_dir.mkdir()
    (job_dir / "job.yml").write_text(
        'command: echo hi\nenvironment_variables:\n  DB: "${{secrets.db-password}}"\n'
    )
    done = mill.cli("job", "create", "--file", str(job_dir / "job.yml"), check=False)
    assert done.returncode == 2, done.stderr
    assert "environment_variables.DB" in done.stderr and first_id in done.stderr
    assert VALUE not in done.stdout + done.stderr and other_key not in done.stderr

    # Setting it again seals it with the server's current key; jobs may use it again.
    replaced = mill.json("secret", "set", "--name", "db-password", "--value", VALUE + "2")
    assert replaced["key_id"] != first_id and replaced["version"] == 2
    name = mill.submit(  # and the server's own key never reaches a job
        'command: test -z "${MILL_VAULT_KEY:-}" && test -n "$DB" && echo clean\n'
        "environment_variables:\n"
        '  DB: "${{secrets.db-password}}"\n',
        folder="job2",
    )
    assert mill.wait_job(name)["status"] == "Completed"
    assert "clean" in mill.cli("job", "stream", "--name", name).stdout
    log = (mill.home / "logs" / "server.log").read_text()
    assert other_key not in log and VALUE not in log


def test_a_bad_mill_vault_key_is_reported_without_echoing_it(mill: MillHome) -> None:
    mill.stop()
    bad_key = "my-password-is-not-a-key"
    mill.cli("server", "start", "--port", "0", "-o", "json", MILL_VAULT_KEY=bad_key)
    done = mill.cli("secret", "set", "--name", "x", "--value", VALUE, check=False)
    assert done.returncode == 1
    assert "MILL_VAULT_KEY" in done.stderr and bad_key not in done.stderr
    assert VALUE not in done.stderr
