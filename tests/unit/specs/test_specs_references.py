"""Reference forms: datastore URIs, asset references, compute names, path kinds."""

from __future__ import annotations

import pytest

from mill.specs import (
    AssetReference,
    classify_path,
    normalize_compute,
    parse_asset_reference,
    parse_datastore_uri,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "azureml://datastores/workspaceblobstore/paths/example-data/titanic.csv",
            ("workspaceblobstore", "example-data/titanic.csv"),
        ),
        ("azureml://datastores/ws/paths/${{name}}/", ("ws", "${{name}}/")),
        ("azureml://datastores/ws/paths/", ("ws", "")),
        (
            "azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/ds/paths/a/b",
            ("ds", "a/b"),
        ),
        ("azureml://datastores/ws", None),
        ("azureml:my-data:1", None),
        ("https://example.com/x", None),
    ],
)
def test_parse_datastore_uri(uri: str, expected: tuple[str, str] | None) -> None:
    assert parse_datastore_uri(uri) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("azureml:my-model:1", AssetReference("my-model", version="1")),
        ("azureml:env:22.02-py3", AssetReference("env", version="22.02-py3")),
        ("azureml:heart-classifier@latest", AssetReference("heart-classifier", label="latest")),
        ("azureml:cpu-cluster", AssetReference("cpu-cluster")),
        (
            "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
            AssetReference("sklearn-1.5", label="latest", registry="azureml", kind="environments"),
        ),
        (
            "azureml://registries/azureml/models/Phi-3-mini-4k-instruct/versions/14",
            AssetReference(
                "Phi-3-mini-4k-instruct", version="14", registry="azureml", kind="models"
            ),
        ),
        (
            "azureml://registries/azureml/components/automl_hts_training",
            AssetReference("automl_hts_training", registry="azureml", kind="components"),
        ),
        ("azureml://datastores/ws/paths/x", None),
        ("azureml://jobs/abc/outputs/artifacts/paths/model", None),
        ("my-model:1", None),
        ("azureml:", None),
    ],
)
def test_parse_asset_reference(text: str, expected: AssetReference | None) -> None:
    assert parse_asset_reference(text) == expected
    if expected is not None:
        assert str(expected) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("azureml:cpu-cluster", "cpu-cluster"),
        ("cpu-cluster", "cpu-cluster"),
        ("azureml:serverless", "serverless"),
        ("serverless", "serverless"),
        (None, None),
    ],
)
def test_normalize_compute(value: str | None, expected: str | None) -> None:
    assert normalize_compute(value) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("./data", "local"),
        ("data/iris.csv", "local"),
        ("/abs/path", "local"),
        ("file:./data", "local"),
        ("file:///abs/data", "local"),
        ("azureml://datastores/ws/paths/x", "datastore"),
        ("azureml://jobs/j1/outputs/artifacts/paths/model", "job_output"),
        ("azureml:iris:1", "asset"),
        ("azureml://registries/azureml/models/m/versions/1", "asset"),
        ("https://example.com/iris.csv", "http"),
        ("http://example.com/iris.csv", "http"),
        ("wasbs://datasets@acct.blob.core.windows.net/iris.csv", "cloud"),
        ("abfss://fs@acct.dfs.core.windows.net/x", "cloud"),
        ("s3://bucket/key", "cloud"),
        ("gs://bucket/key", "cloud"),
    ],
)
def test_classify_path(value: str, kind: str) -> None:
    assert classify_path(value) == kind
