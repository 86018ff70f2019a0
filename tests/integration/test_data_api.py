"""Datastores, data assets and storage transfer through the REST API, on SQLite and PostgreSQL.

The app runs in-process (FastAPI TestClient); storage is real: local folders here, and a real
S3 server (moto) for the streamed-transfer test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.storage_servers import S3Server

from mill.server.app import create_app
from mill.services.context import Context

WS = "/api/v1/workspaces/default"


def _local_store(api: TestClient, tmp_path: Path, name: str = "lake") -> Path:
    root = tmp_path / name
    root.mkdir()
    created = api.post(f"{WS}/datastores", json={"name": name, "type": "local", "path": str(root)})
    assert created.status_code == 201, created.text
    return root


def test_local_datastore_and_a_data_asset_lifecycle(api: TestClient, tmp_path: Path) -> None:
    root = _local_store(api, tmp_path)
    (root / "raw").mkdir()
    (root / "raw" / "x.csv").write_text("a,b\n1,2\n")
    (root / "raw" / "y.csv").write_text("a,b\n3,4\n")
    names = [d["name"] for d in api.get(f"{WS}/datastores").json()]
    assert names == ["lake", "workspaceblobstore"]

    body = {"name": "raw", "type": "uri_folder", "path": "azureml://datastores/lake/paths/raw"}
    one = api.post(f"{WS}/data", json=body).json()
    two = api.post(f"{WS}/data", json=body).json()
    assert (one["version"], two["version"]) == ("1", "2")
    assert (one["file_count"], one["size_bytes"]) == (2, 16)
    assert api.get(f"{WS}/data/raw", params={"label": "latest"}).json()["version"] == "2"
    files = api.get(f"{WS}/data/raw/files", params={"version": "1"}).json()
    assert sorted(f["path"] for f in files["files"]) == ["x.csv", "y.csv"]

    # A file streamed up through the API lands on the datastore, and streams back.
    uri = "azureml://datastores/lake/paths/up/z.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    assert api.put(f"{WS}/storage/file", params={"uri": uri}, content=payload).status_code == 204
    assert (root / "up" / "z.bin").read_bytes() == payload
    assert api.get(f"{WS}/storage/file", params={"uri": uri}).content == payload

    # The default moves; workspaceblobstore itself and the default cannot be deleted.
    assert api.post(f"{WS}/datastores/lake/default").json()["is_default"] is True
    assert api.delete(f"{WS}/datastores/lake").status_code == 409
    assert api.delete(f"{WS}/datastores/workspaceblobstore").status_code == 409
    upload = api.post(f"{WS}/data/uploads", json={"filename": "/tmp/some/file.csv"}).json()
    assert upload["datastore"] == "lake" and upload["path"].endswith("/file.csv")


def test_data_and_datastore_bad_input_is_400_or_404(api: TestClient, tmp_path: Path) -> None:
    root = _local_store(api, tmp_path)
    (root / "f.txt").write_text("x")
    cases: list[tuple[str, str, dict[str, Any] | None, dict[str, str] | None, int, str]] = [
        ("POST", "/datastores", {"name": "x", "type": "ftp"}, None, 400, "one of"),
        ("POST", "/datastores", {"name": "x", "type": "s3"}, None, 400, "bucket"),
        (
            "POST",
            "/datastores",
            {"name": "bad name", "type": "local", "path": "/tmp"},
            None,
            400,
            "invalid datastore name",
        ),
        (
            "POST",
            "/datastores",
            {"name": "x", "type": "local", "path": "relative"},
            None,
            400,
            "absolute",
        ),
        (
            "POST",
            "/datastores",
            {"name": "x", "type": "azure_file", "account_name": "a"},
            None,
            400,
            "not supported",
        ),
        (
            "POST",
            "/datastores",
            {"name": "lake", "type": "local", "path": str(root)},
            None,
            409,
            "already exists",
        ),
        ("GET", "/datastores/nope", None, None, 404, "'nope' not found"),
        (
            "POST",
            "/data",
            {"name": "d", "path": "azureml://datastores/lake/paths/f.txt"},
            None,
            400,
            "is a file",
        ),
        (
            "POST",
            "/data",
            {"name": "d", "type": "uri_file", "path": "azureml://datastores/lake/paths/none"},
            None,
            400,
            "nothing found",
        ),
        (
            "POST",
            "/data",
            {
                "name": "d",
                "type": "uri_file",
                "path": "azureml://datastores/lake/paths/../../etc/passwd",
            },
            None,
            400,
            "..",
        ),
        (
            "POST",
            "/data",
            {"name": "d", "type": "uri_file", "path": "/etc/passwd"},
            None,
            400,
            "uploaded before",
        ),
        ("POST", "/data", {"name": "d", "type": "table", "path": "x"}, None, 400, "one of"),
        ("GET", "/data/none", None, None, 404, "no version"),
        ("GET", "/data/none", None, {"label": "prod"}, 400, "unknown label"),
        (
            "GET",
            "/storage/file",
            None,
            {"uri": "azureml://datastores/lake/paths/missing"},
            404,
            "no file at",
        ),
        ("PUT", "/storage/file", None, {"uri": "https://example.com/x"}, 400, "not on a datastore"),
        ("PUT", "/storage/file", None, {"uri": "azureml://datastores/lake/paths/../x"}, 400, ".."),
        ("GET", "/storage/files", None, {"uri": "/etc"}, 400, "not a storage URI"),
    ]
    for method, path, body, params, status, words in cases:
        response = api.request(method, WS + path, json=body, params=params)
        assert response.status_code == status, (path, body, params, response.text)
        assert words in response.json()["message"], (path, response.json())
    assert not (tmp_path / "x").exists()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(
        st.sampled_from(["name", "type", "path", "version", "credentials", "bucket", "tags"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=12),
            st.lists(st.text(max_size=4), max_size=2),
            st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
        ),
    )
)
def test_data_and_datastore_api_never_answer_500(api: TestClient, body: dict[str, Any]) -> None:
    for route in ("/datastores", "/data"):
        response = api.post(WS + route, json=body)
        assert response.status_code < 500, (route, body, response.text)


def test_transfer_streams_to_s3_and_back(api: TestClient, s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    spec = {
        "name": "s3lake",
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_server.endpoint_url,
        "credentials": {
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    }
    created = api.post(f"{WS}/datastores", json=spec)
    assert created.status_code == 201, created.text
    assert s3_server.secret_access_key not in created.text
    payload = os.urandom(20 * 1024 * 1024 + 3)  # several 8 MiB parts: a multipart upload
    uri = "azureml://datastores/s3lake/paths/big/blob.bin"

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    assert api.put(f"{WS}/storage/file", params={"uri": uri}, content=chunks()).status_code == 204
    stored = s3_server.client().get_object(Bucket=bucket, Key="big/blob.bin")["Body"].read()
    assert stored == payload
    assert api.get(f"{WS}/storage/file", params={"uri": uri}).content == payload
    # An s3:// URI of the same bucket is read with the datastore's credentials.
    listing = api.get(f"{WS}/storage/files", params={"uri": f"s3://{bucket}/big/"}).json()
    assert listing["files"] == [{"path": "blob.bin", "size": len(payload)}]


def _proof(tmp_path: Path) -> dict[str, str]:
    proof = "p" * 40
    path = tmp_path / "proof.txt"
    path.write_text(proof)
    return {"proof_path": str(path), "proof": proof}


def _events(response: Any) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_same_host_transfer_moves_files_itself_and_proves_the_disk(
    api: TestClient, ctx: Context, tmp_path: Path
) -> None:
    root = _local_store(api, tmp_path)
    source = tmp_path / "src"
    (source / "deep").mkdir(parents=True)
    (source / "deep" / "f.bin").write_bytes(os.urandom(100_000))
    uri = "azureml://datastores/lake/paths/moved"
    body = {"direction": "upload", "local_path": str(source), "uri": uri, **_proof(tmp_path)}
    events = _events(api.post(f"{WS}/storage/transfer", json=body))
    assert events[-1] == {"done": {"files": 1, "bytes": 100_000, "kind": "folder"}}
    assert (root / "moved/deep/f.bin").read_bytes() == (source / "deep/f.bin").read_bytes()

    back = {**body, "direction": "download", "local_path": str(tmp_path / "back")}
    assert "done" in _events(api.post(f"{WS}/storage/transfer", json=back))[-1]
    assert (tmp_path / "back/deep/f.bin").read_bytes() == (source / "deep/f.bin").read_bytes()

    # A caller whose proof the server cannot read is not on its disk: refused, nothing moved.
    wrong = {**body, "uri": uri + "2", "proof": "q" * 40}
    refused = api.post(f"{WS}/storage/transfer", json=wrong)
    assert refused.status_code == 401 and "stream them instead" in refused.json()["message"]
    assert not (root / "moved2").exists()
    # Errors inside the transfer come back as an event, with the usual envelope.
    missing = {**body, "local_path": str(tmp_path / "nope")}
    assert _events(api.post(f"{WS}/storage/transfer", json=missing))[-1]["error"]["code"] == "usage"


def test_same_host_transfer_is_off_for_a_server_bound_off_loopback(
    ctx: Context, tmp_path: Path
) -> None:
    public = Context(
        settings=ctx.settings.with_(host="0.0.0.0"), store=ctx.store, runner=ctx.runner
    )
    with TestClient(create_app(public, run_loops=False), client=("127.0.0.1", 50000)) as client:
        body = {"direction": "upload", "local_path": "/etc", "uri": "x", **_proof(tmp_path)}
        refused = client.post(f"{WS}/storage/transfer", json=body)
    assert refused.status_code == 401 and "loopback" in refused.json()["message"]


def test_an_https_file_is_kept_as_a_pointer(api: TestClient, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "iris.csv").write_text("a,b\n1,2\n")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "web")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/iris.csv"
        created = api.post(f"{WS}/data", json={"name": "web", "type": "uri_file", "path": url})
        assert created.status_code == 201, created.text
        assert (created.json()["path"], created.json()["size_bytes"]) == (url, 8)
        assert created.json()["source"] == {"kind": "pointer"}
        missing = api.post(
            f"{WS}/data", json={"name": "web", "type": "uri_file", "path": url + ".nope"}
        )
        assert missing.status_code in (400, 404, 502) and "iris.csv.nope" in missing.text
    finally:
        server.shutdown()


def test_a_large_same_host_upload_runs_in_a_child_process(
    api: TestClient, tmp_path: Path, s3_server: S3Server
) -> None:
    """Above CHILD_TRANSFER_BYTES the server hands the upload to a process of its own."""
    import hashlib

    from mill.services.datastores import CHILD_TRANSFER_BYTES

    bucket = s3_server.create_bucket()
    spec = {
        "name": "bigs3",
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_server.endpoint_url,
        "credentials": {
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    }
    assert api.post(f"{WS}/datastores", json=spec).status_code == 201
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "a.bin").write_bytes(os.urandom(CHILD_TRANSFER_BYTES // 2 + 1))
    (folder / "b.bin").write_bytes(os.urandom(CHILD_TRANSFER_BYTES // 2 + 1))
    body = {
        "direction": "upload",
        "local_path": str(folder),
        "uri": "azureml://datastores/bigs3/paths/big",
        **_proof(tmp_path),
    }
    events = _events(api.post(f"{WS}/storage/transfer", json=body))
    assert events[-1]["done"]["files"] == 2
    assert sum(e.get("bytes", 0) for e in events) == CHILD_TRANSFER_BYTES + 2
    for name in ("a.bin", "b.bin"):
        stored = s3_server.client().get_object(Bucket=bucket, Key=f"big/{name}")["Body"].read()
        assert (
            hashlib.sha256(stored).digest() == hashlib.sha256((folder / name).read_bytes()).digest()
        )
    # A failure inside the child comes back as the usual error, naming the datastore.
    spec2 = {**spec, "name": "gone", "bucket": "no-such-bucket-here"}
    assert api.post(f"{WS}/datastores", json=spec2, params={"check": "false"}).status_code == 201
    failed = _events(
        api.post(
            f"{WS}/storage/transfer",
            json={**body, "uri": "azureml://datastores/gone/paths/big"},
        )
    )
    assert "gone" in failed[-1]["error"]["message"]
    assert s3_server.secret_access_key not in json.dumps(failed)


def test_recreated_datastore_never_reuses_old_credentials(
    api: TestClient, s3_server: S3Server
) -> None:
    bucket = s3_server.create_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="x/f.txt", Body=b"hi")
    spec = {
        "name": "rot",
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_server.endpoint_url,
        "credentials": {
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    }
    uri = "azureml://datastores/rot/paths/x/f.txt"
    assert api.post(f"{WS}/datastores", json=spec).status_code == 201
    assert api.get(f"{WS}/storage/file", params={"uri": uri}).content == b"hi"
    assert api.delete(f"{WS}/datastores/rot").status_code == 204
    wrong = {**spec, "credentials": {**spec["credentials"], "secret_access_key": "not-the-key"}}
    assert api.post(f"{WS}/datastores", json=wrong, params={"check": "false"}).status_code == 201
    refused = api.get(f"{WS}/storage/file", params={"uri": uri})
    assert refused.status_code >= 400 and "rot" in refused.text
    assert "not-the-key" not in refused.text
