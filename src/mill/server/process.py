"""Running the control plane: in the foreground, in the background, and finding it again.

The running server records its address, pid and this home's id in ``<home>/server.json``
and holds an exclusive lock on ``<home>/server.lock`` for its whole life, so one home
has at most one server and a client of one home never talks to another home's server.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

from mill.compute.processes import has_proc, read_stat
from mill.config import Settings
from mill.errors import ConflictError, ServerUnavailableError, UsageError

__all__ = [
    "find_running",
    "home_id",
    "is_loopback",
    "read_server_file",
    "serve",
    "start_background",
    "stop",
    "wait_healthy",
]

log = logging.getLogger("mill.server")

_START_TIMEOUT_SECONDS = 60.0


def home_id(settings: Settings) -> str:
    """This home's random id, created on first use."""
    path = settings.identity_file
    try:
        return str(json.loads(path.read_text())["id"])
    except (OSError, ValueError, KeyError):
        settings.home.mkdir(parents=True, exist_ok=True)
        value = uuid.uuid4().hex
        _write_json(path, {"id": value})
        return str(json.loads(path.read_text())["id"])


def read_server_file(settings: Settings) -> dict[str, Any] | None:
    try:
        data = json.loads(settings.server_file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    settings: Settings, host: str, port: int, token: str | None, *, to_file: bool = False
) -> None:
    """Run the control plane in this process until SIGTERM/SIGINT."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"refusing to listen on {host}: a non-loopback address needs a token",
            hint="set MILL_TOKEN or pass --token; clients then send the same token",
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    lock = _lock(settings)
    try:
        _configure_logging(settings, to_file)
        sock = _bind(host, port)
        actual_port = sock.getsockname()[1]
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        url = f"http://{_bracket(url_host)}:{actual_port}"
        _run(settings, sock, url, host, actual_port, token, requested_port=port)
    finally:
        lock.close()


def _run(
    settings: Settings,
    sock: socket.socket,
    url: str,
    host: str,
    port: int,
    token: str | None,
    *,
    requested_port: int,
) -> None:
    import uvicorn

    from mill.compute.local import LocalRunner
    from mill.server.app import create_app
    from mill.services.context import Context
    from mill.store import SqlStore

    ident = home_id(settings)
    ctx = Context(
        settings=settings.with_(host=host),  # the address it is bound to, for the routes
        store=SqlStore(settings.database_url),
        runner=LocalRunner(),
        server_url=url,
    )
    app = create_app(
        ctx, token=token, home_id=ident, server_port=requested_port, freeze_startup_heap=True
    )
    info = {
        "url": url,
        "pid": os.getpid(),
        "host": host,
        "port": port,
        "home_id": ident,
        "token_required": bool(token),
        "started_at": time.time(),
    }
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    _write_json(settings.server_file, info)
    settings.pid_file.write_text(f"{os.getpid()}\n")
    log.info("Mill control plane listening on %s (home %s)", url, settings.home)
    try:
        server.run(sockets=[sock])
    finally:
        for path in (settings.server_file, settings.pid_file):
            try:
                if (
                    path == settings.server_file
                    and (read_server_file(settings) or {}).get("pid") != os.getpid()
                ):
                    continue
                path.unlink()
            except OSError:
                pass
        ctx.store.dispose()


def start_background(
    settings: Settings, host: str, port: int, token: str | None = None
) -> dict[str, Any]:
    """Start ``mill server run`` detached and wait until it answers; return its server.json."""
    running = find_running(settings)
    if running:
        raise ConflictError(
            f"a Mill server for {settings.home} is already running at {running['url']} "
            f"(pid {running['pid']})"
        )
    if not is_loopback(host) and not token:
        raise UsageError(
            f"refusing to listen on {host}: a non-loopback address needs a token",
            hint="set MILL_TOKEN or pass --token",
        )
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MILL_HOME=str(settings.home), MILL_DATABASE_URL=settings.database_url)
    if settings.envs_dir is not None:
        env["MILL_ENVS_DIR"] = str(settings.envs_dir)
    env.pop("MILL_URL", None)
    if token:
        env["MILL_TOKEN"] = token  # through the environment, never the command line
    else:
        env.pop("MILL_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "mill",
        "server",
        "run",
        "--host",
        host,
        "--port",
        str(port),
        "--log-to-file",
    ]
    with settings.server_log.open("ab") as log_file:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ServerUnavailableError(
                f"the Mill server exited during start-up (code {child.returncode})",
                hint=f"see {settings.server_log}:\n" + _tail(settings.server_log),
            )
        info = read_server_file(settings)
        if info and info.get("pid") == child.pid and wait_healthy(info["url"], settings, 0.2):
            return info
        time.sleep(0.05)
    child.terminate()
    raise ServerUnavailableError(
        f"the Mill server did not answer within {_START_TIMEOUT_SECONDS:.0f} s",
        hint=f"see {settings.server_log}",
    )


def find_running(settings: Settings) -> dict[str, Any] | None:
    """This home's server, if one is running and answers as this home."""
    info = read_server_file(settings)
    if not info or not _pid_alive(int(info.get("pid", 0))):
        return None
    if not wait_healthy(str(info.get("url")), settings, 2.0):
        return None
    return info


def wait_healthy(url: str, settings: Settings, timeout: float) -> bool:
    """True when ``url`` answers /healthz as the server of this very home."""
    import httpx

    try:
        response = httpx.get(f"{url}/healthz", timeout=timeout)
        return bool(
            response.status_code == 200 and response.json().get("home_id") == home_id(settings)
        )
    except (httpx.HTTPError, ValueError):
        return False


def stop(settings: Settings, timeout: float = 15.0) -> dict[str, Any] | None:
    """Stop this home's server; its jobs keep running and are re-adopted on the next start."""
    info = read_server_file(settings)
    pid = int(info.get("pid", 0)) if info else _pid_from_file(settings)
    if not pid or not _pid_alive(pid):
        for path in (settings.server_file, settings.pid_file):
            path.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return info or {"pid": pid}


def _lock(settings: Settings) -> IO[str]:
    handle = (settings.home / "server.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        info = read_server_file(settings) or {}
        raise ConflictError(
            f"a Mill server for {settings.home} is already running"
            + (f" at {info['url']} (pid {info.get('pid')})" if info.get("url") else ""),
            hint="stop it with: mill server stop",
        ) from exc
    return handle


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConflictError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="another program uses that port; pick another with --port (0: any free one)",
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _configure_logging(settings: Settings, to_file: bool) -> None:
    handler: logging.Handler
    if to_file:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(settings.server_log)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if has_proc():
        stat = read_stat(pid)
        return stat is not None and stat.state not in ("Z", "X")  # a zombie is not alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_from_file(settings: Settings) -> int:
    try:
        return int(settings.pid_file.read_text().strip())
    except (OSError, ValueError):
        return 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
