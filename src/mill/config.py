"""Settings: the only place that reads environment variables.

Nothing reads the environment at import time; callers build a :class:`Settings` with
:meth:`Settings.from_env` at the edge (CLI entry point, server start) and pass it on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Settings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7878
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class Settings:
    """Where Mill keeps its state and how the CLI finds the control plane."""

    home: Path
    database_url: str
    workspace: str = DEFAULT_WORKSPACE
    url: str | None = None  # MILL_URL: talk to this (remote) server instead of our own
    token: str | None = field(default=None, repr=False)  # MILL_TOKEN: the server's bearer token
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    envs_dir: Path | None = None  # MILL_ENVS_DIR: the built-environment cache (default home/envs)
    # MILL_VAULT_KEY: the vault's master key (default: home/vault.key); never in a repr.
    vault_key: str | None = field(default=None, repr=False)
    # MILL_TRACKING_ASYNC_COMMIT=1: PostgreSQL acknowledges metric writes before flushing its
    # WAL (faster single log_metric; a database crash can lose the last moment of points).
    tracking_async_commit: bool = False
    # MILL_TRANSFER=stream: data goes through the API even when the server shares our disk.
    same_host_transfers: bool = True
    # MILL_GATEWAY_PORT: the scoring gateway's port (default: the server's port + 1; 0 when
    # the server's is 0, i.e. any free port).
    gateway_port: int | None = None
    # MILL_GATEWAY_TLS_CERT / MILL_GATEWAY_TLS_KEY: serve the gateway over HTTPS with this
    # certificate; MILL_GATEWAY_TLS=1 without them makes (and keeps) a self-signed one.
    gateway_tls: bool = False
    gateway_tls_cert: Path | None = None
    gateway_tls_key: Path | None = None
    # MILL_GATEWAY_MAX_BODY_MB: the largest scoring request body (Azure's default: 100 MB).
    gateway_max_body_mb: int = 100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("MILL_HOME") or Path.home() / ".mill").expanduser().resolve()
        database_url = env.get("MILL_DATABASE_URL") or f"sqlite:///{home / 'mill.db'}"
        port_text = env.get("MILL_PORT")
        return cls(
            home=home,
            database_url=database_url,
            workspace=env.get("MILL_WORKSPACE") or DEFAULT_WORKSPACE,
            url=(env.get("MILL_URL") or None),
            token=(env.get("MILL_TOKEN") or None),
            port=int(port_text) if port_text and port_text.isdigit() else DEFAULT_PORT,
            envs_dir=Path(env["MILL_ENVS_DIR"]).expanduser().resolve()
            if env.get("MILL_ENVS_DIR")
            else None,
            vault_key=(env.get("MILL_VAULT_KEY") or None),
            tracking_async_commit=(env.get("MILL_TRACKING_ASYNC_COMMIT") or "").lower()
            in ("1", "true", "yes"),
            same_host_transfers=(env.get("MILL_TRANSFER") or "auto").lower() != "stream",
            gateway_port=_int(env.get("MILL_GATEWAY_PORT")),
            gateway_tls=(env.get("MILL_GATEWAY_TLS") or "").lower() in ("1", "true", "yes")
            or bool(env.get("MILL_GATEWAY_TLS_CERT")),
            gateway_tls_cert=_path(env.get("MILL_GATEWAY_TLS_CERT")),
            gateway_tls_key=_path(env.get("MILL_GATEWAY_TLS_KEY")),
            gateway_max_body_mb=_int(env.get("MILL_GATEWAY_MAX_BODY_MB")) or 100,
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    # Paths under the home folder -------------------------------------------------
    @property
    def server_file(self) -> Path:
        """Address, pid and identity of the server serving this home."""
        return self.home / "server.json"

    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def identity_file(self) -> Path:
        """A random id for this home, so a client never talks to another home's server."""
        return self.home / "home.json"

    @property
    def environments_root(self) -> Path:
        """Built environments, one folder per key; several homes may share one."""
        return self.envs_dir or self.home / "envs"

    def workspace_root(self, workspace: str) -> Path:
        return self.home / "workspaces" / workspace

    @property
    def endpoints_root(self) -> Path:
        """Replica plans, logs and staged model/code of online deployments."""
        return self.home / "endpoints"

    def gateway_port_for(self, server_port: int) -> int:
        if self.gateway_port is not None:
            return self.gateway_port
        return 0 if server_port == 0 else server_port + 1


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser().resolve() if text else None
