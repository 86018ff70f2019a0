"""Gateway limits and failures: body size, timeouts, queueing, lost replicas, draining."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.integration.serving.gateway_harness import (
    AUTH,
    endpoint,
    replicas,
    serving,
    wait_for,
)

from mill.serving.gateway import DeploymentRoute, Gateway
from mill.serving.upstream import ReplicaAddress, probe_sync

SCORE = "/endpoints/e/score"


def _connections_to(port: int) -> int:
    """ESTABLISHED TCP connections to a loopback port (the gateway's, once probes closed)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", "")) as (blue,):
        gateway = Gateway(max_body_bytes=1000)
        gateway.set_endpoint(endpoint("e", {"blue": DeploymentRoute("blue", (blue.address,))}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            small = client.post(SCORE, content=b'{"x": "' + b"a" * 900 + b'"}', headers=AUTH)
            assert small.status_code == 200
            declared = client.post(SCORE, content=b"a" * 2000, headers=AUTH)
            assert declared.status_code == 413
            assert "1000 bytes" in declared.json()["error"]

            def chunks() -> Iterator[bytes]:
                for _ in range(20):
                    yield b"b" * 100

            chunked = client.post(SCORE, content=chunks(), headers=AUTH)
            assert chunked.status_code == 413
            assert client.post(SCORE, content=b"a" * 2000).status_code == 401  # auth first


def test_timeout_is_504_and_the_slot_stays_taken(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", "")) as (blue,):
        gateway = Gateway()
        route = DeploymentRoute(
            "blue", (blue.address,), request_timeout_ms=300, max_queue_wait_ms=0
        )
        gateway.set_endpoint(endpoint("e", {"blue": route}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            slow = client.post(SCORE, json={"sleep": 2}, headers=AUTH)
            assert slow.status_code == 504
            assert "request_timeout_ms 300" in slow.json()["error"]
            busy = client.post(SCORE, json={}, headers=AUTH)
            assert busy.status_code == 429  # the replica is still running the slow request
            wait_for(
                lambda: client.post(SCORE, json={}, headers=AUTH).status_code == 200,
                what="the late answer to free the slot",
            )


def test_full_replicas_queue_then_429(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", "")) as (blue,):
        gateway = Gateway()
        route = DeploymentRoute("blue", (blue.address,), max_queue_wait_ms=0)
        gateway.set_endpoint(endpoint("e", {"blue": route}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(client.post, SCORE, json={"sleep": 1}, headers=AUTH)
                wait_for(lambda: _in_flight(gateway, "e") == 1, what="the slow request")
                rejected = client.post(SCORE, json={}, headers=AUTH)
                assert rejected.status_code == 429
                assert "max_concurrent_requests_per_instance 1" in rejected.json()["error"]
                assert slow.result().status_code == 200

            queued = DeploymentRoute("blue", (blue.address,), max_queue_wait_ms=10_000)
            gateway.set_endpoint(endpoint("e", {"blue": queued}))
            with ThreadPoolExecutor(4) as pool:
                answers = list(
                    pool.map(
                        lambda i: client.post(SCORE, json={"sleep": 0.2, "i": i}, headers=AUTH),
                        range(4),
                    )
                )
            assert [a.status_code for a in answers] == [200] * 4  # waited in line


def _in_flight(gateway: Gateway, name: str) -> int:
    # read on the test thread: an int read is safe, the value may be a moment old
    endpoint = gateway._endpoints.get(name)
    return sum(pool.in_flight for pool in endpoint.pools.values()) if endpoint else 0


def test_killed_replica_requests_are_retried_and_reported(tmp_path: Path) -> None:
    lost: list[str] = []
    with replicas(tmp_path, ("one", ""), ("two", "")) as (one, two):
        gateway = Gateway(on_replica_lost=lost.append)
        route = DeploymentRoute(
            "blue",
            (one.address, two.address),
            max_concurrent_requests_per_instance=2,
            max_queue_wait_ms=5000,
        )
        gateway.set_endpoint(endpoint("e", {"blue": route}))
        statuses: list[int] = []
        stop = threading.Event()
        with serving(gateway) as server:

            def loop() -> None:
                with httpx.Client(base_url=server.url) as client:
                    while not stop.is_set():
                        response = client.post(SCORE, json={"sleep": 0.05}, headers=AUTH)
                        statuses.append(response.status_code)

            threads = [threading.Thread(target=loop) for _ in range(4)]
            for thread in threads:
                thread.start()
            wait_for(lambda: len(statuses) >= 20, what="traffic")
            one.kill()  # SIGKILL, mid-request
            seen = len(statuses)
            wait_for(lambda: len(statuses) >= seen + 40, what="traffic after the kill")
            stop.set()
            for thread in threads:
                thread.join(10)
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        assert lost == ["one"]


def test_replica_dropped_from_the_route_is_drained(tmp_path: Path) -> None:
    with replicas(tmp_path, ("old", ""), ("new", "")) as (old, new):
        gateway = Gateway()
        gateway.set_endpoint(endpoint("e", {"blue": DeploymentRoute("blue", (old.address,))}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(client.post, SCORE, json={"sleep": 1}, headers=AUTH)
                wait_for(lambda: _in_flight(gateway, "e") == 1, what="the slow request")
                assert _connections_to(old.address.port) == 1  # the gateway's one connection
                gateway.set_endpoint(
                    endpoint("e", {"blue": DeploymentRoute("blue", (new.address,))})
                )
                after = client.post(SCORE, json={}, headers=AUTH)
                assert after.status_code == 200
                assert after.json()["deployment"] == "new"
                answer = slow.result()
            assert answer.status_code == 200
            assert answer.json()["deployment"] == "old"
            wait_for(lambda: _connections_to(old.address.port) == 0, what="the drained close")

            gateway.set_endpoint(endpoint("e", {"blue": DeploymentRoute("blue", ())}))
            none = client.post(SCORE, json={}, headers=AUTH)
            assert none.status_code == 503
            assert "deployment blue has no ready replica" in none.json()["error"]
            gateway.remove_endpoint("e")
            assert client.post(SCORE, json={}, headers=AUTH).status_code == 404


def test_probe_sync(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", "")) as (blue,):
        assert probe_sync(blue.address, 5) == 200
        wrong = ReplicaAddress(blue.address.id, "127.0.0.1", blue.address.port, "not-the-token")
        assert probe_sync(wrong, 5) == 0
        port = blue.address.port
        blue.kill()
        assert probe_sync(ReplicaAddress("x", "127.0.0.1", port, "t"), 2) == 0


def test_stop_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    with replicas(tmp_path, ("blue", "")) as (blue,):
        gateway = Gateway()
        gateway.set_endpoint(endpoint("e", {"blue": DeploymentRoute("blue", (blue.address,))}))
        with serving(gateway) as server, httpx.Client(base_url=server.url) as client:
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(client.post, SCORE, json={"sleep": 1}, headers=AUTH)
                wait_for(lambda: _in_flight(gateway, "e") == 1, what="the slow request")
                server.stop()
                answer = slow.result()
            assert answer.status_code == 200
            assert answer.json()["echo"] == {"sleep": 1}
            try:
                client.post(SCORE, json={}, headers=AUTH)
                raise AssertionError("the stopped gateway answered")
            except httpx.TransportError:
                pass
            wait_for(  # the gateway closed its connection to the replica
                lambda: _connections_to(blue.address.port) == 0, what="the connection to close"
            )
