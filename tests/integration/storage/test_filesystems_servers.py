"""DatastoreFS against real servers: a local folder, Azurite (blob and gen2 through the blob
endpoint; account key, SAS, anonymous) and moto's S3 server (access keys)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.storage_servers import AzuriteServer, S3Server, free_port

from mill.errors import DatastoreError, UsageError
from mill.storage.filesystems import DatastoreFS

WRITABLE = ["local", "blob_key", "blob_sas", "gen2_key", "s3_keys"]


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> DatastoreFS:
    if kind == "local":
        root = tmp_path / "store"
        root.mkdir()
        return DatastoreFS("ds_local", "local", {"path": str(root)}, None)
    if kind == "s3_keys":
        s3: S3Server = request.getfixturevalue("s3_server")
        return DatastoreFS(
            "ds_s3",
            "s3",
            {"bucket": s3.create_bucket(), "endpoint_url": s3.endpoint_url, "region": s3.region},
            {"access_key_id": s3.access_key_id, "secret_access_key": s3.secret_access_key},
        )
    az: AzuriteServer = request.getfixturevalue("azurite")
    container = az.create_container()
    if kind == "gen2_key":
        config = {"account_name": az.account_name, "filesystem": container}
        return DatastoreFS(
            "ds_gen2",
            "azure_data_lake_gen2",
            {**config, "account_url": az.account_url},
            {"account_key": az.account_key},
        )
    config = {
        "account_name": az.account_name,
        "container_name": container,
        "account_url": az.account_url,
    }
    if kind == "blob_sas":
        return DatastoreFS("ds_sas", "azure_blob", config, {"sas_token": az.sas_token(container)})
    return DatastoreFS("ds_blob", "azure_blob", config, {"account_key": az.account_key})


@pytest.fixture(params=WRITABLE)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DatastoreFS:
    return _open(request.param, request, tmp_path)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"hello\n",
        "a/one.bin": os.urandom(70_000),
        "a/b/two.bin": os.urandom(3),
        "a/b/c/empty.dat": b"",
        "z/with space.csv": b"x,y\n1,2\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_file_round_trip_and_stat(store: DatastoreFS, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    data = os.urandom(300_001)
    src.write_bytes(data)
    done: list[int] = []

    stats = store.put(src, "files/in.bin", progress=done.append)

    assert (stats.kind, stats.size_bytes, stats.file_count) == ("file", len(data), 1)
    assert sum(done) == len(data)
    assert store.stat("files/in.bin") == stats
    folder = store.stat("files")
    assert (folder.kind, folder.size_bytes, folder.file_count) == ("folder", len(data), 1)
    got: list[int] = []
    back = store.get("files/in.bin", tmp_path / "out" / "back.bin", progress=got.append)
    assert (tmp_path / "out" / "back.bin").read_bytes() == data
    assert back.kind == "file" and sum(got) == len(data)
    with store.open_read("files/in.bin") as f:
        assert f.read() == data
    assert list(store.iter_files("files/in.bin")) == [("in.bin", len(data))]


def test_folder_round_trip(store: DatastoreFS, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    files = _make_folder(tmp_path / "src")

    stats = store.put(tmp_path / "src", "data/v1")

    assert stats.kind == "folder"
    assert stats.file_count == len(files)
    assert stats.size_bytes == sum(len(d) for d in files.values())
    assert sorted(store.iter_files("data/v1")) == sorted((n, len(d)) for n, d in files.items())
    assert sorted(store.iter_files("data")) == sorted((f"v1/{n}", len(d)) for n, d in files.items())
    back = store.get("data/v1", tmp_path / "back")
    assert back == stats
    assert _tree(tmp_path / "back") == files


def test_fingerprint_changes_after_a_write(store: DatastoreFS, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    _make_folder(tmp_path / "src")
    before = store.put(tmp_path / "src", "fp")
    assert store.stat("fp").fingerprint == before.fingerprint
    time.sleep(1.1)  # local mtimes and blob Last-Modified have one-second resolution at worst
    with store.open_write("fp/top.txt") as f:
        f.write(b"changed")
    after = store.stat("fp")
    assert after.fingerprint != before.fingerprint
    assert after.file_count == before.file_count


def test_open_write_streams_a_multi_chunk_file(store: DatastoreFS, tmp_path: Path) -> None:
    block = os.urandom(1 << 20)
    with store.open_write("big/stream.bin") as f:
        for i in range(20):  # 20 MiB: several 8 MiB parts / blocks
            f.write(bytes([i]) + block[1:])
    stats = store.stat("big/stream.bin")
    assert stats.size_bytes == 20 << 20
    store.get("big/stream.bin", tmp_path / "stream.bin")
    with open(tmp_path / "stream.bin", "rb") as back:
        for i in range(20):
            assert back.read(1 << 20) == bytes([i]) + block[1:]


def test_check_missing_delete_and_dotdot(store: DatastoreFS, tmp_path: Path) -> None:
    store.check()
    assert store.stat("no/such/thing").kind == "missing"
    with pytest.raises(DatastoreError, match=f"not found on datastore '{store.name}'"):
        store.get("no/such/thing", tmp_path / "x")
    with pytest.raises(DatastoreError, match="no/such/thing"):
        store.open_read("no/such/thing").read()
    with pytest.raises(UsageError, match=r"\.\."):
        store.stat("a/../../etc")
    (tmp_path / "f").write_bytes(b"1")
    store.put(tmp_path / "f", "gone/f")
    store.delete("gone")
    assert store.stat("gone").kind == "missing"
    store.delete("gone")  # a missing path is not an error


def test_anonymous_public_container_reads(azurite: AzuriteServer, tmp_path: Path) -> None:
    container = azurite.create_container(public=True)
    config = {
        "account_name": azurite.account_name,
        "container_name": container,
        "account_url": azurite.account_url,
    }
    writer = DatastoreFS("pub_w", "azure_blob", config, {"account_key": azurite.account_key})
    (tmp_path / "src").mkdir()
    files = _make_folder(tmp_path / "src")
    writer.put(tmp_path / "src", "d")

    public = DatastoreFS("pub", "azure_blob", config, None)
    public.check()
    assert public.stat("d").file_count == len(files)
    public.get("d", tmp_path / "back")
    assert _tree(tmp_path / "back") == files
    with pytest.raises(DatastoreError, match="datastore 'pub'"):
        public.put(tmp_path / "src" / "top.txt", "d/new.txt")


def _assert_refused(fs: DatastoreFS, secret: str) -> None:
    with pytest.raises(DatastoreError) as info:
        fs.check()
    text = str(info.value) + str(info.value.hint) + str(info.value.details)
    assert f"datastore {fs.name!r}" in text and "refused" in text
    for i in range(0, len(secret) - 5):
        assert secret[i : i + 6] not in text


def test_wrong_credentials_are_refused_without_echoing_them(
    azurite: AzuriteServer, s3_server: S3Server
) -> None:
    container = azurite.create_container()
    config = {
        "account_name": azurite.account_name,
        "container_name": container,
        "account_url": azurite.account_url,
    }
    wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    _assert_refused(
        DatastoreFS("bad_key", "azure_blob", config, {"account_key": wrong_key}), wrong_key
    )
    other = azurite.create_container()
    sas_for_other = azurite.sas_token(other)
    _assert_refused(
        DatastoreFS("bad_sas", "azure_blob", config, {"sas_token": sas_for_other}), sas_for_other
    )
    bucket = s3_server.create_bucket()
    wrong_secret = "wRoNgSeCrEtwRoNgSeCrEtwRoNgSeCrEt12345678"
    _assert_refused(
        DatastoreFS(
            "bad_s3",
            "s3",
            {"bucket": bucket, "endpoint_url": s3_server.endpoint_url},
            {"access_key_id": s3_server.access_key_id, "secret_access_key": wrong_secret},
        ),
        wrong_secret,
    )


@pytest.mark.parametrize("kind", ["azure_blob", "s3"])
def test_unreachable_endpoint_fails_quickly(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    if kind == "s3":
        fs = DatastoreFS(
            "gone_s3",
            "s3",
            {"bucket": "b", "endpoint_url": url},
            {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secretsecret"},
        )
    else:
        fs = DatastoreFS(
            "gone_blob",
            "azure_blob",
            {"account_name": "acct", "container_name": "c", "account_url": f"{url}/acct"},
            {"account_key": "c2VjcmV0c2VjcmV0"},
        )
    started = time.monotonic()
    with pytest.raises(DatastoreError, match=f"cannot reach {url}.*datastore '{fs.name}'") as info:
        fs.check()
    assert time.monotonic() - started < 15
    assert "secretsecret" not in str(info.value) and "c2VjcmV0c2VjcmV0" not in str(info.value)


def test_missing_container_or_bucket(
    azurite: AzuriteServer, s3_server: S3Server, tmp_path: Path
) -> None:
    blob = DatastoreFS(
        "nobox",
        "azure_blob",
        {
            "account_name": azurite.account_name,
            "container_name": "never-created",
            "account_url": azurite.account_url,
        },
        {"account_key": azurite.account_key},
    )
    s3 = DatastoreFS(
        "nobucket",
        "s3",
        {"bucket": "never-created", "endpoint_url": s3_server.endpoint_url},
        {
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    )
    for fs in (blob, s3):
        with pytest.raises(DatastoreError, match=f"datastore '{fs.name}'"):
            fs.check()
    (tmp_path / "f").write_bytes(b"1")
    with pytest.raises(DatastoreError, match="not found"):
        blob.put(tmp_path / "f", "x/f")


def test_progress_counts_every_byte_of_a_folder(store: DatastoreFS, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    files = _make_folder(tmp_path / "src")
    seen: list[int] = []
    record: Callable[[int], None] = seen.append
    store.put(tmp_path / "src", "p", progress=record)
    assert sum(seen) == sum(len(d) for d in files.values())
    seen.clear()
    store.get("p", tmp_path / "back", progress=record)
    assert sum(seen) == sum(len(d) for d in files.values())
