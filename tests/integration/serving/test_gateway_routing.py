"""Gateway routing: traffic split, pinning, mirroring, forwarded paths and telemetry."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx
from tests.integration.serving.gateway_harness import AUTH, endpoint, replicas, serving, wait_for

from mill.serving.gateway import DeploymentRoute, Gateway


def test_traffic_split_pin_and_unknown_deployment(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", ""), ("green", "")) as (blue, green):
        gateway = Gateway()
        routes = {
            "blue": DeploymentRoute("blue", (blue.address,)),
            "green": DeploymentRoute("green", (green.address,)),
        }
        gateway.set_endpoint(endpoint("split", routes, {"blue": 70, "green": 30}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            seen: Counter[str] = Counter()
            for i in range(400):
                response = client.post("/endpoints/split/score", json={"i": i}, headers=AUTH)
                assert response.status_code == 200
                named = response.headers["azureml-model-deployment"]
                assert response.json()["deployment"] == named
                seen[named] += 1
            assert 230 <= seen["blue"] <= 330, seen  # 280 expected; ~6 standard deviations
            assert seen["green"] == 400 - seen["blue"]

            gateway.set_endpoint(endpoint("split", routes, {"blue": 100, "green": 0}))
            pinned = client.post(
                "/endpoints/split/score",
                json={},
                headers={**AUTH, "azureml-model-deployment": "green"},
            )
            assert pinned.status_code == 200  # a pinned deployment with 0 traffic is allowed
            assert pinned.json()["deployment"] == "green"
            unknown = client.post(
                "/endpoints/split/score",
                json={},
                headers={**AUTH, "azureml-model-deployment": "red"},
            )
            assert unknown.status_code == 404
            message = unknown.json()["error"]
            assert "red" in message and "blue, green" in message

            gateway.set_endpoint(endpoint("split", routes, {}))
            none = client.post("/endpoints/split/score", json={}, headers=AUTH)
            assert none.status_code == 503
            assert "no traffic" in none.json()["error"]
            assert "mill online-endpoint update" in none.json()["error"]


def test_mirror_traffic_is_copied_and_never_changes_the_answer(tmp_path: Path) -> None:
    mark = tmp_path / "mirrored.txt"
    with replicas(tmp_path, ("blue", ""), ("shadow", str(mark))) as (blue, shadow):
        gateway = Gateway()
        routes = {
            "blue": DeploymentRoute("blue", (blue.address,)),
            "shadow": DeploymentRoute(
                "shadow", (shadow.address,), max_concurrent_requests_per_instance=4
            ),
        }
        gateway.set_endpoint(endpoint("m", routes, {"blue": 100}, mirror={"shadow": 30}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            for i in range(200):
                response = client.post("/endpoints/m/score", json={"i": i}, headers=AUTH)
                assert response.status_code == 200
                assert response.json()["deployment"] == "blue"

            # the copies run in the background: wait until they have all been counted
            def answered() -> int:
                shadow_stats = gateway.summary("m")["deployments"].get("shadow", {})
                return shadow_stats.get("mirrored_status_codes", {}).get("200", 0)

            wait_for(
                lambda: mark.exists() and answered() == len(mark.read_text().splitlines()),
                what="mirrored copies",
            )
            copies = len(mark.read_text().splitlines())
            assert 25 <= copies <= 95, copies  # 60 expected
            metrics = client.get("/metrics").text
            assert 'deployment="shadow",endpoint="m",mirrored="true",status="200"' in metrics

            # a failing mirror (its run() raises, then its replica dies) changes nothing
            for i in range(20):
                response = client.post(
                    "/endpoints/m/score", json={"fail": i % 2 == 0}, headers=AUTH
                )
                assert response.status_code in (200, 500)
            shadow.kill()
            for i in range(30):
                response = client.post("/endpoints/m/score", json={"i": i}, headers=AUTH)
                assert response.status_code == 200
                assert response.json()["deployment"] == "blue"


def test_paths_under_the_endpoint_are_forwarded(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", "")) as (blue,):
        gateway = Gateway()
        gateway.set_endpoint(endpoint("p", {"blue": DeploymentRoute("blue", (blue.address,))}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            swagger = client.get("/endpoints/p/swagger.json", headers=AUTH)
            assert swagger.status_code == 200
            assert swagger.json()["swagger"] == "2.0"
            openapi = client.get("/endpoints/p/swagger.json?version=3", headers=AUTH)
            assert openapi.status_code == 200  # the query string reaches the replica
            assert openapi.json()["openapi"].startswith("3")
            nowhere = client.get("/endpoints/p/v2/models/m/ready", headers=AUTH)
            assert nowhere.status_code == 404
            assert "GET /v2/models/m/ready" in nowhere.json()["error"]
            health = client.get("/endpoints/p/", headers=AUTH)
            assert health.status_code == 200 and health.text == "Healthy"
            wrong_method = client.delete("/endpoints/p/score", headers=AUTH)
            assert wrong_method.status_code == 405
            failing = client.post("/endpoints/p/score", json={"fail": True}, headers=AUTH)
            assert failing.status_code == 500
            assert "asked to fail" in failing.json()["error"]


def test_metrics_request_log_summary_and_data_collection(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "requests.jsonl"
    collect_dir = tmp_path / "collected"
    with replicas(tmp_path, ("blue", "")) as (blue,):
        gateway = Gateway(request_log=log)
        route = DeploymentRoute(
            "blue",
            (blue.address,),
            collect_inputs=True,
            collect_outputs=True,
            collect_dir=str(collect_dir),
        )
        gateway.set_endpoint(endpoint("t", {"blue": route}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            ids = []
            for i in range(5):
                response = client.post("/endpoints/t/score", json={"n": i}, headers=AUTH)
                assert response.status_code == 200
                ids.append(response.headers["x-request-id"])
            assert client.post("/endpoints/t/score", json={}).status_code == 401
            metrics = client.get("/metrics").text
            assert (
                'mill_gateway_requests_total{deployment="blue",endpoint="t",mirrored="false",'
                'status="200"} 5.0' in metrics
            )
            assert 'mill_gateway_requests_total{deployment="",endpoint="t"' in metrics
            assert 'mill_gateway_request_duration_seconds_bucket{deployment="blue"' in metrics
            assert 'le="0.00025"' in metrics
            summary = gateway.summary("t")
            assert summary["deployments"]["blue"]["requests"] == 5
            assert summary["deployments"]["blue"]["status_codes"] == {"200": 5}
            assert summary["deployments"]["blue"]["p50_ms"] > 0
            assert summary["deployments"][""]["status_codes"] == {"401": 1}
            wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 6, what="log")
            lines = [json.loads(line) for line in log.read_text().splitlines()]
            assert [line["request_id"] for line in lines[:5]] == ids
            first = lines[0]
            assert first["endpoint"] == "t" and first["deployment"] == "blue"
            assert first["status"] == 200 and first["latency_ms"] > 0
            assert first["bytes_in"] == len(b'{"n":0}') and first["bytes_out"] > 0
            assert "primary-key" not in log.read_text()
            assert '"n"' not in log.read_text()  # no bodies in the request log

            hour = time.strftime("%Y/%m/%d/%H", time.gmtime())

            def records(kind: str) -> list[dict]:  # type: ignore[type-arg]
                files = list((collect_dir / kind).glob("*/*/*/*/*.jsonl"))
                return [json.loads(x) for f in files for x in f.read_text().splitlines()]

            wait_for(lambda: len(records("model_inputs")) == 5, what="inputs")
            wait_for(lambda: len(records("model_outputs")) == 5, what="outputs")
            inputs = records("model_inputs")
            assert [r["data"] for r in inputs] == [{"n": i} for i in range(5)]
            assert [r["request_id"] for r in inputs] == ids
            assert records("model_outputs")[0]["data"]["echo"] == {"n": 0}
            files = list((collect_dir / "model_inputs").glob("*/*/*/*/*.jsonl"))
            assert len(files) == 1
            assert files[0].parent.relative_to(collect_dir / "model_inputs").as_posix() in (
                hour,
                time.strftime("%Y/%m/%d/%H", time.gmtime()),
            )
