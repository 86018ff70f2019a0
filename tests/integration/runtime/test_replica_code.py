"""Code deployments in a real replica process: Azure's ``init()``/``run()`` contract."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.replica_client import ReplicaClient, start_replica

from mill.runtime.replica import INIT_FAILED

Start = Callable[..., ReplicaClient]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Start]:
    """``serve(score_py_text, files={...}, env={...})``: a ready replica for that script."""
    started: list[ReplicaClient] = []

    def start(script: str, files: dict[str, str] | None = None, **kwargs: object) -> ReplicaClient:
        code = tmp_path / "code"
        code.mkdir()
        (code / "score.py").write_text(textwrap.dedent(script))
        for name, text in (files or {}).items():
            (code / name).write_text(text)
        plan = {"kind": "code", "code_dir": str(code), "scoring_script": "score.py"}
        replica = start_replica(tmp_path, plan, **kwargs)  # type: ignore[arg-type]
        started.append(replica)
        replica.wait_ready()
        return replica

    yield start
    for replica in started:
        replica.stop()


PLAIN = """
    import json

    def init():
        pass

    def run(raw_data):
        data = json.loads(raw_data)
        kind = data["kind"]
        if kind == "list":
            return [1, 2, 3]
        if kind == "dict":
            return {"echo": data}
        if kind == "str":
            return "plain text"
        if kind == "bytes":
            return b"raw"
        raise RuntimeError("scoring blew up: " + kind)
"""


def test_run_return_values_become_json(serve: Start) -> None:
    replica = serve(PLAIN)
    listed = replica.post("/score", {"kind": "list"})
    assert (listed.status, listed.json()) == (200, [1, 2, 3])
    assert listed.headers["content-type"] == "application/json"
    assert replica.post("/score", {"kind": "dict"}).json() == {"echo": {"kind": "dict"}}
    # A returned str is sent as a JSON string, as Azure's inference server does.
    text = replica.post("/score", {"kind": "str"})
    assert (text.status, text.body) == (200, b'"plain text"')
    # bytes are not JSON: a 500 naming the type (return an AMLResponse for raw bytes).
    raw = replica.post("/score", {"kind": "bytes"})
    assert raw.status == 500 and "bytes" in raw.json()["error"]


def test_run_exception_is_a_500_with_the_traceback_in_the_log(serve: Start) -> None:
    replica = serve(PLAIN)
    answer = replica.post("/score", {"kind": "oops"})
    assert answer.status == 500
    assert answer.json()["error"] == "RuntimeError: scoring blew up: oops"
    log = replica.text()
    assert "Traceback" in log and 'raise RuntimeError("scoring blew up: " + kind)' in log
    # The replica keeps serving after a failed request.
    assert replica.post("/score", {"kind": "list"}).status == 200


def test_init_failure_exits_with_status_3_naming_the_error(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    raise ValueError('no model here')\n\ndef run(raw):\n    return 1\n"
    )
    plan = {"kind": "code", "code_dir": str(code), "scoring_script": "score.py"}
    replica = start_replica(tmp_path, plan, connect=False)
    try:
        assert replica.process.wait(timeout=60) == INIT_FAILED
        assert "ValueError: no model here" in replica.text()
    finally:
        replica.stop()


def test_init_reads_the_model_dir(serve: Start, tmp_path: Path) -> None:
    model_dir = tmp_path / "azureml-models"
    (model_dir / "model").mkdir(parents=True)
    (model_dir / "model" / "weights.txt").write_text("42")
    script = """
        import os

        def init():
            global weight
            path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model", "weights.txt")
            weight = int(open(path).read())

        def run(raw_data):
            return {"weight": weight}
    """
    replica = serve(script, env={"AZUREML_MODEL_DIR": str(model_dir)})
    assert replica.post("/score", "{}").json() == {"weight": 42}


SCHEMA = """
    import numpy as np
    import pandas as pd
    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import (
        StandardPythonParameterType,
    )

    def init():
        pass

    @input_schema("data", NumpyParameterType(np.array([[1.0, 2.0, 3.0]])))
    @input_schema("frame", PandasParameterType(pd.DataFrame({"a": [1], "b": ["x"]})))
    @input_schema("scale", StandardPythonParameterType(2.0))
    @output_schema(StandardPythonParameterType({"sums": [6.0], "rows": 1, "type": "ndarray"}))
    def run(data, frame, scale):
        return {
            "sums": (data.sum(axis=1) * scale).tolist(),
            "rows": len(frame),
            "type": type(data).__name__,
            "frame_type": type(frame).__name__,
        }
"""


def test_inference_schema_converts_each_key_and_serves_swagger(serve: Start) -> None:
    pytest.importorskip("inference_schema")
    replica = serve(SCHEMA)
    body = {"data": [[1, 2, 3], [4, 5, 6]], "frame": [{"a": 1, "b": "x"}], "scale": 10}
    answer = replica.post("/score", body)
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "sums": [60.0, 150.0],
        "rows": 1,
        "type": "ndarray",
        "frame_type": "DataFrame",
    }

    malformed = replica.post("/score", "{not json")
    assert malformed.status == 400 and "not valid JSON" in malformed.json()["error"]
    unknown = replica.post("/score", {**body, "extra": 1})
    assert unknown.status == 400 and "'extra'" in unknown.json()["error"]

    swagger = replica.get("/swagger.json")
    assert swagger.status == 200
    document = swagger.json()
    assert document["swagger"] == "2.0"
    service_input = document["definitions"]["ServiceInput"]
    assert set(service_input["properties"]) == {"data", "frame", "scale"}
    assert service_input["example"]["data"] == [[1.0, 2.0, 3.0]]
    assert "sums" in document["definitions"]["ServiceOutput"]["properties"]
    assert "/score" in document["paths"]
    openapi = replica.get("/swagger.json", query="version=3").json()
    assert openapi["openapi"].startswith("3.")
    assert "ServiceInput" in openapi["components"]["schemas"]
    assert replica.get("/swagger.json", query="version=9").status == 404


def test_a_swagger_file_in_the_code_folder_is_served(serve: Start) -> None:
    custom = {"swagger": "2.0", "info": {"title": "hand written", "version": "7"}}
    replica = serve(PLAIN, files={"swagger2.json": json.dumps(custom)})
    assert replica.get("/swagger.json").json() == custom
    # No swagger3.json: version 3 is generated (untyped, as run() has no schema).
    generated = replica.get("/swagger.json", query="version=3").json()
    assert generated["components"]["schemas"]["ServiceInput"] == {"type": "object", "example": {}}


RAW = """
    import json
    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse

    def init():
        pass

    @rawhttp
    def run(request):
        if request.method == "GET":
            return {"args": request.args.to_dict(), "path": request.full_path}
        if request.mimetype == "application/json":
            return {"json": request.get_json(), "agent": request.headers.get("X-Agent")}
        uploads = request.files.getlist("file")
        sizes = {f.filename: len(f.read()) for f in uploads}
        response = AMLResponse(json.dumps({"sizes": sizes, "note": request.form.get("note")}),
                               201)
        response.mimetype = "application/vnd.mill+json"
        response.headers["X-Files"] = str(len(uploads))
        return response
"""


def _multipart(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename:
            head += "Content-Type: application/octet-stream\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def test_rawhttp_gets_the_request_and_controls_the_response(serve: Start) -> None:
    replica = serve(RAW)
    jpeg = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"
    body = _multipart(
        "XyZzy42",
        [("file", "a.jpg", jpeg), ("file", "b.bin", b"\x00\x01"), ("note", None, b"hello")],
    )
    answer = replica.post(
        "/score", body, headers={"content-type": "multipart/form-data; boundary=XyZzy42"}
    )
    assert answer.status == 201, answer.body
    assert answer.headers["content-type"] == "application/vnd.mill+json"
    assert answer.headers["x-files"] == "2"
    assert answer.json() == {"sizes": {"a.jpg": len(jpeg), "b.bin": 2}, "note": "hello"}

    posted = replica.post("/score", {"x": [1]}, headers={"X-Agent": "tests"})
    assert posted.json() == {"json": {"x": [1]}, "agent": "tests"}
    got = replica.get("/score", query="a=1&b=two")
    assert got.json() == {"args": {"a": "1", "b": "two"}, "path": "/score?a=1&b=two"}
