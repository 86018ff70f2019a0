"""Online endpoints end to end: a real server, its gateway, replica processes, the CLI."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.harness import MillHome

# A stdlib-only environment: a virtualenv with nothing in it builds in about a second.
_ENV = "environment:\n  conda_file:\n    dependencies: [python=3.11, pip]\n"

_SCORE = """\
import json, os, time

def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "factor.json")) as f:
        factor = json.load(f)["factor"]
    print("init done, factor", factor, flush=True)

def run(raw_data):
    data = json.loads(raw_data)
    if data.get("fail"):
        raise ValueError("asked to fail")
    if data.get("sleep"):
        time.sleep(data["sleep"])
    return {"result": [x * factor for x in data["data"]], "version": os.environ.get("VERSION")}
"""


def _project(root: Path, factor: int = 2, version: str = "1", score: str = _SCORE) -> Path:
    (root / "code").mkdir(parents=True, exist_ok=True)
    (root / "code" / "score.py").write_text(score)
    (root / "factor.json").write_text(json.dumps({"factor": factor}))
    return root


def _deployment(root: Path, name: str, endpoint: str, **extra: str) -> Path:
    lines = [
        f"name: {name}",
        f"endpoint_name: {endpoint}",
        "model:\n  path: factor.json",
        "code_configuration:\n  code: code\n  scoring_script: score.py",
        _ENV.rstrip(),
        "instance_type: Standard_DS3_v2",
        f"instance_count: {extra.pop('instance_count', '1')}",
        f"environment_variables:\n  VERSION: '{extra.pop('version', '1')}'",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path = root / f"{name}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _endpoint(mill: MillHome, name: str, auth_mode: str = "key") -> dict[str, Any]:
    path = mill.home.parent / f"{name}-endpoint.yml"
    path.write_text(f"name: {name}\nauth_mode: {auth_mode}\n")
    created: dict[str, Any] = mill.json("online-endpoint", "create", "--file", str(path))
    return created


def _keys(mill: MillHome, name: str) -> dict[str, Any]:
    result: dict[str, Any] = mill.json("online-endpoint", "get-credentials", "--name", name)
    return result


def _score(uri: str, key: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        uri, json=body, headers={"Authorization": f"Bearer {key}", **headers}, timeout=30
    )


def test_code_deployment_serves_behind_key_auth(mill: MillHome, tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    endpoint = _endpoint(mill, "iris-e2e")
    assert endpoint["auth_mode"] == "key"
    assert endpoint["scoring_uri"].endswith("/endpoints/iris-e2e/score")
    shown = mill.json(
        "online-deployment",
        "create",
        "--file",
        str(_deployment(project, "blue", "iris-e2e")),
        "--all-traffic",
        timeout=300,
    )
    assert shown["provisioning_state"] == "Succeeded", shown
    assert shown["kind"] == "code"
    assert [r["state"] for r in shown["replicas"]] == ["ready"]

    request = tmp_path / "request.json"
    request.write_text(json.dumps({"data": [1, 2, 3]}))
    out = mill.cli(
        "online-endpoint", "invoke", "--name", "iris-e2e", "--request-file", str(request)
    )
    assert json.loads(out.stdout) == {"result": [2, 4, 6], "version": "1"}

    uri = mill.json("online-endpoint", "show", "--name", "iris-e2e")["scoring_uri"]
    keys = _keys(mill, "iris-e2e")
    assert set(keys) == {"primaryKey", "secondaryKey"}
    assert _score(uri, keys["primaryKey"], {"data": [1]}).json()["result"] == [2]
    assert _score(uri, keys["secondaryKey"], {"data": [1]}).status_code == 200
    assert _score(uri, "wrong", {"data": [1]}).status_code == 401
    assert httpx.post(uri, json={"data": [1]}).status_code == 401

    # run() raising: 500 with the message; the traceback is in the logs.
    failed = _score(uri, keys["primaryKey"], {"data": [1], "fail": True})
    assert failed.status_code == 500 and "asked to fail" in failed.text
    logs = mill.cli(
        "online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "iris-e2e"
    ).stdout
    assert "init done, factor 2" in logs and "ValueError: asked to fail" in logs

    # Rotating the primary key: the old one stops working, the secondary goes on.
    mill.cli("online-endpoint", "regenerate-keys", "--name", "iris-e2e", "--key-type", "primary")
    fresh = _keys(mill, "iris-e2e")
    assert fresh["primaryKey"] != keys["primaryKey"]
    assert fresh["secondaryKey"] == keys["secondaryKey"]
    assert _score(uri, keys["primaryKey"], {"data": [1]}).status_code == 401
    assert _score(uri, fresh["primaryKey"], {"data": [1]}).status_code == 200

    summary = mill.json("online-endpoint", "show", "--name", "iris-e2e")["traffic_summary"]
    assert "blue" in json.dumps(summary)
    metrics = httpx.get(uri.split("/endpoints/")[0] + "/metrics").text
    assert 'endpoint="iris-e2e"' in metrics

    # Keys never show up in the server's or the replica's logs.
    logs_text = "".join(p.read_text(errors="replace") for p in mill.home.rglob("*.log"))
    assert fresh["primaryKey"] not in logs_text and keys["secondaryKey"] not in logs_text


def test_traffic_split_pin_mirror_and_rollout_without_failures(
    mill: MillHome, tmp_path: Path
) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "split")
    for name, version in (("blue", "1"), ("green", "2")):
        mill.cli(
            "online-deployment",
            "create",
            "--file",
            str(_deployment(project, name, "split", version=version)),
            timeout=300,
        )
    uri = mill.json("online-endpoint", "show", "--name", "split")["scoring_uri"]
    key = _keys(mill, "split")["primaryKey"]
    # No traffic yet: a clear 503, but a pinned deployment answers.
    assert _score(uri, key, {"data": [1]}).status_code == 503
    pinned = _score(uri, key, {"data": [1]}, **{"azureml-model-deployment": "green"})
    assert pinned.json()["version"] == "2"
    unknown = _score(uri, key, {"data": [1]}, **{"azureml-model-deployment": "purple"})
    assert unknown.status_code == 404 and "blue" in unknown.text and "green" in unknown.text

    bad = mill.cli(
        "online-endpoint", "update", "--name", "split", "--traffic", "nope=100", check=False
    )
    assert bad.returncode != 0 and "nope" in bad.stderr and "Traceback" not in bad.stderr

    mill.cli("online-endpoint", "update", "--name", "split", "--traffic", "blue=50 green=50")
    seen = Counter(
        _score(uri, key, {"data": [1]}).headers["azureml-model-deployment"] for _ in range(200)
    )
    assert 60 <= seen["blue"] <= 140 and seen["blue"] + seen["green"] == 200, seen

    # A deployment that takes traffic cannot be deleted.
    refused = mill.cli(
        "online-deployment", "delete", "-n", "green", "-e", "split", "--yes", check=False
    )
    assert refused.returncode != 0 and "traffic" in refused.stderr

    # Roll blue forward (factor 3) under a steady stream of requests: nothing fails.
    mill.cli("online-endpoint", "update", "--name", "split", "--traffic", "blue=100")
    failures: list[str] = []
    versions: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(
                    uri, json={"data": [1]}, headers={"Authorization": f"Bearer {key}"}
                )
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                else:
                    versions[str(answer.json()["version"])] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        updated = mill.json(
            "online-deployment",
            "update",
            "--file",
            str(_deployment(project, "blue", "split", version="3")),
            timeout=300,
        )
        assert updated["provisioning_state"] == "Succeeded" and updated["generation"] == 2
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:5]
    assert versions["1"] > 0 and versions["3"] > 0, versions


def test_init_failure_marks_the_deployment_failed_and_the_endpoint_serves_on(
    mill: MillHome, tmp_path: Path
) -> None:
    good = _project(tmp_path / "good")
    _endpoint(mill, "resilient")
    mill.cli(
        "online-deployment",
        "create",
        "--file",
        str(_deployment(good, "blue", "resilient")),
        "--all-traffic",
        timeout=300,
    )
    broken = _project(
        tmp_path / "broken",
        score="def init():\n    raise RuntimeError('no model here')\n\n"
        "def run(raw):\n    return raw\n",
    )
    result = mill.cli(
        "online-deployment",
        "create",
        "--file",
        str(_deployment(broken, "green", "resilient")),
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "RuntimeError: no model here" in result.stderr
    shown = mill.json("online-deployment", "show", "-n", "green", "-e", "resilient")
    assert shown["provisioning_state"] == "Failed" and "no model here" in shown["error"]
    uri = mill.json("online-endpoint", "show", "--name", "resilient")["scoring_uri"]
    key = _keys(mill, "resilient")["primaryKey"]
    answer = _score(uri, key, {"data": [2]})
    assert answer.status_code == 200 and answer.json()["result"] == [4], answer.text


def test_a_killed_replica_is_restarted_and_requests_go_on(mill: MillHome, tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "sturdy")
    shown = mill.json(
        "online-deployment",
        "create",
        "--file",
        str(_deployment(project, "blue", "sturdy", instance_count="2")),
        "--all-traffic",
        timeout=300,
    )
    pids = [r["pid"] for r in shown["replicas"]]
    assert len(pids) == 2
    uri = shown_uri = mill.json("online-endpoint", "show", "--name", "sturdy")["scoring_uri"]
    key = _keys(mill, "sturdy")["primaryKey"]
    statuses: Counter[int] = Counter()
    with httpx.Client(timeout=30) as client:
        for i in range(400):
            if i == 100:
                os.kill(pids[0], signal.SIGKILL)
            answer = client.post(
                shown_uri, json={"data": [1]}, headers={"Authorization": f"Bearer {key}"}
            )
            statuses[answer.status_code] += 1
    assert statuses[200] >= 399, statuses
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replicas = mill.json("online-deployment", "show", "-n", "blue", "-e", "sturdy")["replicas"]
        if all(r["state"] == "ready" for r in replicas) and replicas[0]["pid"] != pids[0]:
            break
        time.sleep(0.3)
    assert replicas[0]["restarts"] == 1 and replicas[0]["state"] == "ready", replicas
    assert _score(uri, key, {"data": [1]}).status_code == 200


def test_aml_token_endpoint(mill: MillHome, tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "tokened", auth_mode="aml_token")
    mill.cli(
        "online-deployment",
        "create",
        "--file",
        str(_deployment(project, "blue", "tokened")),
        "--all-traffic",
        timeout=300,
    )
    credentials = _keys(mill, "tokened")
    assert credentials["tokenType"] == "Bearer" and credentials["expiryTimeUtc"] > time.time()
    uri = mill.json("online-endpoint", "show", "--name", "tokened")["scoring_uri"]
    assert _score(uri, credentials["accessToken"], {"data": [5]}).json()["result"] == [10]
    assert _score(uri, credentials["accessToken"][:-2] + "xx", {"data": [5]}).status_code == 401
    request = tmp_path / "r.json"
    request.write_text('{"data": [1]}')
    out = mill.cli("online-endpoint", "invoke", "-n", "tokened", "--request-file", str(request))
    assert json.loads(out.stdout)["result"] == [2]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: x\n", "name"),
        ("name: good-name\nauth_mode: aad_token\n", "aad_token"),
        ("name: good-name\nbogus: 1\n", "bogus"),
    ],
)
def test_bad_endpoint_files_are_refused_clearly(
    mill: MillHome, tmp_path: Path, yaml_text: str, expected: str
) -> None:
    path = tmp_path / "endpoint.yml"
    path.write_text(yaml_text)
    result = mill.cli("online-endpoint", "create", "--file", str(path), check=False)
    assert result.returncode != 0
    assert str(path) in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert mill.json("online-endpoint", "list") == []


def test_unknown_endpoint_and_deployment_errors(mill: MillHome, tmp_path: Path) -> None:
    missing = mill.cli("online-endpoint", "show", "--name", "nowhere", check=False)
    assert missing.returncode != 0 and "nowhere" in missing.stderr
    _endpoint(mill, "lonely")
    uri = mill.json("online-endpoint", "show", "--name", "lonely")["scoring_uri"]
    key = _keys(mill, "lonely")["primaryKey"]
    assert httpx.post(uri.replace("lonely", "nowhere"), json={}).status_code == 404
    no_deployments = _score(uri, key, {"data": [1]})
    assert no_deployments.status_code == 503 and "traffic" in no_deployments.text
    project = _project(tmp_path / "p")
    bad = _deployment(project, "blue", "lonely")
    bad.write_text(bad.read_text().replace("scoring_script: score.py", "scoring_script: nope.py"))
    result = mill.cli("online-deployment", "create", "--file", str(bad), check=False)
    assert result.returncode != 0 and "nope.py" in result.stderr
    assert f"{bad}:7 code_configuration.scoring_script" in result.stderr


def _save_iris_model(folder: Path) -> None:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    frame = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=500).fit(frame, iris.target)
    example = pd.DataFrame(frame.head(2))
    mlflow.sklearn.save_model(
        model,
        str(folder),
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
    )


def test_no_code_mlflow_and_onnx_deployments_with_data_collection(
    mill: MillHome, tmp_path: Path
) -> None:
    _save_iris_model(tmp_path / "iris-model")
    mill.cli(
        "model",
        "create",
        "--name",
        "iris",
        "--type",
        "mlflow_model",
        "--path",
        str(tmp_path / "iris-model"),
    )
    mill.cli("model", "convert", "--name", "iris", "--version", "1", "--to", "onnx", timeout=300)
    _endpoint(mill, "nocode")
    blue = tmp_path / "blue.yml"
    blue.write_text(
        "name: blue\nendpoint_name: nocode\nmodel: azureml:iris:1\ninstance_count: 1\n"
        "data_collector:\n  collections:\n    model_inputs: {enabled: 'true'}\n"
        "    model_outputs: {enabled: 'true'}\n"
    )
    green = tmp_path / "green.yml"
    green.write_text("name: green\nendpoint_name: nocode\nmodel: azureml:iris:2\n")
    shown = mill.json(
        "online-deployment", "create", "--file", str(blue), "--all-traffic", timeout=600
    )
    assert (shown["kind"], shown["provisioning_state"]) == ("mlflow", "Succeeded"), shown
    assert mill.json("online-deployment", "create", "--file", str(green), timeout=600)["kind"] == (
        "onnx"
    )
    uri = mill.json("online-endpoint", "show", "--name", "nocode")["scoring_uri"]
    key = _keys(mill, "nocode")["primaryKey"]
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    split = _score(uri, key, {"input_data": {"columns": columns, "data": rows}})
    assert split.status_code == 200 and split.json() == [0, 2], split.text
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    assert _score(uri, key, {"input_data": records}).json() == [0, 2]
    bad = _score(uri, key, {"input_data": {"columns": columns[:3], "data": [r[:3] for r in rows]}})
    assert bad.status_code == 400 and "petal_width" in bad.text
    malformed = httpx.post(
        uri, content=b"{not json", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert malformed.status_code == 400

    openapi = mill.json("online-endpoint", "show", "--name", "nocode")["openapi_uri"]
    swagger = httpx.get(openapi, headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    assert swagger["swagger"] == "2.0" and "/score" in swagger["paths"]
    service_input = swagger["definitions"]["ServiceInput"]
    assert service_input["example"]["input_data"]["columns"] == columns
    assert httpx.get(openapi).status_code == 401

    pin = {"azureml-model-deployment": "green"}
    onnx = _score(uri, key, {"data": rows}, **pin)
    assert onnx.status_code == 200 and onnx.json()["label"] == [0, 2], onnx.text
    auth = {"Authorization": f"Bearer {key}", **pin}
    metadata = httpx.get(uri.replace("/score", "/v2/models/iris"), headers=auth, timeout=30)
    assert metadata.status_code == 200, metadata.text
    first = metadata.json()["inputs"][0]
    v2 = httpx.post(
        uri.replace("/score", "/v2/models/iris/infer"),
        json={
            "inputs": [
                {
                    "name": first["name"],
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "data": [x for row in rows for x in row],
                }
            ]
        },
        headers=auth,
        timeout=30,
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["model_name"] == "iris" and v2.json()["outputs"][0]["data"] == [0, 2]
    wrong = httpx.post(
        uri.replace("/score", "/v2/models/iris/infer"),
        json={"inputs": [{"name": "nope", "shape": [1, 4], "datatype": "FP32", "data": rows[0]}]},
        headers=auth,
        timeout=30,
    )
    assert wrong.status_code == 400 and "nope" in wrong.text

    # The same model as a Triton repository (ONNX Runtime backend), on the KServe v2 protocol.
    mill.cli(
        "model",
        "convert",
        "--name",
        "iris",
        "--version",
        "1",
        "--to",
        "onnx",
        "--triton",
        timeout=300,
    )
    red = tmp_path / "red.yml"
    red.write_text("name: red\nendpoint_name: nocode\nmodel: azureml:iris:3\n")
    assert mill.json("online-deployment", "create", "--file", str(red), timeout=600)["kind"] == (
        "triton"
    )
    auth_red = {"Authorization": f"Bearer {key}", "azureml-model-deployment": "red"}
    base = uri.removesuffix("/score")
    models = httpx.get(f"{base}/v2/health/ready", headers=auth_red, timeout=30)
    assert models.status_code == 200
    meta_red = httpx.get(f"{base}/v2/models/iris", headers=auth_red, timeout=30).json()
    tensor = meta_red["inputs"][0]
    triton = httpx.post(
        f"{base}/v2/models/iris/infer",
        json={
            "inputs": [
                {
                    "name": tensor["name"],
                    "shape": [2, 4],
                    "datatype": tensor["datatype"],
                    "data": [x for row in rows for x in row],
                }
            ]
        },
        headers=auth_red,
        timeout=30,
    )
    assert triton.status_code == 200, triton.text
    assert [0, 2] in [o["data"] for o in triton.json()["outputs"]]

    collected = mill.home / "workspaces/default/datastores/workspaceblobstore/modelDataCollector"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not list(collected.rglob("model_outputs/**/*.jsonl")):
        time.sleep(0.2)
    inputs = list(collected.glob("nocode/blue/model_inputs/**/*.jsonl"))
    outputs = list(collected.glob("nocode/blue/model_outputs/**/*.jsonl"))
    assert inputs and outputs
    assert "sepal_length" in inputs[0].read_text()


def test_gateway_over_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    home = MillHome(tmp_path / "home")
    home.env["MILL_GATEWAY_TLS"] = "1"
    home.env["MILL_GATEWAY_MAX_BODY_MB"] = "1"
    home.start()
    try:
        project = _project(tmp_path / "project")
        uri = _endpoint(home, "secure")["scoring_uri"]
        assert uri.startswith("https://127.0.0.1:")
        home.cli(
            "online-deployment",
            "create",
            "--file",
            str(_deployment(project, "blue", "secure")),
            "--all-traffic",
            timeout=300,
        )
        request = tmp_path / "r.json"
        request.write_text('{"data": [21]}')
        out = home.cli("online-endpoint", "invoke", "-n", "secure", "--request-file", str(request))
        assert json.loads(out.stdout)["result"] == [42]
        cert = home.home / "tls" / "gateway-cert.pem"
        key = _keys(home, "secure")["primaryKey"]
        answer = httpx.post(
            uri, json={"data": [1]}, headers={"Authorization": f"Bearer {key}"}, verify=str(cert)
        )
        assert answer.status_code == 200
        big = httpx.post(
            uri,
            content=b"[" + b"1," * 600_000 + b"1]",
            headers={"Authorization": f"Bearer {key}"},
            verify=str(cert),
        )
        assert big.status_code == 413 and "1048576" in big.text  # MILL_GATEWAY_MAX_BODY_MB=1
        with pytest.raises(httpx.ConnectError):  # not trusted without the certificate
            httpx.post(uri, json={"data": [1]}, headers={"Authorization": f"Bearer {key}"})
    finally:
        home.stop()


def _replicas(mill: MillHome, endpoint: str, name: str = "blue") -> list[dict[str, Any]]:
    """The serving replicas; none while a (re)started server is still bringing them up."""
    shown = mill.json("online-deployment", "show", "-n", name, "-e", endpoint)
    replicas: list[dict[str, Any]] = shown.get("replicas", [])
    return replicas


def _until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.3)


def test_probes_take_a_stuck_replica_out_of_traffic_then_restart_it(
    mill: MillHome, tmp_path: Path
) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "probed")
    spec = _deployment(
        project,
        "blue",
        "probed",
        instance_count="2",
        readiness_probe="{period: 1, timeout: 1, failure_threshold: 1}",
        liveness_probe="{period: 1, timeout: 1, failure_threshold: 6}",
    )
    mill.cli("online-deployment", "create", "--file", str(spec), "--all-traffic", timeout=300)
    uri = mill.json("online-endpoint", "show", "--name", "probed")["scoring_uri"]
    key = _keys(mill, "probed")["primaryKey"]
    stuck = _replicas(mill, "probed")[0]
    os.kill(stuck["pid"], signal.SIGSTOP)  # alive but answering nothing
    try:
        _until(lambda: _replicas(mill, "probed")[0]["state"] == "unready", timeout=30)
        # Out of traffic: every request goes to the other replica and succeeds.
        for _ in range(20):
            assert _score(uri, key, {"data": [1]}).status_code == 200
        # Still failing after failure_threshold x period of liveness: restarted.
        _until(lambda: _replicas(mill, "probed")[0]["restarts"] == 1, timeout=60)
        _until(lambda: _replicas(mill, "probed")[0]["state"] == "ready", timeout=60)
    finally:
        try:
            os.kill(stuck["pid"], signal.SIGKILL)
        except OSError:
            pass
    assert _replicas(mill, "probed")[0]["pid"] != stuck["pid"]
    assert _score(uri, key, {"data": [1]}).status_code == 200


def test_target_utilization_scales_out_under_load_and_back_in(
    mill: MillHome, tmp_path: Path
) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "elastic")
    spec = _deployment(
        project,
        "blue",
        "elastic",
        scale_settings="{type: target_utilization, min_instances: 1, max_instances: 3, "
        "polling_interval: 1, target_utilization_percentage: 50}",
        request_settings="{max_concurrent_requests_per_instance: 1, max_queue_wait_ms: 10000}",
    )
    shown = mill.json(
        "online-deployment", "create", "--file", str(spec), "--all-traffic", timeout=300
    )
    assert shown["current_instances"] == 1
    uri = mill.json("online-endpoint", "show", "--name", "elastic")["scoring_uri"]
    key = _keys(mill, "elastic")["primaryKey"]
    stop = threading.Event()
    failures: list[int] = []

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(
                    uri,
                    json={"data": [1], "sleep": 0.2},
                    headers={"Authorization": f"Bearer {key}"},
                )
                if answer.status_code != 200:
                    failures.append(answer.status_code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        _until(
            lambda: (
                mill.json("online-deployment", "show", "-n", "blue", "-e", "elastic")[
                    "current_instances"
                ]
                == 3
            ),
            timeout=60,
        )
        _until(lambda: sum(r["state"] == "ready" for r in _replicas(mill, "elastic")) == 3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures
    # Idle: one replica at a time drains away, down to min_instances.
    _until(
        lambda: (
            mill.json("online-deployment", "show", "-n", "blue", "-e", "elastic")[
                "current_instances"
            ]
            == 1
        ),
        timeout=60,
    )
    assert _score(uri, key, {"data": [1]}).status_code == 200


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_server_comes_back_serving_and_reaps_its_old_replicas(
    mill: MillHome, tmp_path: Path
) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "phoenix")
    mill.cli(
        "online-deployment",
        "create",
        "--file",
        str(_deployment(project, "blue", "phoenix")),
        "--all-traffic",
        timeout=300,
    )
    old_pid = _replicas(mill, "phoenix")[0]["pid"]
    key = _keys(mill, "phoenix")["primaryKey"]
    server = json.loads((mill.home / "server.json").read_text())
    os.kill(server["pid"], signal.SIGKILL)
    _until(lambda: not _alive(server["pid"]), timeout=10)
    assert _alive(old_pid)  # orphaned: nobody stopped it
    mill.start()
    _until(lambda: [r["state"] for r in _replicas(mill, "phoenix")] == ["ready"], timeout=120)
    assert not _alive(old_pid)
    uri = mill.json("online-endpoint", "show", "--name", "phoenix")["scoring_uri"]
    assert _score(uri, key, {"data": [3]}).json()["result"] == [6]  # the same keys

    folder = mill.home / "endpoints" / "phoenix" / "blue"
    assert list(folder.glob("g*/replica-0.log"))
    mill.cli("online-endpoint", "update", "--name", "phoenix", "--traffic", "blue=0")
    mill.cli("online-deployment", "delete", "-n", "blue", "-e", "phoenix", "--yes")
    _until(lambda: not list(folder.glob("g*")), timeout=30)  # drained, stopped, removed
    mill.cli("online-endpoint", "delete", "--name", "phoenix", "--yes")
    assert mill.json("online-endpoint", "list") == []
    secrets = mill.json("secret", "list")
    assert not [s for s in secrets if "phoenix" in s["name"]]  # its keys went with it


def test_deployment_environment_variables_take_vault_secrets_by_reference(
    mill: MillHome, tmp_path: Path
) -> None:
    mill.cli("secret", "set", "--name", "model-version", "--value", "s3cret-7")
    project = _project(tmp_path / "project")
    _endpoint(mill, "vaulted")
    spec = _deployment(project, "blue", "vaulted", version="${{secrets.model-version}}")
    shown = mill.json(
        "online-deployment", "create", "--file", str(spec), "--all-traffic", timeout=300
    )
    assert shown["environment_variables"] == {"VERSION": "${{secrets.model-version}}"}
    uri = mill.json("online-endpoint", "show", "--name", "vaulted")["scoring_uri"]
    key = _keys(mill, "vaulted")["primaryKey"]
    assert _score(uri, key, {"data": [1]}).json()["version"] == "s3cret-7"
    plans = "".join(p.read_text() for p in (mill.home / "endpoints").rglob("replica-*.json"))
    assert "s3cret-7" not in plans  # in the process environment only
    missing = _deployment(project, "green", "vaulted", version="${{secrets.nowhere}}")
    refused = mill.cli("online-deployment", "create", "--file", str(missing), check=False)
    assert refused.returncode != 0 and "nowhere" in refused.stderr


def test_stopping_the_server_stops_replicas_still_draining(mill: MillHome, tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    _endpoint(mill, "drainer")
    spec = _deployment(project, "blue", "drainer", request_settings="{request_timeout_ms: 60000}")
    mill.cli("online-deployment", "create", "--file", str(spec), "--all-traffic", timeout=300)
    first = _replicas(mill, "drainer")[0]["pid"]
    mill.cli("online-deployment", "update", "--file", str(spec), timeout=300)
    second = _replicas(mill, "drainer")[0]["pid"]
    assert second != first and _alive(first)  # the old generation drains for 61 s
    mill.stop()
    _until(lambda: not _alive(first) and not _alive(second), timeout=20)
