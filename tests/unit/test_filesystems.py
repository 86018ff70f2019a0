"""DatastoreFS without servers: path rules, native URIs, URI matching, redaction, local I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from mill.domain.entities import Datastore
from mill.errors import DatastoreError, UsageError
from mill.storage import datastores, filesystems
from mill.storage.filesystems import DatastoreFS, redact
from mill.storage.locations import anonymous_fs_for_uri, match_datastore

BLOB = {"account_name": "acct", "container_name": "box"}
GEN2 = {"account_name": "acct", "filesystem": "lake"}


def test_native_uri_forms(tmp_path: Path) -> None:
    assert DatastoreFS("b", "azure_blob", BLOB, None).native_uri("a/b.csv") == (
        "wasbs://box@acct.blob.core.windows.net/a/b.csv"
    )
    assert DatastoreFS(
        "b", "azure_blob", {**BLOB, "endpoint": "core.chinacloudapi.cn"}, None
    ).native_uri("") == ("wasbs://box@acct.blob.core.chinacloudapi.cn")
    assert DatastoreFS("g", "azure_data_lake_gen2", GEN2, None).native_uri("/x/".strip("/")) == (
        "abfss://lake@acct.dfs.core.windows.net/x"
    )
    assert DatastoreFS("s", "s3", {"bucket": "bk"}, None).native_uri("k/v") == "s3://bk/k/v"
    local = DatastoreFS("l", "local", {"path": str(tmp_path)}, None)
    assert local.native_uri("a/./b") == str(tmp_path.resolve() / "a" / "b")
    assert local.local_root() == tmp_path.resolve()
    assert DatastoreFS("s", "s3", {"bucket": "bk"}, None).local_root() is None


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "a/..", "/etc/passwd", "a\x00b", "C:/x"])
def test_bad_paths_are_refused_naming_the_datastore(bad: str, tmp_path: Path) -> None:
    for fs in (
        DatastoreFS("mine", "local", {"path": str(tmp_path)}, None),
        DatastoreFS("mine", "s3", {"bucket": "b"}, None),
    ):
        with pytest.raises(UsageError, match="datastore 'mine'") as info:
            fs.stat(bad)
        assert repr(bad)[1:-1][:3] in info.value.message


def test_local_symlink_escape_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path)
    fs = DatastoreFS("l", "local", {"path": str(root)}, None)
    with pytest.raises(UsageError, match="escapes"):
        fs.stat("out/x")


def test_config_and_type_are_validated() -> None:
    with pytest.raises(UsageError, match=r"'x'.*gcs"):
        DatastoreFS("x", "gcs", {}, None)
    with pytest.raises(UsageError, match="container_name"):
        DatastoreFS("x", "azure_blob", {"account_name": "a"}, None)


def test_local_round_trip_and_missing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    fs = DatastoreFS("l", "local", {"path": str(root)}, None)
    fs.check()
    (tmp_path / "src" / "d").mkdir(parents=True)
    (tmp_path / "src" / "d" / "f.txt").write_text("x")
    assert fs.put(tmp_path / "src", "in").file_count == 1
    assert list(fs.iter_files("in")) == [("d/f.txt", 1)]
    assert fs.stat("nope") == filesystems.MISSING
    with pytest.raises(DatastoreError, match="'nope' not found on datastore 'l'"):
        fs.get("nope", tmp_path / "o")
    with pytest.raises(DatastoreError, match="datastore 'gone'"):
        DatastoreFS("gone", "local", {"path": str(tmp_path / "nowhere")}, None).check()
    with pytest.raises(UsageError, match="root"):
        fs.delete("")


def test_local_path_wrapper_keeps_its_contract(tmp_path: Path) -> None:
    ds = Datastore(workspace="w", name="l", type="local", config={"path": str(tmp_path)})
    assert datastores.local_path(ds, "/a/b") == tmp_path.resolve() / "a" / "b"
    with pytest.raises(UsageError, match=r"must not contain '\.\.'"):
        datastores.local_path(ds, "../x")


def _ds(name: str, type: str, **config: str) -> Datastore:
    return Datastore(workspace="w", name=name, type=type, config=config)


STORES = [
    _ds("blob", "azure_blob", account_name="acct", container_name="box"),
    _ds("lake", "azure_data_lake_gen2", account_name="acct", filesystem="box"),
    _ds("other", "azure_blob", account_name="acct2", container_name="box"),
    _ds("bucket", "s3", bucket="bk"),
    _ds(
        "azurite",
        "azure_blob",
        account_name="devstoreaccount1",
        container_name="c1",
        account_url="http://127.0.0.1:10000/devstoreaccount1",
    ),
    _ds("home", "local", path="/tmp"),
]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("wasbs://box@acct.blob.core.windows.net/a/b.csv", ("blob", "a/b.csv")),
        ("wasb://box@acct.blob.core.windows.net/a/", ("blob", "a")),
        ("abfss://box@acct.dfs.core.windows.net/p/q", ("lake", "p/q")),
        ("abfs://box@acct.dfs.core.windows.net", ("lake", "")),
        ("https://acct.blob.core.windows.net/box/x%20y.csv", ("blob", "x y.csv")),
        ("https://acct2.blob.core.windows.net/box/z", ("other", "z")),
        ("s3://bk/k/v.parquet", ("bucket", "k/v.parquet")),
        ("http://127.0.0.1:10000/devstoreaccount1/c1/f.txt", ("azurite", "f.txt")),
        ("wasbs://box@acct.blob.core.chinacloudapi.cn/a", None),
        ("wasbs://nobox@acct.blob.core.windows.net/a", None),
        ("s3://elsewhere/a", None),
        ("https://example.com/data.csv", None),
    ],
)
def test_match_datastore(uri: str, expected: tuple[str, str] | None) -> None:
    assert match_datastore(uri, STORES) == expected


def test_gen2_uri_falls_back_to_a_blob_datastore_on_the_same_container() -> None:
    only_blob = [s for s in STORES if s.name == "blob"]
    assert match_datastore("abfss://box@acct.dfs.core.windows.net/p", only_blob) == ("blob", "p")


def test_anonymous_fs_for_uri() -> None:
    fs, rel = anonymous_fs_for_uri(
        "wasbs://datasets@azuremlexamples.blob.core.windows.net/iris.csv"
    )
    assert (fs.type, rel) == ("azure_blob", "iris.csv")
    assert fs.native_uri(rel) == "wasbs://datasets@azuremlexamples.blob.core.windows.net/iris.csv"
    fs, rel = anonymous_fs_for_uri(
        "https://azuremlexamples.blob.core.windows.net/datasets/iris.csv"
    )
    assert (fs.config["container_name"], rel) == ("datasets", "iris.csv")
    fs, rel = anonymous_fs_for_uri("s3://open-data/a/b")
    assert (fs.type, fs.config["bucket"], rel) == ("s3", "open-data", "a/b")
    with pytest.raises(UsageError, match="not a storage URI"):
        anonymous_fs_for_uri("https://example.com/x.csv")


def test_redact() -> None:
    key = "abc+def/ghi=="
    text = f"key {key} quoted abc%2Bdef%2Fghi%3D%3D plus abc%2Bdef%2Fghi%3D%3D"
    assert redact(text, [key]) == "key *** quoted *** plus ***"
    sas = "sv=2024-11-04&se=2026-12-01T00%3A00%3A00Z&sr=c&sp=rl&sig=AbCdEf0123456789%2B%3D"
    url = "http://h/c/b?sv=2024-11-04&sr=c&sig=AbCdEf0123456789%2B%3D&se=x"
    out = redact(f"GET {url} failed; token {sas}", [sas])
    assert "AbCdEf" not in out and "sig=***" in out and "***" in out
    assert redact("sig=leaked&x=1", []) == "sig=***&x=1"
    assert redact("nothing here", ["", "zzz"]) == "nothing here"


def test_public_names_are_exported() -> None:
    for name in filesystems.__all__:
        assert hasattr(filesystems, name)
