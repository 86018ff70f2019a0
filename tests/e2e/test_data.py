"""Data assets and datastores end to end: the real CLI, a real server, real storage servers.

Local datastores need nothing else; the S3 tests run against moto's server and the Azure
ones against Azurite (see tests/storage_servers.py), both real HTTP servers on loopback.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import MillHome
from tests.storage_servers import AzuriteServer, S3Server

CSV = "sepal_length,species\n5.1,setosa\n6.2,versicolor\n"

# A job that lists what it got: a file's text, or a folder's files (sorted) with sizes.
READER = textwrap.dedent(
    """\
    import os, sys
    path = sys.argv[1]
    if os.path.isdir(path):
        for root, _, files in sorted(os.walk(path)):
            for f in sorted(files):
                p = os.path.join(root, f)
                print("FILE", os.path.relpath(p, path), os.path.getsize(p))
    elif os.path.isfile(path):
        print("TEXT", open(path).read().replace(chr(10), "|"))
    else:  # mode: direct hands over the URI itself
        print("URI", path)
    """
)


def _folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "a.csv").write_text(CSV)
    (root / "nested").mkdir()
    (root / "nested" / "b.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    return root


def _reader_job(mill: MillHome, path: str, mode: str, type_: str = "uri_folder") -> dict[str, Any]:
    code = mill.home.parent / "reader"
    code.mkdir(exist_ok=True)
    (code / "read.py").write_text(READER)
    name = mill.submit(
        textwrap.dedent(
            f"""\
            command: python read.py ${{{{inputs.data}}}}
            code: ../reader
            inputs:
              data:
                type: {type_}
                path: {path}
                mode: {mode}
            """
        ),
        folder=f"job-{mode}",
    )
    job = mill.wait_job(name)
    assert job["status"] == "Completed", job
    log = mill.cli("job", "stream", "--name", name).stdout
    job["log"] = log
    return job


def test_local_data_asset_versions_labels_download_and_archive(
    mill: MillHome, tmp_path: Path
) -> None:
    csv = tmp_path / "iris.csv"
    csv.write_text(CSV)
    first = mill.json("data", "create", "--name", "iris", "--type", "uri_file", "--path", str(csv))
    assert first["version"] == "1"
    assert first["datastore"] == "workspaceblobstore"
    assert first["datastore_path"].startswith("LocalUpload/") and first["datastore_path"].endswith(
        "/iris.csv"
    )
    assert (first["size_bytes"], first["file_count"]) == (len(CSV), 1)
    assert first["source"]["kind"] == "local_upload"

    csv.write_text(CSV + "7.0,virginica\n")
    second = mill.json("data", "create", "--name", "iris", "--type", "uri_file", "--path", str(csv))
    assert second["version"] == "2"
    assert mill.json("data", "show", "--name", "iris", "--label", "latest")["version"] == "2"
    versions = [d["version"] for d in mill.json("data", "list", "--name", "iris")]
    assert versions == ["2", "1"]

    # Versions are immutable: the same version again is refused before anything uploads.
    again = mill.cli(
        "data",
        "create",
        "--name",
        "iris",
        "--version",
        "1",
        "--type",
        "uri_file",
        "--path",
        str(csv),
        check=False,
    )
    assert again.returncode == 1 and "already exists" in again.stderr

    mill.cli("data", "download", "--name", "iris", "--version", "1", "-p", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "iris" / "iris.csv").read_text() == CSV

    mill.cli("data", "archive", "--name", "iris", "--version", "2")
    assert mill.json("data", "show", "--name", "iris", "--label", "latest")["version"] == "1"
    mill.cli("data", "restore", "--name", "iris", "--version", "2")
    assert mill.json("data", "show", "--name", "iris", "--label", "latest")["version"] == "2"

    updated = mill.json(
        "data",
        "update",
        "--name",
        "iris",
        "--version",
        "1",
        "--description",
        "first cut",
        "--tags",
        "stage=raw",
    )
    assert (updated["description"], updated["tags"]) == ("first cut", {"stage": "raw"})


def test_folder_asset_from_yaml_feeds_jobs_by_reference_in_each_mode(
    mill: MillHome, tmp_path: Path
) -> None:
    _folder(tmp_path / "project" / "data")
    (tmp_path / "project" / "data.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\n"
        "name: samples\nversion: 3\ntype: uri_folder\npath: ./data\ndescription: two files\n"
    )
    created = mill.json("data", "create", "-f", str(tmp_path / "project" / "data.yml"))
    assert (created["version"], created["file_count"]) == ("3", 2)

    expected = ["FILE a.csv 47", "FILE nested/b.bin 1048576"]
    for mode in ("ro_mount", "download"):
        job = _reader_job(mill, "azureml:samples@latest", mode)
        assert [line for line in job["log"].splitlines() if line.startswith("FILE")] == expected
        # The label was pinned at submit: the job records the version it read.
        assert job["inputs"]["data"]["asset"] == "azureml:samples:3"
    direct = _reader_job(mill, "azureml:samples:3", "direct")
    assert "azureml://datastores/workspaceblobstore/paths/LocalUpload/" in direct["log"]


def test_mltable_asset_is_validated_and_reaches_the_job_as_a_folder(
    mill: MillHome, tmp_path: Path
) -> None:
    table = tmp_path / "table"
    table.mkdir()
    (table / "iris.csv").write_text(CSV)
    (table / "MLTable").write_text(
        "paths:\n  - file: ./iris.csv\ntransformations:\n"
        "  - read_delimited:\n      delimiter: ','\n      header: all_files_same_headers\n"
    )
    asset = mill.json("data", "create", "--name", "tbl", "--type", "mltable", "--path", str(table))
    job = _reader_job(mill, f"azureml:tbl:{asset['version']}", "ro_mount", type_="mltable")
    assert "FILE MLTable" in job["log"] and "FILE iris.csv 47" in job["log"]

    (table / "MLTable").write_text(
        "paths:\n  - file: ./iris.csv\ntransformations:\n  - read_excel\n"
    )
    bad = mill.cli(
        "data", "create", "--name", "tbl", "--type", "mltable", "--path", str(table), check=False
    )
    assert bad.returncode == 2
    assert "MLTable" in bad.stderr and "read_excel" in bad.stderr


def test_output_with_a_name_is_registered_as_a_data_asset(mill: MillHome) -> None:
    name = mill.submit(
        textwrap.dedent(
            """\
            command: mkdir -p ${{outputs.result}} && echo done > ${{outputs.result}}/r.txt
            outputs:
              result:
                type: uri_folder
                name: results
                version: "7"
            """
        )
    )
    assert mill.wait_job(name)["status"] == "Completed"
    asset = mill.json("data", "show", "--name", "results", "--version", "7")
    assert asset["source"] == {"kind": "job_output", "job": name, "output": "result"}
    assert asset["file_count"] == 1
    assert asset["path"].endswith(f"/azureml/{name}/result/")


def test_data_bad_input(mill: MillHome, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "folder")
    wrong_type = mill.cli(
        "data", "create", "--name", "x", "--type", "uri_file", "--path", str(folder), check=False
    )
    assert wrong_type.returncode == 2 and "uri_file needs a file" in wrong_type.stderr
    missing = mill.cli(
        "data",
        "create",
        "--name",
        "x",
        "--path",
        "azureml://datastores/workspaceblobstore/paths/no/such/folder",
        check=False,
    )
    assert missing.returncode == 2 and "nothing found at" in missing.stderr
    unknown_store = mill.cli(
        "data", "create", "--name", "x", "--path", "azureml://datastores/nope/paths/a", check=False
    )
    assert unknown_store.returncode == 2 and "datastore 'nope' not found" in unknown_store.stderr
    (tmp_path / "bad.yml").write_text("name: x\ntype: uri_table\npath: ./folder\n")
    bad_yaml = mill.cli("data", "create", "-f", str(tmp_path / "bad.yml"), check=False)
    assert bad_yaml.returncode == 2
    assert "bad.yml:2" in bad_yaml.stderr and "uri_table" in bad_yaml.stderr
    assert "Traceback" not in bad_yaml.stderr

    unknown_asset = mill.cli(
        "job", "create", "--file", str(_job_file(tmp_path, "azureml:nothing:1")), check=False
    )
    assert unknown_asset.returncode == 2
    assert "inputs.data.path" in unknown_asset.stderr and "nothing" in unknown_asset.stderr
    mill.cli(
        "data", "create", "--name", "one", "--type", "uri_file", "--path", str(folder / "a.csv")
    )
    mismatch = mill.cli(
        "job", "create", "--file", str(_job_file(tmp_path, "azureml:one@latest")), check=False
    )
    assert mismatch.returncode == 2 and "is a uri_file" in mismatch.stderr


def _job_file(tmp_path: Path, path: str) -> Path:
    job = tmp_path / f"job-{abs(hash(path))}.yml"
    job.write_text(
        f"command: ls ${{{{inputs.data}}}}\ninputs:\n  data:\n    type: uri_folder\n    path: {path}\n"
    )
    return job


# ----------------------------------------------------------------- remote datastores


def _datastore_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(textwrap.dedent(body))
    return path


def _s3_yaml(tmp_path: Path, s3: S3Server, bucket: str, secret: str | None = None) -> Path:
    return _datastore_file(
        tmp_path,
        "s3data",
        f"""\
        name: s3data
        type: s3
        bucket: {bucket}
        endpoint_url: {s3.endpoint_url}
        region: {s3.region}
        credentials:
          access_key_id: {s3.access_key_id}
          secret_access_key: {secret or s3.secret_access_key}
        """,
    )


def _all_output(mill: MillHome, *args: str) -> str:
    result = mill.cli(*args, check=False)
    return result.stdout + result.stderr


def test_s3_datastore_end_to_end(mill: MillHome, tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    created = mill.json("datastore", "create", "-f", str(_s3_yaml(tmp_path, s3_server, bucket)))
    assert created["credentials"]["type"] == "access_key"
    # The secret went to the vault; nothing the CLI prints carries it.
    for args in (
        ("datastore", "show", "--name", "s3data", "-o", "json"),
        ("datastore", "list", "-o", "yaml"),
        ("secret", "list", "-o", "json"),
    ):
        assert s3_server.secret_access_key not in _all_output(mill, *args)
    managed = {s["name"]: s for s in mill.json("secret", "list")}
    assert managed["datastore-s3data-secret_access_key"]["managed_by"] == "datastore:s3data"

    # Make S3 the default: a local folder asset is uploaded there.
    mill.cli("datastore", "update", "--name", "s3data", "--set-default")
    folder = _folder(tmp_path / "samples")
    asset = mill.json("data", "create", "--name", "s3samples", "--path", str(folder))
    assert asset["datastore"] == "s3data" and asset["file_count"] == 2
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys[0].startswith("LocalUpload/") and keys[0].endswith("/samples/a.csv")
    assert keys[1].endswith("/samples/nested/b.bin")

    expected = ["FILE a.csv 47", "FILE nested/b.bin 1048576"]
    for mode in ("ro_mount", "download"):
        job = _reader_job(mill, "azureml:s3samples:1", mode)
        assert [line for line in job["log"].splitlines() if line.startswith("FILE")] == expected
    direct = _reader_job(mill, "azureml:s3samples:1", "direct")
    assert "azureml://datastores/s3data/paths/LocalUpload/" in direct["log"]

    # A job writes an output to S3; it is uploaded when the job ends and registered.
    name = mill.submit(
        textwrap.dedent(
            """\
            command: echo written > ${{outputs.out}}/w.txt
            outputs:
              out:
                type: uri_folder
                path: azureml://datastores/s3data/paths/results/${{name}}/
                name: s3results
            """
        ),
        folder="writer",
    )
    assert mill.wait_job(name)["status"] == "Completed"
    body = s3_server.client().get_object(Bucket=bucket, Key=f"results/{name}/w.txt")["Body"]
    assert body.read() == b"written\n"
    assert mill.json("data", "show", "--name", "s3results", "--label", "latest")["file_count"] == 1
    # The output downloads like any other, from S3; an asset can point at it by job output.
    mill.cli(
        "job", "download", "--name", name, "--output-name", "out", "-p", str(tmp_path / "job-dl")
    )
    assert (tmp_path / "job-dl/named-outputs/out/w.txt").read_text() == "written\n"
    pointer = mill.json(
        "data", "create", "--name", "from-job", "--path", f"azureml://jobs/{name}/outputs/out"
    )
    assert pointer["path"] == f"azureml://datastores/s3data/paths/results/{name}/"
    assert pointer["source"] == {"kind": "job_output", "uri": f"azureml://jobs/{name}/outputs/out"}

    # A plain s3:// URI of the same bucket is read with the datastore's credentials.
    key = keys[0].rsplit("/", 2)[0]  # LocalUpload/<id>
    via_uri = _reader_job(mill, f"s3://{bucket}/{key}/samples/a.csv", "ro_mount", type_="uri_file")
    assert "TEXT sepal_length,species|5.1,setosa|6.2,versicolor|" in via_uri["log"]

    mill.cli("data", "download", "--name", "s3samples", "-p", str(tmp_path / "dl"))
    assert (tmp_path / "dl/s3samples/nested/b.bin").read_bytes() == (
        folder / "nested/b.bin"
    ).read_bytes()

    # The default cannot be deleted; another one can, and its secrets go with it.
    refused = mill.cli("datastore", "delete", "--name", "s3data", "--yes", check=False)
    assert refused.returncode == 1 and "default" in refused.stderr


def test_s3_datastore_bad_credentials_and_unreachable(
    mill: MillHome, tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.create_bucket()
    wrong = "WRONG" + s3_server.secret_access_key[5:]
    bad = mill.cli(
        "datastore", "create", "-f", str(_s3_yaml(tmp_path, s3_server, bucket, wrong)), check=False
    )
    assert bad.returncode != 0
    assert "s3data" in bad.stderr and wrong not in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
    # Nothing was kept: neither the datastore nor its secrets.
    assert "s3data" not in _all_output(mill, "datastore", "list", "-o", "json")
    assert "datastore-s3data" not in _all_output(mill, "secret", "list", "-o", "json")

    closed = _datastore_file(
        tmp_path,
        "closed",
        """\
        name: closed
        type: s3
        bucket: b
        endpoint_url: http://127.0.0.1:9
        credentials:
          access_key_id: a
          secret_access_key: very-secret-value
        """,
    )
    unreachable = mill.cli("datastore", "create", "-f", str(closed), check=False)
    assert unreachable.returncode != 0
    assert "closed" in unreachable.stderr and "very-secret-value" not in unreachable.stderr


def _azure_yaml(
    tmp_path: Path, az: AzuriteServer, kind: str, container: str, credentials: str
) -> Path:
    field = "container_name" if kind == "azure_blob" else "filesystem"
    return _datastore_file(
        tmp_path,
        f"{kind}-{container}",
        f"""\
        name: {kind}_store
        type: {kind}
        account_name: {az.account_name}
        {field}: {container}
        account_url: {az.account_url}
        credentials:
        {credentials}
        """,
    )


@pytest.mark.parametrize("kind", ["azure_blob", "azure_data_lake_gen2"])
def test_azure_datastores_end_to_end(
    mill: MillHome, tmp_path: Path, azurite: AzuriteServer, kind: str
) -> None:
    container = azurite.create_container()
    yaml_file = _azure_yaml(
        tmp_path, azurite, kind, container, f"  account_key: {azurite.account_key}"
    )
    mill.cli("datastore", "create", "-f", str(yaml_file))
    shown = _all_output(mill, "datastore", "show", "--name", f"{kind}_store", "-o", "json")
    assert azurite.account_key not in shown and '"account_key"' in shown

    folder = _folder(tmp_path / "upload")
    # Put files on the container by hand (as another tool would), then point an asset at them.
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    for relative in ("a.csv", "nested/b.bin"):
        service.get_blob_client(container, f"raw/{relative}").upload_blob(
            (folder / relative).read_bytes()
        )
    uri = f"azureml://datastores/{kind}_store/paths/raw/"
    asset = mill.json("data", "create", "--name", "azdata", "--path", uri)
    assert (asset["file_count"], asset["size_bytes"]) == (2, 47 + 1048576)
    assert asset["source"] == {"kind": "pointer"}

    # With the Azure store as the default, a local folder is uploaded there.
    mill.cli("datastore", "update", "--name", f"{kind}_store", "--set-default")
    uploaded = mill.json("data", "create", "--name", "azup", "--path", str(folder))
    assert uploaded["datastore"] == f"{kind}_store"
    blob_names = sorted(b.name for b in service.get_container_client(container).list_blobs())
    assert blob_names[:2] == [
        f"{uploaded['datastore_path'].rstrip('/')}/a.csv",
        f"{uploaded['datastore_path'].rstrip('/')}/nested/b.bin",
    ]
    expected = ["FILE a.csv 47", "FILE nested/b.bin 1048576"]
    for mode in ("ro_mount", "download"):
        job = _reader_job(mill, "azureml:azup@latest", mode)
        assert [line for line in job["log"].splitlines() if line.startswith("FILE")] == expected
    direct = _reader_job(mill, "azureml:azup@latest", "direct")
    assert f"URI azureml://datastores/{kind}_store/paths/LocalUpload/" in direct["log"]
    # The storage's own URI form reaches the same files with the datastore's credentials.
    native = (
        f"wasbs://{container}@{azurite.account_name}.blob.core.windows.net/raw/a.csv"
        if kind == "azure_blob"
        else f"abfss://{container}@{azurite.account_name}.dfs.core.windows.net/raw/a.csv"
    )
    via_uri = _reader_job(mill, native, "download", type_="uri_file")
    assert "TEXT sepal_length,species|5.1,setosa|6.2,versicolor|" in via_uri["log"]

    name = mill.submit(
        textwrap.dedent(
            f"""\
            command: echo out > ${{{{outputs.out}}}}
            outputs:
              out:
                type: uri_file
                mode: upload
                path: azureml://datastores/{kind}_store/paths/written/${{{{name}}}}/o.txt
            """
        ),
        folder="azwriter",
    )
    assert mill.wait_job(name)["status"] == "Completed"
    blob = service.get_blob_client(container, f"written/{name}/o.txt").download_blob().readall()
    assert blob == b"out\n"


def test_azure_blob_sas_token_and_wrong_key(
    mill: MillHome, tmp_path: Path, azurite: AzuriteServer
) -> None:
    container = azurite.create_container()
    sas = azurite.sas_token(container)
    mill.cli(
        "datastore",
        "create",
        "-f",
        str(_azure_yaml(tmp_path, azurite, "azure_blob", container, f"  sas_token: '{sas}'")),
    )
    listing = json.loads(mill.cli("datastore", "list", "-o", "json").stdout)
    assert {d["name"] for d in listing} >= {"azure_blob_store", "workspaceblobstore"}
    assert sas not in json.dumps(listing)
    # Deleting a datastore deletes the secrets it owns (its files stay).
    assert "datastore-azure_blob_store-sas_token" in _all_output(mill, "secret", "list")
    mill.cli("datastore", "delete", "--name", "azure_blob_store", "--yes")
    assert "azure_blob_store" not in _all_output(mill, "secret", "list", "-o", "json")
    assert "azure_blob_store" not in _all_output(mill, "datastore", "list", "-o", "json")

    other = azurite.create_container()
    wrong_key = azurite.account_key[:-8] + "AAAAAAA="
    bad = mill.cli(
        "datastore",
        "create",
        "-f",
        str(
            _azure_yaml(
                tmp_path, azurite, "azure_data_lake_gen2", other, f"  account_key: {wrong_key}"
            )
        ),
        check=False,
    )
    assert bad.returncode != 0 and "azure_data_lake_gen2_store" in bad.stderr
    assert wrong_key not in bad.stdout + bad.stderr


def test_streamed_transfers_when_the_server_does_not_share_our_disk(
    mill: MillHome, tmp_path: Path, s3_server: S3Server
) -> None:
    """MILL_TRANSFER=stream takes the path a remote client takes: every file over the API."""
    bucket = s3_server.create_bucket()
    mill.cli(
        "datastore", "create", "-f", str(_s3_yaml(tmp_path, s3_server, bucket)), "--set-default"
    )
    folder = _folder(tmp_path / "streamed")
    asset = mill.json(
        "data", "create", "--name", "streamed", "--path", str(folder), MILL_TRANSFER="stream"
    )
    assert (asset["datastore"], asset["file_count"]) == ("s3data", 2)
    mill.cli(
        "data", "download", "--name", "streamed", "-p", str(tmp_path / "dl"), MILL_TRANSFER="stream"
    )
    for relative in ("a.csv", "nested/b.bin"):
        got = (tmp_path / "dl/streamed" / relative).read_bytes()
        assert got == (folder / relative).read_bytes()
    single = mill.json(
        "data",
        "create",
        "--name",
        "one-file",
        "--type",
        "uri_file",
        "--path",
        str(folder / "a.csv"),
        MILL_TRANSFER="stream",
    )
    mill.cli(
        "data", "download", "--name", "one-file", "-p", str(tmp_path / "dl"), MILL_TRANSFER="stream"
    )
    assert (tmp_path / "dl/one-file/a.csv").read_text() == CSV
    assert single["path"].endswith("/a.csv")
