"""Real storage servers on loopback for tests and benchmarks: Azurite (blob) and moto (S3).

Each is a subprocess on a free port, so clients talk real HTTP to a real server. Azurite
comes from npm (``tools/``, installed by ``scripts/setup dev``); moto's server from the
venv. :func:`start_azurite` / :func:`start_s3` raise :class:`ServerMissing` when the
program is not installed, so callers can skip with the reason.

moto is started with IAM authentication on (``INITIAL_NO_AUTH_ACTION_COUNT``): the first
requests create a user and its access key, after which a wrong key or secret is refused
like on AWS.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "tools" / "node_modules" / ".bin" / "azurite-blob"

# Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class ServerMissing(RuntimeError):
    """The server's program is not installed here."""


@dataclass
class AzuriteServer:
    account_url: str
    account_name: str = DEV_ACCOUNT
    account_key: str = DEV_KEY
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.account_url};"
        )

    def create_container(self, name: str | None = None, public: bool = False) -> str:
        """A new container (a fresh random name unless given); ``public``: anonymous reads."""
        from azure.storage.blob import BlobServiceClient

        name = name or f"c{uuid.uuid4().hex[:20]}"
        client = BlobServiceClient.from_connection_string(self.connection_string)
        client.create_container(name, public_access="container" if public else None)
        return name

    def sas_token(self, container: str, hours: float = 2.0) -> str:
        """A container SAS token with read, write, delete and list rights."""
        from datetime import datetime, timedelta, timezone

        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        return generate_container_sas(
            self.account_name,
            container,
            account_key=self.account_key,
            permission=ContainerSasPermissions(
                read=True, write=True, delete=True, list=True, add=True, create=True
            ),
            expiry=datetime.now(timezone.utc) + timedelta(hours=hours),
        )

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def client(self):  # type: ignore[no-untyped-def]  # boto3 client types are generated
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str | None = None, public: bool = False) -> str:
        """A new bucket (a fresh random name unless given)."""
        name = name or f"b{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        _stop(self.process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"server did not listen on port {port} within {timeout:.0f} s")


def start_azurite(location: Path | None = None) -> AzuriteServer:
    if not AZURITE_BIN.exists() or shutil.which("node") is None:
        raise ServerMissing(
            f"Azurite is not installed ({AZURITE_BIN}); run `scripts/setup dev` (needs node and npm)"
        )
    location = location or Path(tempfile.mkdtemp(prefix="mill-azurite-"))
    port = free_port()
    process = subprocess.Popen(
        [
            str(AZURITE_BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port, process)
    return AzuriteServer(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}", process=process)


def start_s3() -> S3Server:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise ServerMissing(
            f"moto's server is not installed ({exc}); pip install 'moto[server]'"
        ) from exc
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3", MOTO_ALLOW_NONEXISTENT_REGION="true")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    wait_for_port(port, process)
    endpoint = f"http://127.0.0.1:{port}"
    key_id, secret = _create_moto_user(endpoint)
    return S3Server(endpoint, key_id, secret, process=process)


def _create_moto_user(endpoint: str) -> tuple[str, str]:
    """Spend moto's three unauthenticated actions on a user with full S3 rights and its key."""
    import json

    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
        region_name="us-east-1",
    )
    iam.create_user(UserName="mill")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="mill", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="mill")["AccessKey"]
    return str(key["AccessKeyId"]), str(key["SecretAccessKey"])


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
