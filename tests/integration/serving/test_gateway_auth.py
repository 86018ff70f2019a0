"""Gateway authentication: keys, aml_token tokens, TLS, and the service routes."""

from __future__ import annotations

import ssl
import stat
import time
from pathlib import Path

import httpx
import pytest
from tests.integration.serving.gateway_harness import (
    AUTH,
    ReplicaProcess,
    endpoint,
    replicas,
    serving,
)

from mill.serving.credentials import (
    key_matches,
    mint_token,
    new_key,
    self_signed_certificate,
    verify_token,
)
from mill.serving.gateway import DeploymentRoute, Gateway


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with replicas(tmp_path_factory.mktemp("auth"), ("blue", "")) as started:
        yield started[0]


def test_key_auth(replica: ReplicaProcess) -> None:
    gateway = Gateway()
    blue = DeploymentRoute("blue", (replica.address,))
    gateway.set_endpoint(endpoint("e1", {"blue": blue}))
    with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
        url = "/endpoints/e1/score"
        missing = client.post(url, json={"a": 1})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "missing" in missing.json()["error"]
        wrong = client.post(url, json={"a": 1}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        not_bearer = client.post(url, json={}, headers={"Authorization": "primary-key"})
        assert not_bearer.status_code == 401
        primary = client.post(url, json={"a": 1}, headers=AUTH)
        assert primary.status_code == 200, primary.text
        assert primary.json()["echo"] == {"a": 1}
        assert primary.headers["azureml-model-deployment"] == "blue"
        assert primary.headers["x-request-id"]
        secondary = client.post(
            url, json={"a": 2}, headers={"Authorization": "Bearer secondary-key"}
        )
        assert secondary.status_code == 200
        assert secondary.json()["echo"] == {"a": 2}


def test_aml_token_auth(replica: ReplicaProcess) -> None:
    secret = b"s" * 32
    gateway = Gateway()
    blue = DeploymentRoute("blue", (replica.address,))
    gateway.set_endpoint(endpoint("tok", {"blue": blue}, auth_mode="aml_token", secret=secret))
    gateway.set_endpoint(endpoint("other", {"blue": blue}, auth_mode="aml_token", secret=secret))
    valid = mint_token(secret, "tok")
    assert valid["tokenType"] == "Bearer"
    assert valid["expiryTimeUtc"] > valid["refreshAfterTimeUtc"] > time.time()
    expired = mint_token(secret, "tok", lifetime_s=60, now=time.time() - 3600)
    wrong_endpoint = mint_token(secret, "other")
    payload, signature = valid["accessToken"].split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    with serving(gateway) as server, httpx.Client(base_url=server.url) as client:

        def status(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return client.post("/endpoints/tok/score", json={}, headers=headers).status_code

        assert status(valid["accessToken"]) == 200
        assert status(valid["accessToken"]) == 200  # the cached verification
        assert status(expired["accessToken"]) == 401
        assert status(wrong_endpoint["accessToken"]) == 401
        assert status(tampered) == 401
        assert status("primary-key") == 401  # keys do not open an aml_token endpoint


def test_token_and_key_functions() -> None:
    secret = b"k" * 32
    token = mint_token(secret, "e", lifetime_s=100, now=1000)["accessToken"]
    assert verify_token(secret, "e", token, now=1050)
    assert not verify_token(secret, "e", token, now=1100)
    assert not verify_token(secret, "f", token, now=1050)
    assert not verify_token(b"x" * 32, "e", token, now=1050)
    assert not verify_token(secret, "e", "garbage", now=1050)
    assert not verify_token(secret, "e", token + "x", now=1050)
    key = new_key()
    assert len(key) >= 43 and key != new_key()
    assert key_matches(key, ("other", key))
    assert not key_matches(key, ("other", ""))
    assert not key_matches("", ("", ""))


def test_tls_with_self_signed_certificate(replica: ReplicaProcess, tmp_path: Path) -> None:
    certfile, keyfile = self_signed_certificate(["127.0.0.1"], tmp_path / "tls")
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    again = self_signed_certificate(["127.0.0.1"], tmp_path / "tls")
    assert again == (certfile, keyfile)
    before = certfile.read_bytes()
    self_signed_certificate(["127.0.0.1"], tmp_path / "tls")
    assert certfile.read_bytes() == before  # reused, not regenerated
    gateway = Gateway()
    gateway.set_endpoint(endpoint("e1", {"blue": DeploymentRoute("blue", (replica.address,))}))
    with serving(gateway, certfile=str(certfile), keyfile=str(keyfile)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(
            base_url=server.url, verify=ssl.create_default_context(cafile=str(certfile))
        ) as client:
            response = client.post("/endpoints/e1/score", json={"tls": True}, headers=AUTH)
            assert response.status_code == 200
            assert response.json()["echo"] == {"tls": True}
        with httpx.Client(base_url=server.url) as client, pytest.raises(httpx.ConnectError):
            client.post("/endpoints/e1/score", json={}, headers=AUTH)  # untrusted certificate
    renamed = self_signed_certificate(["mill.example"], tmp_path / "tls")
    assert renamed == (certfile, keyfile) and certfile.read_bytes() != before  # new names


def test_service_routes_and_unknown_endpoint(replica: ReplicaProcess) -> None:
    gateway = Gateway(admin_token="admin")
    gateway.set_endpoint(endpoint("e1", {"blue": DeploymentRoute("blue", (replica.address,))}))
    with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/healthz").status_code == 200
        unknown = client.post("/endpoints/nope/score", json={}, headers=AUTH)
        assert unknown.status_code == 404
        assert "nope" in unknown.json()["error"]
        assert client.get("/elsewhere").status_code == 404
        assert client.get("/metrics").status_code == 401
        metrics = client.get("/metrics", headers={"Authorization": "Bearer admin"})
        assert metrics.status_code == 200
        assert "mill_gateway_requests_total" in metrics.text
